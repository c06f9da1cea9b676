"""Sliced inference: cut a big frame into tiles, batch them through the version's runtime, merge.

Each frame is decoded once; its tiles (:func:`detector.data.grid.tile_grid`, the grid the tiled
training data was cut with) stream through the exported file ``batch`` at a time, one runtime call
per batch, so memory is bounded by the batch, not by the frame's tile count (400 tiles of 640 px
for a 10,000 px frame). Boxes are shifted back to frame pixels and merged per class with the
hybrid NMS of :mod:`detector.artifacts.boxes`. An optional full-frame pass adds the whole frame
resized to the model input, for objects larger than a tile. Neither torch nor Ultralytics is
imported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detector.artifacts import boxes, runtimes
from detector.data import grid
from detector.data import labels as labelling
from detector.data import spec as specs
from detector.data import tile as tiles
from detector.errors import DetectorError


@dataclass(frozen=True)
class Slicing:
    """How a frame is sliced and merged (``data.tile`` size and overlap, and ``data.tile.predict``)."""

    size: int
    overlap: float
    batch: int
    full_frame: bool
    merge_iou: float
    edge_margin: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(manifest: dict, given: dict[str, Any]) -> Slicing | None:
    """The slicing a version's predict applies: its own tile settings, overridden by ``given``.

    Args:
        manifest: The version's manifest; a tiled run's version has a ``tile`` record.
        given: ``size`` (0: whole frames), ``overlap``, ``batch``, ``full_frame``; None values are not given.

    Returns:
        None for whole-frame prediction: the version was not trained on tiles and no size was
        given, or size 0 was asked for.

    Raises:
        DetectorError: Bad values, or slicing options without a tile size to slice with.
    """
    given = {k: v for k, v in given.items() if v is not None}
    own = manifest.get("tile")
    if given.get("size") == 0 or (own is None and "size" not in given):
        if set(given) - {"size"}:
            raise DetectorError(
                f"{', '.join(sorted(set(given) - {'size'}))} slice frames into tiles; this version was not "
                "trained on tiles, so also pass --tile SIZE (e.g. --tile 640)."
            )
        return None
    base = own or tiles.defaults()  # a whole-frame model sliced on request: the YAML's defaults
    size, overlap = given.get("size", base["size"]), given.get("overlap", base["overlap"])
    grid.check(size, overlap)
    predict = {**base["predict"], **{k: given[k] for k in ("batch", "full_frame") if k in given}}
    return Slicing(size, overlap, **tiles.predict_settings(predict, "predict"))


def _cut(dets: np.ndarray, tile: np.ndarray, height: int, width: int, margin: float) -> np.ndarray:
    """Boxes within ``margin`` px of an edge of their tile that is not the frame's own edge."""
    x1, y1, x2, y2 = (float(v) for v in tile)
    return (
        ((dets[:, 0] <= x1 + margin) & (x1 > 0))
        | ((dets[:, 1] <= y1 + margin) & (y1 > 0))
        | ((dets[:, 2] >= x2 - margin) & (x2 < width))
        | ((dets[:, 3] >= y2 - margin) & (y2 < height))
    )


def predict_whole(image: np.ndarray, model: runtimes.Model, conf: float) -> np.ndarray:
    """The whole frame letterboxed (centred, grey 114) to the model input: detections in frame pixels."""
    import cv2

    h, w, size = image.shape[0], image.shape[1], model.imgsz
    r = min(size / h, size / w)
    nh, nw = round(h * r), round(w * r)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas = np.full((size, size, *image.shape[2:]), grid.PAD_VALUE, np.uint8)
    canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = runtimes.infer(model, runtimes.to_input(canvas[None], size))
    dets = runtimes.decode(out, conf, model.end2end)[0]
    dets[:, :4] = (dets[:, :4] - np.array([left, top, left, top], np.float32)) / r
    return _in_frame(dets, np.array([0, 0, w, h]), h, w)


def _in_frame(dets: np.ndarray, cell: np.ndarray, height: int, width: int) -> np.ndarray:
    """Tile-pixel detections shifted to frame pixels and clipped to what the tile shows of the frame,
    as Ultralytics clips boxes to an image (the padding of an edge tile shows nothing)."""
    x1, y1, x2, y2 = (float(v) for v in cell)
    dets[:, [0, 2]] = np.clip(dets[:, [0, 2]] + x1, x1, min(x2, width))
    dets[:, [1, 3]] = np.clip(dets[:, [1, 3]] + y1, y1, min(y2, height))
    return dets


