"""Read an Ultralytics ``data.yaml`` and list each split's images and label files.

Resolution follows Ultralytics: ``path`` (default: the YAML's folder) is the root, split
entries are folders, ``.txt`` lists of images, or lists of either, and an image's label is
found by replacing the last ``/images/`` with ``/labels/`` and the suffix with ``.txt``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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

    @property
    def nc(self) -> int:
        return len(self.names)


def label_path(image: Path) -> Path:
    """Ultralytics' image -> label mapping (``img2label_paths``) for one image."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    s = str(image)
    head = sb.join(s.rsplit(sa, 1)) if sa in s else s
    return Path(head).with_suffix(".txt")


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


def _images_in(entry: Path) -> list[Path]:
    if entry.is_dir():
        return sorted(p for p in entry.rglob("*") if p.suffix[1:].lower() in IMG_FORMATS and p.is_file())
    if entry.suffix == ".txt" and entry.is_file():
        out = []
        for line in entry.read_text(errors="replace").splitlines():
            line = line.strip()
            if line:
                p = Path(line)
                out.append(p if p.is_absolute() else (entry.parent / p).resolve())
        return out
    return []


def load(yaml_path: str | Path) -> DataSpec:
    """Parse ``yaml_path`` and list the images of every split it declares.

    Raises:
        DetectorError: The file is missing or not YAML, names are malformed, a required split
            (train, val) is missing, or a split folder holds no images.
    """
    yaml_path = Path(yaml_path).expanduser()
    if not yaml_path.is_file():
        raise DetectorError(
            f"data.yaml not found: {yaml_path}. Pass an existing file: data=custom data.yaml=/path/to/data.yaml"
        )
    try:
        raw = yaml.safe_load(yaml_path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DetectorError(f"{yaml_path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise DetectorError(f"{yaml_path} must be a YAML mapping with train/val/names keys.")
    root = Path(raw.get("path") or yaml_path.parent).expanduser()
    if not root.is_absolute():
        root = (yaml_path.parent / root).resolve()
    spec = DataSpec(yaml_path=yaml_path.resolve(), root=root, names=_parse_names(raw, yaml_path), raw=raw)
    for split in SPLITS:
        entry = raw.get(split)
        if entry is None:
            if split != "test":
                raise DetectorError(f"{yaml_path}: no `{split}:` split. Add `{split}: images/{split}`.")
            continue
        entries = entry if isinstance(entry, list) else [entry]
        images: list[Path] = []
        for e in entries:
            p = Path(str(e)).expanduser()
            p = p if p.is_absolute() else root / p
            if not p.exists():
                hint = (
                    " It has a `download:` key; detector never downloads, so fetch the data yourself."
                    if (raw.get("download"))
                    else ""
                )
                raise DetectorError(f"{yaml_path}: {split} split path does not exist: {p}.{hint}")
            images += _images_in(p)
        if not images:
            raise DetectorError(
                f"{yaml_path}: the {split} split ({', '.join(map(str, entries))}) holds no images "
                f"({', '.join(sorted(IMG_FORMATS))})."
            )
        spec.splits[split] = sorted(images)
    return spec
