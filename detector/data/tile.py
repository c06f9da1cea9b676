"""Tiled datasets: every image of a YOLO dataset cut into overlapping tiles, its boxes clipped to each.

``detector-data tile`` and training with ``tile=default`` (``data.tile``) share this one
implementation. Tiles of one source image stay in that image's split; an image smaller than a
tile becomes one padded tile; a folder mixing image sizes gets a grid per image. Which empty
tiles are kept is decided by a seeded hash of the tile's name, the same on every run. The new
dataset is written atomically (:func:`detector.data.write.write_dataset`) and records its
source's fingerprint and the settings, in data.yaml's comments and in ``tiles.json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from detector import config
from detector.data import fingerprint, grid
from detector.data import scan as scanning
from detector.data import spec as specs
from detector.data.write import write_dataset
from detector.errors import DetectorError

KEYS = ("size", "overlap", "min_visibility", "empty_fraction", "seed")  # what makes the tiled dataset
PREDICT_KEYS = ("batch", "full_frame", "merge_iou", "edge_margin")  # data.tile.predict: how a frame is sliced
DEFAULTS = Path(config.CONFIG_DIR) / "tile" / "default.yaml"  # the one copy of the default settings
FORMAT = 1  # bump when tiling changes what it writes: cached tiles of older code are not reused
JPEG_QUALITY = 95  # JPEG sources give JPEG tiles; everything else is written as lossless PNG


def defaults() -> dict[str, Any]:
    """The ``data.tile`` node of ``configs/tile/default.yaml`` (dataset and predict settings)."""
    return yaml.safe_load(DEFAULTS.read_text())["data"]["tile"]


def settings(node: Any, where: str = "data.tile") -> dict[str, Any]:
    """The dataset settings of a tile node (:data:`KEYS`), checked.

    Raises:
        DetectorError: A key is missing, or a value cannot work, naming the fix.
    """
    s = config.require(node, KEYS, where)
    grid.check(s["size"], s["overlap"], s["min_visibility"])
    if not isinstance(s["empty_fraction"], int | float) or not 0 <= s["empty_fraction"] <= 1:
        raise DetectorError(
            f"empty fraction {s['empty_fraction']!r} (--empty-fraction, {where}.empty_fraction) must be the "
            "share of tiles without boxes to keep, in [0, 1] (0: none, 1: all)."
        )
    if isinstance(s["seed"], bool) or not isinstance(s["seed"], int):
        raise DetectorError(f"seed {s['seed']!r} (--seed, {where}.seed) must be an integer.")
    return s


def predict_settings(node: Any, where: str = "data.tile.predict") -> dict[str, Any]:
    """The predict settings of a tile node (:data:`PREDICT_KEYS`), checked.

    Raises:
        DetectorError: A key is missing or a value cannot work.
    """
    p = config.require(node, PREDICT_KEYS, where)
    problems = []
    if isinstance(p["batch"], bool) or not isinstance(p["batch"], int) or p["batch"] < 1:
        problems.append(f"{where}.batch={p['batch']!r}: tiles per runtime call, an integer >= 1")
    if not isinstance(p["full_frame"], bool):
        problems.append(f"{where}.full_frame={p['full_frame']!r}: true or false")
    if not isinstance(p["merge_iou"], int | float) or not 0 < p["merge_iou"] <= 1:
        problems.append(f"{where}.merge_iou={p['merge_iou']!r}: an overlap in (0, 1], e.g. 0.5")
    if not isinstance(p["edge_margin"], int | float) or p["edge_margin"] < 0:
        problems.append(f"{where}.edge_margin={p['edge_margin']!r}: pixels, >= 0")
    if problems:
        raise DetectorError("Bad sliced-predict settings:\n  " + "\n  ".join(problems))
    return p


@dataclass
class Counts:
    """What tiling one split produced."""

    images: int = 0
    tiles: int = 0
    empty_kept: int = 0
    empty_dropped: int = 0
    boxes_in: int = 0
    boxes_out: int = 0
    fragments: int = 0  # kept boxes partly outside their tile (visibility < 1)


@dataclass
class Report:
    """What ``tiles.json`` says: the source, the settings, the counts and the skipped images."""

    source: str
    source_fingerprint: str
    settings: dict[str, Any]
    counts: dict[str, Counts] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)  # images that could not be decoded
    label_problems: int = 0  # label lines `detector-data check` reports; they were left out

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "format": FORMAT,
            "min_side_px": grid.MIN_SIDE_PX,
            "pad_value": grid.PAD_VALUE,
        }


@dataclass
class Tile:
    """One tile, written when the dataset writer asks for it (a :class:`~detector.data.write.Generated`)."""

    name: str
    pixels: np.ndarray

    def save(self, dst: Path) -> None:
        import cv2

        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if dst.suffix == ".jpg" else []
        if not cv2.imwrite(str(dst), self.pixels, params):
            raise DetectorError(f"Could not write the tile {dst}.")


def _keep_empty(name: str, fraction: float, seed: int) -> bool:
    """A coin per tile from its name and the seed: the same tiles are kept on every run and machine."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _tiles(item: scanning.Item, s: dict[str, Any], n: Counts, report: Report) -> Iterator[tuple[Tile, list]]:
    """The kept tiles of one image with their labels; an undecodable image is recorded and skipped."""
    import cv2

    image = cv2.imread(str(item.image), cv2.IMREAD_ANYCOLOR)  # grey stays grey: a third of the memory
    if image is None:
        report.skipped.append({"image": str(item.image), "reason": "OpenCV cannot decode it"})
        return
    n.images += 1
    height, width = image.shape[:2]
    boxes = grid.to_pixels(item.labels.boxes, height, width)
    n.boxes_in += len(boxes)
    suffix = ".jpg" if item.image.suffix.lower() in (".jpg", ".jpeg") else ".png"
    for box in grid.tile_grid(height, width, s["size"], s["overlap"]):
        labels, vis = grid.clip_to_tile(boxes, box, s["min_visibility"])
        name = f"{item.image.stem}__x{box[0]}_y{box[1]}{suffix}"
        if not len(labels):
            keep = _keep_empty(name, s["empty_fraction"], s["seed"])
            n.empty_kept, n.empty_dropped = n.empty_kept + keep, n.empty_dropped + (not keep)
            if not keep:
                continue
        n.tiles += 1
        n.boxes_out += len(labels)
        n.fragments += int((vis < 1 - 1e-6).sum())
        yield Tile(name, grid.crop(image, box)), [(int(c), *map(float, r)) for c, *r in labels]