def predict_frame(image: np.ndarray, model: runtimes.Model, s: Slicing, conf: float) -> np.ndarray:
    """Sliced prediction of one frame: (M, 6) ``x1, y1, x2, y2, score, class`` in frame pixels."""
    h, w = image.shape[:2]
    cells = grid.tile_grid(h, w, s.size, s.overlap)
    scale = np.float32(s.size / model.imgsz)
    found, cuts = [], []
    for start in range(0, len(cells), s.batch):  # one runtime call per batch of tiles
        batch = cells[start : start + s.batch]
        x = runtimes.to_input(np.stack([grid.crop(image, b) for b in batch]), model.imgsz)
        for cell, dets in zip(
            batch, runtimes.decode(runtimes.infer(model, x), conf, model.end2end), strict=True
        ):
            dets[:, :4] *= scale
            found.append(_in_frame(dets, cell, h, w))
            cuts.append(_cut(found[-1], cell, h, w, s.edge_margin))
    if s.full_frame and len(cells) > 1:
        found.append(predict_whole(image, model, conf))
        cuts.append(np.zeros(len(found[-1]), bool))
    return boxes.nms(np.concatenate(found), s.merge_iou, cut=np.concatenate(cuts))


def predict(image: np.ndarray, model: runtimes.Model, s: Slicing | None, conf: float) -> np.ndarray:
    """Sliced prediction with ``s``, whole-frame prediction without."""
    return predict_frame(image, model, s, conf) if s else predict_whole(image, model, conf)


def read(path: Path) -> np.ndarray | None:
    """A frame as BGR (or, for a grey file, grey) uint8, or None when OpenCV cannot decode it.

    JPEG and PNG cannot be decoded region by region, so the frame is decoded whole, once; a grey
    file stays grey (100 MB for 10,000 x 10,000 px instead of 300 MB).
    """
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_ANYCOLOR)


def draw(image: np.ndarray, dets: np.ndarray, names: dict) -> np.ndarray:
    """Boxes and ``name conf`` labels drawn on the frame at the objects' own scale.

    Ultralytics' rule (line width 0.3% of the image side) is applied as if the frame were at most
    1,280 px: a big frame is looked at zoomed in, where its objects keep their native size, and
    labels scaled to a 10,000 px frame would cover them.
    """
    import cv2

    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    lw = max(2, round(min(sum(image.shape[:2]) / 2, 1280) * 0.003))
    for x1, y1, x2, y2, score, cls in dets:
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(image, p1, p2, (0, 200, 0), lw)
        text = f"{names.get(int(cls), int(cls))} {score:.2f}"
        cv2.putText(image, text, (p1[0], max(p1[1] - lw, 10)), 0, lw / 4, (0, 200, 0), max(lw // 2, 1))
    return image


def record(src: Path, annotated: str, shape: tuple, dets: np.ndarray, names: dict) -> dict[str, Any]:
    """One image's entry of boxes.json (the schema of ``detector-artifacts predict``)."""
    return {
        "image": str(src.resolve()),
        "annotated": annotated,
        "height": int(shape[0]),
        "width": int(shape[1]),
        "boxes": [
            {
                "class": int(c),
                "name": names.get(int(c)),
                "confidence": round(float(p), 4),
                "xyxy": [round(float(v), 1) for v in xyxy],
            }
            for *xyxy, p, c in dets.tolist()
        ],
    }


@dataclass
class SplitPredictions:
    """Per image of a split, in order: predictions and ground truth in full-frame pixels."""

    images: list[str]
    preds: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (xyxy (K, 4), conf (K,), class (K,))
    gts: list[tuple[np.ndarray, np.ndarray]]  # (xyxy (M, 4), class (M,))
    names: dict[int, str]


def predict_split(
    path: Path, fmt: str, data_yaml: str | Path, split: str, s: Slicing | None, conf: float
) -> SplitPredictions:
    """Predict every image of one split of a dataset (sliced with ``s``, whole frames without).

    The ground truth is read from the labels of the same (full-frame) images, so the two can be
    matched in frame pixels (``detector-eval``'s ``from_predictions``).

    Raises:
        DetectorError: No such split, or an image that cannot be decoded.
    """
    spec = specs.load(data_yaml)
    if split not in spec.splits:
        raise DetectorError(f"{spec.yaml_path} has no {split!r} split; it has {', '.join(spec.splits)}.")
    model = runtimes.open_model(path, fmt)
    result = SplitPredictions([], [], [], dict(spec.names))
    for src in spec.splits[split]:
        image = read(src)
        if image is None:
            raise DetectorError(f"{src} cannot be decoded; fix it or leave it out (detector-data check).")
        dets = predict(image, model, s, conf)
        gt = grid.to_pixels(labelling.read(specs.label_path(src), spec.nc).boxes, *image.shape[:2])
        result.images.append(str(src))
        result.preds.append((dets[:, :4], dets[:, 4], dets[:, 5].astype(np.int64)))
        result.gts.append((gt[:, 1:5].astype(np.float32), gt[:, 0].astype(np.int64)))
    return result
