"""Is a version what its manifest says? File hashes, export paths, and the manifest's own sha256.

``manifest.json`` lists the sha256 and size of every other file of a version. What it protects against:
a file changed, removed or added after publishing (``verify`` names it; ``predict`` refuses to run
it), an export path that points outside the version or at the pickled ``.pt`` weights, and, through
the manifest's own sha256 (recorded in ``<name>/latest`` when the version is published, and checked
against a copy the deployer keeps with ``verify NAME/vN --sha256 HASH``), a manifest rewritten to
match changed files. What it does not protect against: someone who can rewrite both the manifest and
every record of its hash (the ``latest`` file sits beside it); keep the hash somewhere they cannot
reach (a deployment config, a release note) and check it there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from detector import io
from detector.errors import DetectorError

MANIFEST = "manifest.json"
ALIAS = "latest"


@dataclass(frozen=True)
class Version:
    """One published version."""

    name: str
    number: int
    path: Path

    @property
    def label(self) -> str:
        """``name/vN``, as commands accept it."""
        return f"{self.name}/v{self.number}"

    def manifest(self) -> dict:
        """The parsed ``manifest.json``.

        Raises:
            DetectorError: The manifest is missing or not JSON (the version was tampered with).
        """
        try:
            doc = json.loads((self.path / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise DetectorError(f"{self.path / MANIFEST} is missing or unreadable ({e}).") from e
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("files"), dict)
            or not isinstance(doc.get("exports"), dict)
        ):
            raise DetectorError(f"{self.path / MANIFEST} is not a version manifest (no files or exports).")
        return doc

    @property
    def manifest_sha256(self) -> str:
        """The sha256 of ``manifest.json`` itself: keep it elsewhere, check it with ``verify --sha256``."""
        return io.sha256(self.path / MANIFEST)


def entry(path: Path) -> dict:
    """A manifest row: sha256 and size of one file."""
    return {"sha256": io.sha256(path), "size": path.stat().st_size}


def hash_files(root: Path) -> dict[str, dict]:
    """sha256 and size of every file under ``root`` except the manifest, keyed by relative path."""
    return {
        p.relative_to(root).as_posix(): entry(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p != root / MANIFEST
    }


def alias_record(number: int, manifest_sha256: str) -> str:
    """The text of ``<name>/latest``: the newest version and its manifest's sha256."""
    return f"v{number} sha256:{manifest_sha256}\n"


def recorded_sha256(store_root: Path, number: int) -> str | None:
    """The manifest sha256 that ``latest`` recorded for version ``number``, if it names that version."""
    try:
        text = (store_root / ALIAS).read_text().split()
    except OSError:
        return None
    if len(text) == 2 and text[0] == f"v{number}" and text[1].startswith("sha256:"):
        return text[1].removeprefix("sha256:")
    return None


def export_problems(manifest: dict, version_dir: Path) -> list[str]:
    """Exports whose path leaves the version folder, or that are pickled PyTorch weights."""
    problems = []
    for fmt, spec in (manifest.get("exports") or {}).items():
        rel = str(spec.get("path", ""))
        pure = PurePosixPath(rel)
        if (
            not rel
            or pure.is_absolute()
            or ".." in pure.parts
            or not (version_dir / rel).resolve().is_relative_to(version_dir.resolve())
        ):
            problems.append(f"exports.{fmt}.path {rel!r}: leaves the version folder")
        elif fmt != "pytorch" and (pure.suffix == ".pt" or spec.get("runtime") == "PyTorch"):
            problems.append(f"exports.{fmt}.path {rel!r}: a pickled PyTorch file is not an export")
    return problems


def verify(version: Version, expected_sha256: str | None = None) -> list[str]:
    """Recompute every file's sha256 and size against the manifest, and the manifest's own.

    Args:
        version: The version to check.
        expected_sha256: The manifest's sha256 as the deployer recorded it elsewhere, if any.

    Returns:
        One line per problem (a changed, missing or unlisted file, a bad export path, a manifest whose
        sha256 differs from its record), named by its path; empty if the version is intact.
    """
    manifest = version.manifest()
    listed = manifest.get("files") or {}
    problems = []
    for rel, want in sorted(listed.items()):
        p = version.path / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif p.stat().st_size != want["size"]:
            problems.append(f"{rel}: size {p.stat().st_size} bytes, manifest says {want['size']}")
        elif io.sha256(p) != want["sha256"]:
            problems.append(f"{rel}: sha256 differs from the manifest")
    for p in sorted(version.path.rglob("*")):
        rel = p.relative_to(version.path).as_posix()
        if p.is_file() and rel != MANIFEST and rel not in listed:
            problems.append(f"{rel}: not in the manifest (added after publishing)")
    problems += export_problems(manifest, version.path)
    actual = io.sha256(version.path / MANIFEST)
    for where, want in (
        ("latest", recorded_sha256(version.path.parent, version.number)),
        ("--sha256", expected_sha256),
    ):
        if want is not None and want.lower() != actual:
            problems.append(
                f"{MANIFEST}: sha256 {actual[:16]}... differs from the one in {where} ({want[:16]}...)"
            )
    return problems


def export_file(version: Version, fmt: str) -> Path:
    """The export of format ``fmt``, once every file under it is shown to be exactly what the manifest lists.

    Raises:
        DetectorError: An unsafe export path, a ``.pt`` export, an unlisted, changed or missing file.
    """
    manifest = version.manifest()
    bad = [p for p in export_problems(manifest, version.path) if p.startswith(f"exports.{fmt}.")]
    if bad:
        raise DetectorError(
            f"{version.label}: {bad[0]}; refusing to run it. See detector-artifacts verify {version.label}."
        )
    rel = manifest["exports"][fmt]["path"]
    root, listed = version.path / rel, manifest.get("files") or {}
    prefix = rel.rstrip("/") + "/"
    present = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    wanted = {k for k in listed if k == rel or k.startswith(prefix)}
    for p in present:
        k = p.relative_to(version.path).as_posix()
        if k not in wanted:
            raise DetectorError(
                f"{version.label}: {k} is not in the manifest; refusing to run the {fmt} export."
            )
    for k in sorted(wanted):
        p = version.path / k
        if not p.is_file() or io.sha256(p) != listed[k]["sha256"]:
            raise DetectorError(
                f"{version.label}: {k} differs from the manifest; refusing to run it. "
                f"See detector-artifacts verify {version.label}."
            )
    if not wanted:
        raise DetectorError(f"{version.label}: the manifest lists no files under {rel}.")
    return root
