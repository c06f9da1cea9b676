"""Tile geometry, shared by tiled datasets and sliced inference: the grid, the crop, the clipped labels.

A frame is covered by square tiles of ``size`` px that overlap by ``int(overlap * size)`` px; the
last tile of a row or column is flush with the frame's border. This is SAHI's
``get_slice_bboxes`` exactly (checked on 500 random frames), except that along an axis shorter than
a tile the one tile reaches past the frame and is padded: every tile has the same shape, so tiles
batch, and a small image is never upscaled. Padding goes at the bottom and right only, so a tile's
offset is its top-left corner and mapping boxes back to the frame is a plain shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detector.errors import DetectorError

PAD_VALUE = 114  # Ultralytics' letterbox grey: padded borders look like what the model was trained on
MIN_SIDE_PX = 2  # clipped boxes thinner than this are dropped, as Ultralytics' box_candidates (wh_thr=2)
STRIDE = 32  # YOLO's largest stride: a tile side must be a multiple of it


def check(size: int, overlap: float, min_visibility: float | None = None) -> None:
    """Refuse tile settings that cannot work, naming the fix.

    Raises:
        DetectorError: ``size`` is not a positive multiple of 32, ``overlap`` is outside [0, 0.9),
            or ``min_visibility`` is outside (0, 1].
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % STRIDE:
        near = max(STRIDE, round(float(size) / STRIDE) * STRIDE) if isinstance(size, int | float) else 640
        raise DetectorError(
            f"tile size {size!r} is not a positive multiple of {STRIDE} (the model's stride); use e.g. {near}."
        )
    if not isinstance(overlap, int | float) or not 0.0 <= overlap < 0.9:
        raise DetectorError(
            f"tile overlap {overlap!r} must be a fraction of the tile in [0, 0.9), e.g. 0.2 (20% shared)."
        )
    if min_visibility is not None and (
        not isinstance(min_visibility, int | float) or not 0.0 < min_visibility <= 1.0
    ):
        raise DetectorError(
            f"min-visibility {min_visibility!r} must be in (0, 1]: the share of a box's area that must lie "
            "inside a tile for the tile to keep it, e.g. 0.1."
        )


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Tile offsets along one axis: every ``stride`` px, then one flush with the border."""
    if length <= size:
        return [0]
    return [*range(0, length - size, stride), length - size]


def tile_grid(height: int, width: int, size: int, overlap: float) -> np.ndarray:
    """The tiles covering a ``height`` x ``width`` frame, row by row: int64 (N, 4) ``x1, y1, x2, y2``."""
    check(size, overlap)
    stride = size - int(overlap * size)
    grid = [
        (x, y, x + size, y + size)
        for y in _starts(height, size, stride)
        for x in _starts(width, size, stride)
    ]
    return np.array(grid, np.int64).reshape(-1, 4)


def crop(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """The tile ``box`` of ``image`` (H x W or H x W x C), padded at the bottom and right where it passes the border.

    A tile inside the frame is a view (no copy); a padded one is a new array.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = image.shape[:2]
    region = image[y1 : min(y2, h), x1 : min(x2, w)]
    if region.shape[:2] == (y2 - y1, x2 - x1):
        return region
    tile = np.full((y2 - y1, x2 - x1, *image.shape[2:]), PAD_VALUE, image.dtype)
    tile[: region.shape[0], : region.shape[1]] = region
    return tile


def to_pixels(boxes: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """YOLO boxes ``class cx cy w h`` (normalised) -> float64 (M, 5) ``class x1 y1 x2 y2`` in pixels."""
    b = np.asarray(boxes, np.float64).reshape(-1, 5)
    cx, cy, bw, bh = b[:, 1] * width, b[:, 2] * height, b[:, 3] * width, b[:, 4] * height
    return np.stack([b[:, 0], cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)


def clip_to_tile(
    boxes_px: np.ndarray, tile: Sequence[int], min_visibility: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clip frame-pixel boxes to one tile, keeping those of which enough is visible.

    Args:
        boxes_px: (M, 5) ``class x1 y1 x2 y2`` in frame pixels.
        tile: ``x1, y1, x2, y2`` of the tile (it may reach past the frame: that part is padding).
        min_visibility: Keep a box when at least this share of its area lies inside the tile
            (and its clipped sides are at least :data:`MIN_SIDE_PX`).

    Returns:
        ``(labels, visibility)``: (K, 5) ``class cx cy w h`` normalised to the tile, and the
        visible share of each kept box (1.0 for a box wholly inside).
    """
    tx1, ty1, tx2, ty2 = (float(v) for v in tile)
    b = boxes_px[:, 1:5]
    lo, hi = np.array([tx1, ty1, tx1, ty1]), np.array([tx2, ty2, tx2, ty2])
    c = np.clip(b, lo, hi)
    cw, ch = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
    vis = np.minimum(cw * ch / area, 1.0)
    keep = (vis >= min_visibility - 1e-9) & (cw >= MIN_SIDE_PX) & (ch >= MIN_SIDE_PX)
    c, cw, ch = c[keep], cw[keep], ch[keep]
    sw, sh = tx2 - tx1, ty2 - ty1
    labels = np.stack(
        [boxes_px[keep, 0], (c[:, 0] - tx1 + cw / 2) / sw, (c[:, 1] - ty1 + ch / 2) / sh, cw / sw, ch / sh], 1
    )
    return labels, vis[keep]
