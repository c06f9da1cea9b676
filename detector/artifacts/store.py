"""The versioned artifacts folder: ``<artifacts_dir>/<name>/v<N>/``, immutable and verifiable.

A version is built in a hidden staging folder beside the versions (same filesystem) and appears
by one ``os.rename``, so a reader sees all of it or nothing. Its number is allocated under a file
lock (``<name>/.lock``, an ``flock`` the kernel drops when its holder dies), so concurrent exports
never collide, and a killed export leaves only a hidden ``.tmp-<pid>-*`` folder, removed by the next
export once that process is gone. ``latest`` is always the highest version folder, so it cannot lag;
``<name>/latest`` records it with its manifest's sha256 (see :mod:`detector.artifacts.integrity`).

Layout of a version::

    v3/
      weights/best.pt, weights/best.onnx (or best_openvino_model/, ...)
      MODEL_CARD.md
      manifest.json   sha256 and size of every other file, metrics, data, config, versions
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from detector import io
from detector.artifacts.integrity import ALIAS, MANIFEST, Version, alias_record, entry, hash_files
from detector.errors import DetectorError

log = logging.getLogger(__name__)

_VERSION = re.compile(r"v(\d+)")  # matched in full
_NAME = re.compile(r"[A-Za-z0-9][\w.-]*")  # matched in full: no newline, no slash
_STAGING = re.compile(r"\.(tmp|scratch)-(\d+)-\w+")


def check_name(name: str) -> str:
    """Refuse artifact names that are not a single safe folder name."""
    if not _NAME.fullmatch(str(name)):
        raise DetectorError(
            f"Artifact name {name!r} must be one folder name of letters, digits, '_', '-' or '.'; "
            "set export.publish.name=..."
        )
    return str(name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def remove_tree(path: Path) -> None:
    """Remove a folder, read-only ones included."""
    if path.exists():
        _writable(path)
        shutil.rmtree(path, ignore_errors=True)


def _read_only(path: Path) -> None:
    for p in [*sorted(path.rglob("*"), reverse=True), path]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """The versions of one artifact name: ``<artifacts_dir>/<name>/``."""

    def __init__(self, artifacts_dir: str | Path, name: str) -> None:
        self.name = check_name(name)
        self.root = Path(artifacts_dir).expanduser().resolve() / self.name

    def numbers(self) -> list[int]:
        """Published version numbers, ascending."""
        if not self.root.is_dir():
            return []
        return sorted(
            int(m[1]) for p in self.root.iterdir() if (m := _VERSION.fullmatch(p.name)) and p.is_dir()
        )

    def get(self, which: str | int = ALIAS) -> Version:
        """A version by number (``3``, ``"v3"``) or ``latest``.

        Raises:
            DetectorError: No such version, listing the ones that exist.
        """
        numbers = self.numbers()
        if not numbers:
            raise DetectorError(f"No published versions of {self.name!r} in {self.root.parent}.")
        if str(which) == ALIAS:  # the highest version folder: each appears complete, by one rename
            n = numbers[-1]
        else:
            m = re.fullmatch(r"v?(\d+)", str(which))
            if not m or int(m[1]) not in numbers:
                have = ", ".join(f"v{n}" for n in numbers)
                raise DetectorError(f"{self.name} has no version {which!r}; it has {have} (and latest).")
            n = int(m[1])
        return Version(self.name, n, self.root / f"v{n}")

    @contextlib.contextmanager
    def staging(self) -> Iterator[tuple[Path, Path]]:
        """Yield ``(stage, scratch)``: hidden folders beside the versions, removed on the way out.

        Build the version in ``stage`` and hand it to :meth:`commit`; ``scratch`` is for anything
        that must not be published (validation outputs).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        stage, scratch = self.root / f".tmp-{token}", self.root / f".scratch-{token}"
        stage.mkdir()
        scratch.mkdir()
        try:
            yield stage, scratch
        finally:
            remove_tree(stage)  # gone already if it was committed
            remove_tree(scratch)

    def _remove_stale(self) -> None:
        """Remove staging folders of exports that died (their process no longer exists)."""
        for p in self.root.iterdir():
            m = _STAGING.fullmatch(p.name)
            if m and int(m[2]) != os.getpid() and not _pid_alive(int(m[2])):
                remove_tree(p)

    def commit(
        self,
        stage: Path,
        manifest: dict,
        card: Callable[[dict], str],
        on_stage: Callable[[str, Path], None] | None = None,
    ) -> Version:
        """Publish ``stage`` as the next version: number it, seal it, rename it into place.

        Under the lock: allocate N, write ``MODEL_CARD.md`` (rendered by ``card``) and
        ``manifest.json`` (with every file's sha256 and size), make the folder read-only, and rename
        it to ``v<N>``: the version is published by that one rename, complete. A failure before it
        leaves the old state (the caller removes the staging folder); after it, recording the new
        ``latest`` is best effort: ``latest`` resolves to the highest folder whatever that file says,
        so a full disk there costs only the recorded hash, with a warning, not a half-published version.

        Args:
            stage: The folder built by the caller (from :meth:`staging`).
            manifest: Everything but ``name``, ``version`` and ``files``, which are added here.
            card: Renders the model card from the finished manifest.
            on_stage: Called with ``("locked", stage)`` just before the rename (tests kill there).
        """
        from filelock import FileLock

        files = hash_files(stage)  # the big files, hashed before the lock is taken
        with FileLock(self.root / ".lock"):
            self._remove_stale()
            number = max(self.numbers(), default=0) + 1
            doc = {"name": self.name, "version": number, **manifest}
            (stage / "MODEL_CARD.md").write_text(card(doc))
            doc["files"] = {**files, "MODEL_CARD.md": entry(stage / "MODEL_CARD.md")}
            io.write_json(stage / MANIFEST, doc)
            for rel in [*doc["files"], MANIFEST]:
                _fsync(stage / rel)
            _read_only(stage)
            if on_stage:
                on_stage("locked", stage)
            target = self.root / f"v{number}"
            digest = io.sha256(stage / MANIFEST)
            os.rename(stage, target)  # the version appears here, complete
            _fsync(self.root)
            self._record(number, digest)
        return Version(self.name, number, target)

    def _record(self, number: int, digest: str) -> None:
        try:
            io.write_text(self.root / ALIAS, alias_record(number, digest))
        except OSError as e:
            log.warning(
                "published %s/v%d, but could not record it in %s (%s); latest still resolves to it. Its "
                "manifest sha256 is %s.",
                self.name,
                number,
                self.root / ALIAS,
                e.strerror or e,
                digest,
            )


def resolve(ref: str, artifacts_dir: str | Path) -> Version:
    """Find a version from ``name``, ``name/latest``, ``name/v3`` or a version folder's path.

    Raises:
        DetectorError: Nothing matches, naming what exists.
    """
    path = Path(ref).expanduser()
    if (path / MANIFEST).is_file():  # a version folder, wherever it lies (a copy, a mount)
        doc = Version("?", 0, path.resolve()).manifest()
        return Version(str(doc.get("name", path.parent.name)), int(doc.get("version", 0)), path.resolve())
    name, _, which = str(ref).strip("/").partition("/")
    store = Store(artifacts_dir, name)
    if not store.root.is_dir():
        known = ", ".join(names(artifacts_dir)) or "none"
        raise DetectorError(
            f"No artifact {name!r} in {store.root.parent} (known: {known}). Use NAME, NAME/vN, "
            "NAME/latest or a version folder's path; --dir sets the artifacts folder."
        )
    return store.get(which or ALIAS)


def names(artifacts_dir: str | Path) -> list[str]:
    """Artifact names that have at least one published version."""
    root = Path(artifacts_dir).expanduser()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and _NAME.fullmatch(p.name) and Store(root, p.name).numbers()
    )
