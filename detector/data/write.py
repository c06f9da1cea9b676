"""Write a YOLO detection dataset (images/, labels/, data.yaml) all at once or not at all.

Everything is written into a hidden sibling folder that is renamed to the output only when
complete, so an interrupted convert, split or tile never leaves a folder that looks finished.
Inputs are only ever read. An image is a file to place, or one made on the fly (a tile) that
writes itself; rows may be generators, so a big dataset streams through without being held.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import yaml

from detector.data.labels import Box
from detector.errors import DetectorError

LINKS = ("copy", "symlink", "hardlink")
Label = Sequence[Box] | Path | None  # boxes to write, a label file to copy verbatim, or no label


class Generated(Protocol):
    """An image made while writing (a tile): its file name, and how it writes itself."""

    name: str

    def save(self, dst: Path) -> None:
        """Write the image to ``dst``."""
        ...


def _place(src: Path | Generated, dst: Path, link: str) -> None:
    if not isinstance(src, Path):
        src.save(dst)
    elif link == "symlink":
        os.symlink(src.resolve(), dst)
    elif link == "hardlink":
        try:
            os.link(src, dst)
        except OSError as e:
            raise DetectorError(f"Cannot hard-link {src} -> {dst} ({e.strerror}); use --link copy.") from e
    else:
        shutil.copy2(src, dst)


def _unique(name: str, used: set[str]) -> str:
    """``name``, or ``stem_2.ext``... when its stem is taken (labels are per stem: a.jpg and a.png clash)."""
    stem, suffix = os.path.splitext(name)
    candidate, n = stem, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{stem}_{n}"
    used.add(candidate.lower())
    return candidate + suffix


def label_text(boxes: Sequence[Box]) -> str:
    """YOLO label lines, 6 decimals (0.15 px at 1,000 px)."""
    return "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in boxes)


def write_dataset(
    out: str | Path,
    names: dict[int, str],
    splits: dict[str, Iterable[tuple[Path | Generated, Label]]],
    link: str = "copy",
    note: str = "",
    extra: Callable[[], dict[str, str]] | None = None,
) -> Path:
    """Write ``splits`` (split -> [(image, label)]) as a new dataset in ``out``.

    Args:
        out: The new dataset folder; it must not exist yet.
        names: Class id -> name.
        splits: Per split, each image (a source path, or a :class:`Generated` image) and its label.
        link: How source images get there: ``copy``, ``symlink`` (absolute) or ``hardlink``.
        note: Comment lines for the top of data.yaml (where the data came from).
        extra: Called once every image is written; returns more files (name -> text) to write
            beside data.yaml, so they can report on what was written.

    Returns:
        The new ``data.yaml``.

    Raises:
        DetectorError: ``out`` exists, ``link`` is unknown, or a file cannot be placed.
    """
    out = Path(out).expanduser().resolve()
    if out.exists() or out.is_symlink():
        raise DetectorError(f"{out} already exists; name a new output folder (nothing is overwritten).")
    if link not in LINKS:
        raise DetectorError(f"link={link!r}; use one of {', '.join(LINKS)}.")
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for split, rows in splits.items():
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            used: set[str] = set()
            for src, label in rows:
                name = _unique(src.name, used)
                _place(src, tmp / "images" / split / name, link)
                dst = tmp / "labels" / split / f"{os.path.splitext(name)[0]}.txt"
                if isinstance(label, Path):
                    shutil.copyfile(label, dst)
                elif label is not None:
                    dst.write_text(label_text(label))
        doc = {**{s: f"images/{s}" for s in splits}, "names": dict(names)}
        header = "".join(f"# {line}\n" for line in note.splitlines())
        header += "# `path` is left out: train/val resolve relative to this file's folder.\n"
        (tmp / "data.yaml").write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        for name, text in (extra() if extra else {}).items():
            (tmp / name).write_text(text)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "data.yaml"
