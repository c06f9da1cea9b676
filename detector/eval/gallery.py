"""The report's pictures of errors: which images are worst, the confusion matrix, and boxes drawn.

Everything is at the operating thresholds (a class keeps conf >= its threshold) and IoU 0.5.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

from detector.eval.stats import EvalStats, box_iou
from detector.eval.thresholds import counts

GT_COLOUR, PRED_COLOUR = (0, 200, 0), (235, 40, 40)  # ground truth green, predictions red
THUMB = 480  # px, the longer side of a gallery image


def kept(stats: EvalStats, thresholds: dict[int, float]) -> np.ndarray:
    """Mask of the predictions each class's threshold keeps."""
    pc = stats.pred_cls.astype(np.int64)
    thr = np.array([thresholds[c] for c in range(stats.nc)] + [np.inf])
    return stats.conf >= thr[np.clip(pc, 0, stats.nc)]


def worst(stats: EvalStats, thresholds: dict[int, float], n: int) -> list[tuple[int, int, int]]:
    """The ``n`` images with the most missed plus false boxes: ``(image, missed, false)``, worst first."""
    NP, TP, NT = counts(stats, thresholds)
    missed, false = (NT - TP).sum(1), (NP - TP).sum(1)
    order = sorted(range(stats.n_images), key=lambda i: (-(missed[i] + false[i]), stats.im_files[i]))
    return [(i, int(missed[i]), int(false[i])) for i in order[:n]]


def confusion(stats: EvalStats, thresholds: dict[int, float]) -> np.ndarray:
    """(C + 1, C + 1) counts, rows predicted class, columns true class; the last row and column are
    background (a false box; a missed box). Kept boxes claim true boxes greedily, most confident
    first, at IoU >= 0.5, whatever their classes."""
    C = stats.nc
    cm = np.zeros((C + 1, C + 1), np.int64)
    keep = kept(stats, thresholds)
    for i in range(stats.n_images):
        p = np.flatnonzero((stats.pred_img == i) & keep)
        p = p[np.argsort(-stats.conf[p], kind="stable")]
        t = np.flatnonzero(stats.target_img == i)
        iou = (
            box_iou(stats.target_box[t], stats.pred_box[p])
            if len(t) and len(p)
            else np.zeros((len(t), len(p)))
        )
        free = np.ones(len(t), bool)
        for j, k in enumerate(p):
            cand = np.where(free, iou[:, j], 0.0) if len(t) else np.zeros(0)
            g = int(cand.argmax()) if len(cand) and cand.max() >= 0.5 else -1
            true = int(stats.target_cls[t[g]]) if g >= 0 else C
            cm[int(stats.pred_cls[k]), true] += 1
            if g >= 0:
                free[g] = False
        for g in t[free]:
            cm[C, int(stats.target_cls[g])] += 1
    return cm


def drawn(stats: EvalStats, i: int, thresholds: dict[int, float]) -> str:
    """Image ``i`` with its true boxes (green, class name) and kept predictions (red, name and
    confidence), as a JPEG data URI."""
    from PIL import Image, ImageDraw

    with Image.open(Path(stats.im_files[i])) as im:
        img = im.convert("RGB")
    scale = min(1.0, THUMB / max(img.size))
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    draw = ImageDraw.Draw(img)
    keep = kept(stats, thresholds) & (stats.pred_img == i)
    boxes = [
        (b, stats.names[int(c)], GT_COLOUR)
        for b, c in zip(
            stats.target_box[stats.target_img == i], stats.target_cls[stats.target_img == i], strict=True
        )
    ]
    boxes += [
        (b, f"{stats.names[int(c)]} {p:.2f}", PRED_COLOUR)
        for b, c, p in zip(stats.pred_box[keep], stats.pred_cls[keep], stats.conf[keep], strict=True)
    ]
    for box, text, colour in boxes:
        x0, y0, x1, y1 = (float(v) * scale for v in box)
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=2)
        draw.text((x0 + 2, max(0.0, y0 - 11)), text, fill=colour)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
