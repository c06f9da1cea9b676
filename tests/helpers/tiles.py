"""Synthetic frames with known boxes, a perfect stand-in for an exported model, and stitched sample frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from detector.artifacts.runtimes import Model


def frame(height: int, width: int, rects: list[tuple[int, int, int, int]], grey: bool = False) -> np.ndarray:
    """A black frame with white filled rectangles ``x1, y1, x2, y2`` (pixel edges)."""
    image = np.zeros((height, width) if grey else (height, width, 3), np.uint8)
    for x1, y1, x2, y2 in rects:
        image[y1:y2, x1:x2] = 255
    return image


def oracle(imgsz: int, batch: int | None = None) -> Model:
    """A 'model' that finds every white rectangle in each input tile, as an end-to-end export would.

    Output ``(N, 300, 6)``: one box per connected white region, in input pixels, scored by its area
    (so a whole object outscores a fragment of it), class 0. ``batch``: a static export batch.
    """

    def call(x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.shape[1:] == (3, imgsz, imgsz)
        assert batch is None or len(x) == batch, "a static export gets exactly its batch"
        out = np.zeros((len(x), 300, 6), np.float32)
        for i, tile in enumerate(x):
            n, _, stats, _ = cv2.connectedComponentsWithStats((tile[0] > 0.5).astype(np.uint8))
            for k, (left, top, w, h, area) in enumerate(stats[1:n][:300]):
                out[i, k] = (left, top, left + w, top + h, min(0.99, 0.3 + area / imgsz**2), 0)
        return out

    return Model(call, imgsz, batch, True, "oracle")


def write_images(root: Path, splits: dict[str, list[tuple[str, np.ndarray | bytes, list[str]]]]) -> Path:
    """A YOLO dataset from arrays (or raw bytes: a broken file) and label lines; returns data.yaml."""
    for split, rows in splits.items():
        for sub in ("images", "labels"):
            (root / sub / split).mkdir(parents=True, exist_ok=True)
        for name, image, lines in rows:
            path = root / "images" / split / name
            if isinstance(image, bytes):
                path.write_bytes(image)
            else:
                cv2.imwrite(str(path), image)
            (root / "labels" / split / f"{Path(name).stem}.txt").write_text("".join(f"{x}\n" for x in lines))
    doc = {**{s: f"images/{s}" for s in splits}, "names": {0: "panel"}}
    (root / "data.yaml").write_text(yaml.safe_dump(doc))
    return root / "data.yaml"


def yolo_line(box: tuple[float, float, float, float], height: int, width: int, cls: int = 0) -> str:
    """A YOLO label line for a pixel box ``x1, y1, x2, y2``."""
    x1, y1, x2, y2 = box
    return f"{cls} {(x1 + x2) / 2 / width} {(y1 + y2) / 2 / height} {(x2 - x1) / width} {(y2 - y1) / height}"


def stitch(images: list[Path], columns: int, out: Path) -> Path:
    """Equal-size images side by side, ``columns`` per row, written to ``out`` (a big frame)."""
    tiles = [cv2.imread(str(p)) for p in images]
    rows = [np.hstack(tiles[k : k + columns]) for k in range(0, len(tiles), columns)]
    cv2.imwrite(str(out), np.vstack(rows))
    return out
