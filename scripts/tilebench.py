"""Helpers of scripts/bench_tiles.py: mosaics of small images, Ultralytics' metrics with a bootstrap, SAHI.

Kept apart so that the benchmark reads as its steps.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from benchlib import DATASETS

from detector.data import grid, labels, spec
from detector.data.tile import Tile
from detector.data.write import write_dataset

GRID = 4  # mosaics of 4 x 4 source images


def _groups(images: list[Path]) -> dict[str, list[Path]]:
    """Roboflow's augmented copies of one photo (``<stem>.rf.<hash>``) grouped by the photo."""
    out: dict[str, list[Path]] = defaultdict(list)
    for p in images:
        out[re.sub(r"\.rf\.[0-9a-f]+$", "", p.stem)].append(p)
    return dict(sorted(out.items()))


def _mosaic(paths: list[Path], nc: int, name: str) -> tuple[Tile, list]:
    import cv2

    imgs = [cv2.imread(str(p)) for p in paths]
    h, w = imgs[0].shape[:2]
    frame = np.vstack([np.hstack(imgs[r * GRID : (r + 1) * GRID]) for r in range(GRID)])
    rows = []
    for k, p in enumerate(paths):
        r, c = divmod(k, GRID)
        px = grid.to_pixels(labels.read(spec.label_path(p), nc).boxes, h, w)
        for cls, x1, y1, x2, y2 in px:
            x1, x2, y1, y2 = x1 + c * w, x2 + c * w, y1 + r * h, y2 + r * h
            W, H = GRID * w, GRID * h
            rows.append((int(cls), (x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H))
    return Tile(f"{name}.jpg", frame), rows


def build_mosaics(work: Path, n_train: int, n_val: int, seed: int) -> Path:
    """The mosaic dataset (train and val mosaics from disjoint photos); returns its data.yaml."""
    out = work / "mosaics"
    if (out / "data.yaml").is_file():
        return out / "data.yaml"
    src = spec.load(DATASETS["solar"])
    train_groups = _groups(src.splits["train"])
    stems = list(train_groups)
    random.Random(seed).shuffle(stems)
    need = n_val * GRID * GRID - (len(src.splits["val"]) // 16) * 16
    held, kept = stems[:need], stems[need:]
    val_images = src.splits["val"][: (len(src.splits["val"]) // 16) * 16] + [train_groups[s][0] for s in held]
    train_images = [p for s in kept for p in train_groups[s]]
    random.Random(seed).shuffle(train_images)
    per = GRID * GRID
    if len(train_images) < n_train * per:
        raise SystemExit(f"only {len(train_images) // per} train mosaics possible, asked for {n_train}")

    def rows(images: list[Path], n: int, prefix: str):
        for k in range(n):
            yield _mosaic(images[k * per : (k + 1) * per], src.nc, f"{prefix}{k:03d}")

    note = f"bench_tiles: {GRID}x{GRID} mosaics of {src.yaml_path}, seed {seed}; val photos never in train"
    splits = {"train": rows(train_images, n_train, "train"), "val": rows(val_images, n_val, "val")}
    return write_dataset(out, src.names, splits, note=note)


def evaluate(preds: list, gts: list, n_boot: int, seed: int) -> dict:
    """mAP50 and mAP50-95 over frames with a 95% percentile bootstrap over frames: detector-eval's
    engine (``from_predictions``: Ultralytics' matching and AP), the same definitions as its val."""
    from detector.eval.bootstrap import bootstrap
    from detector.eval.stats import from_predictions

    names = {0: "panel"}
    stats = from_predictions([str(i) for i in range(len(preds))], preds, gts, names)
    overall = bootstrap(stats, n_boot, seed, 0.95).as_dict()["overall"]
    m50, m = overall["mAP50"], overall["mAP50-95"]
    return {"mAP50": m50["value"], "mAP50-95": m["value"], "low": m["low"], "high": m["high"]}


def sahi_model(onnx: Path, imgsz: int, conf: float):
    from sahi import AutoDetectionModel

    return AutoDetectionModel.from_pretrained(
        model_type="ultralytics",
        model_path=str(onnx),
        confidence_threshold=conf,
        device="cpu",
        image_size=imgsz,
    )


def sahi_predict(model, image: np.ndarray, size: int, overlap: float, metric: str, batch: int) -> np.ndarray:
    """SAHI's own sliced prediction, pinned to a fair setting: no full-frame pass, NMS at 0.5, no auto switch."""
    from sahi.predict import get_sliced_prediction

    res = get_sliced_prediction(
        np.ascontiguousarray(image[..., ::-1]),  # its Ultralytics wrapper takes RGB
        model,
        size,
        size,
        overlap,
        overlap,
        perform_standard_pred=False,
        postprocess_type="NMS",
        postprocess_match_metric=metric,
        postprocess_match_threshold=0.5,
        force_postprocess_type=True,  # below conf 0.1 it would switch to NMS/IoU by itself
        verbose=0,
        batch_size=batch,
    )
    rows = [[*p.bbox.to_xyxy(), p.score.value, p.category.id] for p in res.object_prediction_list]
    return np.array(rows, np.float32).reshape(-1, 6)


def big_frame(work: Path, data_yaml: Path) -> Path:
    """A 10,000 x 10,000 px frame: 6 x 6 val mosaics (9,984 px) padded grey to 10,000."""
    import cv2

    out = work / "frame_10000.jpg"
    if out.is_file():
        return out
    images = spec.load(data_yaml).splits["val"]
    rows = [
        np.hstack([cv2.imread(str(images[(r * 6 + c) % len(images)])) for c in range(6)]) for r in range(6)
    ]
    frame = np.full((10_000, 10_000, 3), grid.PAD_VALUE, np.uint8)
    mosaic = np.vstack(rows)
    frame[: mosaic.shape[0], : mosaic.shape[1]] = mosaic
    cv2.imwrite(str(out), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out