def tile_dataset(src: str | Path | specs.DataSpec, out: str | Path, s: dict[str, Any]) -> tuple[Path, Report]:
    """Write a tiled copy of every split of ``src`` into ``out`` (a new folder), atomically.

    Args:
        src: A data.yaml, a folder holding one, or a parsed spec.
        out: The new dataset folder; it must not exist.
        s: Settings as :func:`settings` returns them.

    Returns:
        The new data.yaml and the report also written to ``tiles.json`` beside it.

    Raises:
        DetectorError: Bad settings, an unusable data.yaml, or an existing ``out``.
    """
    s = settings(s)
    spec = src if isinstance(src, specs.DataSpec) else specs.load(src)
    items = scanning.scan(spec, decode=False)
    report = Report(str(spec.yaml_path), fingerprint.from_items(spec.names, items), dict(s))
    report.label_problems = sum(len(it.labels.problems) for it in items)

    def rows(split: str) -> Iterator[tuple[Tile, list]]:
        n = report.counts.setdefault(split, Counts())
        for it in items:
            if it.split == split:
                yield from _tiles(it, s, n, report)

    note = (
        f"Tiled by detector-data from {spec.yaml_path}\n"
        f"source fingerprint {report.source_fingerprint}\n"
        f"tiles {json.dumps(s, sort_keys=True)}; see tiles.json"
    )
    extra = lambda: {"tiles.json": json.dumps(report.to_dict(), indent=2) + "\n"}  # noqa: E731
    data_yaml = write_dataset(out, spec.names, {sp: rows(sp) for sp in spec.splits}, note=note, extra=extra)
    return data_yaml, report


def cache_key(source_fingerprint: str, s: dict[str, Any]) -> str:
    """The cache folder name of a tiled dataset: its source's content, the settings and :data:`FORMAT`."""
    doc = {"source": source_fingerprint, "settings": {k: s[k] for k in KEYS}, "format": FORMAT}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def cached(
    spec: specs.DataSpec, s: dict[str, Any], root: str | Path, source_fingerprint: str
) -> dict[str, Any]:
    """The tiled dataset of ``spec`` under ``root/<key>/``, made on first use, reused after.

    A file lock per key lets concurrent runs (sweep workers) share one copy: the first writes it,
    the others wait and reuse it.

    Returns:
        What a run summary records: the settings, the cache folder and key, whether it was reused,
        and the tiles.json counts.
    """
    from filelock import FileLock

    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(source_fingerprint, s)
    out = root / key
    with FileLock(root / f".{key}.lock"):
        reused = (out / "tiles.json").is_file()
        if not reused:
            tile_dataset(spec, out, s)
    doc = json.loads((out / "tiles.json").read_text())
    return {
        **{k: s[k] for k in KEYS},
        "data_yaml": str(out / "data.yaml"),
        "cache_key": key,
        "reused": reused,
        "source_fingerprint": doc["source_fingerprint"],
        "counts": doc["counts"],
        "skipped": doc["skipped"],
    }
