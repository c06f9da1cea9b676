"""Read an Ultralytics ``data.yaml`` and list each split's images and label files.

Resolution follows Ultralytics: ``path`` (default: the YAML's folder) is the root, split
entries are folders, ``.txt`` lists of images, or lists of either, and an image's label is
found by replacing the last ``/images/`` with ``/labels/`` and the suffix with ``.txt``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from detector.data.problems import Problem
from detector.errors import DetectorError

# Ultralytics' IMG_FORMATS (ultralytics/data/utils.py), kept here to avoid importing torch.
IMG_FORMATS = {"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm", "heic"}
SPLITS = ("train", "val", "test")


@dataclass
class DataSpec:
    """A parsed data.yaml with every split resolved to image files."""

    yaml_path: Path
    root: Path
    names: dict[int, str]
    splits: dict[str, list[Path]] = field(default_factory=dict)  # split -> image files, sorted
    raw: dict = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # split problems, when loaded with strict=False

    @property
    def nc(self) -> int:
        return len(self.names)


def label_path(image: Path) -> Path:
    """Ultralytics' image -> label mapping (``img2label_paths``) for one image."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    s = str(image)
    head = sb.join(s.rsplit(sa, 1)) if sa in s else s
    return Path(head).with_suffix(".txt")


def find_yaml(path: str | Path) -> Path:
    """``path`` itself, or the ``data.yaml`` inside it when it is a folder."""
    path = Path(path).expanduser()
    return path / "data.yaml" if path.is_dir() else path


def _parse_names(raw: dict, yaml_path: Path) -> dict[int, str]:
    names = raw.get("names")
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        nc = raw.get("nc")
        if isinstance(nc, int) and nc > 0:
            return {i: f"class{i}" for i in range(nc)}
        raise DetectorError(
            f"{yaml_path}: no `names:` (a list or an id -> name mapping). Add the class names."
        )
    try:
        out = {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError) as e:
        raise DetectorError(f"{yaml_path}: `names:` keys must be integer class ids ({e}).") from e
    if sorted(out) != list(range(len(out))):
        raise DetectorError(
            f"{yaml_path}: `names:` ids must be 0..{len(out) - 1} without gaps, got {sorted(out)}."
        )
    if "nc" in raw and raw["nc"] != len(out):
        raise DetectorError(
            f"{yaml_path}: nc={raw['nc']} but `names:` lists {len(out)} classes; make them agree."
        )
    return out


def images_in(entry: Path) -> list[Path]:
    """The image files under a folder (recursively), or listed in a ``.txt`` file, else none."""
    if entry.is_dir():  # broken links and symlink loops stay in: the check reports them by name
        return sorted(
            p
            for p in entry.rglob("*")
            if p.suffix[1:].lower() in IMG_FORMATS and (p.is_file() or p.is_symlink())
        )
    if entry.suffix == ".txt" and entry.is_file():
        out = []
        for line in entry.read_bytes().decode("utf-8", "surrogateescape").splitlines():
            line = line.strip()
            if line:
                p = Path(line)
                out.append(p if p.is_absolute() else (entry.parent / p).resolve())
        return out
    return []


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level key, so a split problem can point at its line in data.yaml."""
    node = yaml.compose(text)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def _read(yaml_path: Path) -> tuple[dict, dict[str, int]]:
    if not yaml_path.is_file():
        loop = " (a broken link or a symlink loop)" if yaml_path.is_symlink() else ""
        raise DetectorError(
            f"data.yaml not found: {yaml_path}{loop}. "
            "Pass an existing file: data=custom data.yaml=/path/to/data.yaml"
        )
    try:
        text = yaml_path.read_text(encoding="utf-8-sig")
        raw = yaml.safe_load(text)
        lines = _key_lines(text)
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
        raise DetectorError(f"{yaml_path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise DetectorError(f"{yaml_path} must be a YAML mapping with train/val/names keys.")
    return raw, lines


def _split_images(raw: dict, split: str, root: Path, fail: Callable[[str, str, str], None]) -> list[Path]:
    """The sorted images of one split; ``fail(code, split, message)`` hears what is wrong."""
    entry = raw.get(split)
    if entry is None:
        if split != "test":
            fail("missing-split", split, f"no `{split}:` split. Add `{split}: images/{split}`.")
        return []
    entries = entry if isinstance(entry, list) else [entry]
    images: list[Path] = []
    for e in entries:
        p = Path(str(e)).expanduser()
        p = p if p.is_absolute() else root / p
        if not p.exists():
            hint = (
                " It has a `download:` key; detector never downloads, so fetch the data yourself."
                if raw.get("download")
                else ""
            )
            fail("split-not-found", split, f"{split} split path does not exist: {p}.{hint}")
            return []
        images += images_in(p)
    if not images:
        fail(
            "empty-split",
            split,
            f"the {split} split ({', '.join(map(str, entries))}) holds no images "
            f"({', '.join(sorted(IMG_FORMATS))}).",
        )
    return sorted(images)


def load(yaml_path: str | Path, strict: bool = True) -> DataSpec:
    """Parse ``yaml_path`` and list the images of every split it declares.

    Args:
        yaml_path: An Ultralytics data.yaml, or a folder holding one.
        strict: Raise on a missing, absent or empty split. With False each becomes a
            :class:`Problem` in ``spec.problems`` (at its line in data.yaml) and the other splits
            are still read, so a check can report everything at once.

    Raises:
        DetectorError: The file is missing or not YAML, names are malformed, or (strict only) a
            required split (train, val) is missing or a split holds no images.
    """
    yaml_path = find_yaml(yaml_path)
    raw, lines = _read(yaml_path)
    # `path:` (when relative: from the YAML's folder), else the YAML's folder. Resolving the
    # folder first matters: `sub/data.yaml` must not give root `sub/sub`.
    root = (yaml_path.parent.resolve() / Path(str(raw.get("path") or ".")).expanduser()).resolve()
    spec = DataSpec(yaml_path=yaml_path.resolve(), root=root, names=_parse_names(raw, yaml_path), raw=raw)

    def fail(code: str, split: str, message: str) -> None:
        if strict:
            raise DetectorError(f"{yaml_path}: {message}")
        spec.problems.append(Problem(code, str(spec.yaml_path), lines.get(split, 0), message))

    for split in SPLITS:
        images = _split_images(raw, split, root, fail)
        if images:
            spec.splits[split] = images
    return spec
