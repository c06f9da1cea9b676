"""Per-image detection statistics: what every figure of ``detector-eval`` is computed from.

Two ways in, one result (:class:`EvalStats`):

- :func:`collect` runs ONE Ultralytics validation pass (``YOLO(model).val(...)``) through whatever
  runtime the model file is (``.pt`` through PyTorch, ``.onnx`` through ONNX Runtime, an OpenVINO
  folder, ...), with a ``DetectionValidator`` subclass that keeps, per image, exactly the arrays
  Ultralytics feeds to ``ap_per_class`` (the TP matrix at the 10 IoU thresholds, confidences,
  classes, target classes), plus the boxes in original-image pixels for the report's gallery.
  This is the only module of :mod:`detector.eval` that imports Ultralytics.
- :func:`from_predictions` builds the same statistics from plain arrays, for predictions made
  outside the validator (sliced inference in full-image coordinates, detector.review.sliced)::

      stats = from_predictions(
          images=["a.jpg", ...],
          preds=[(xyxy (n, 4) px, conf (n,), cls (n,)), ...],   # one tuple per image
          gts=[(xyxy (m, 4) px, cls (m,)), ...],
          names={0: "panel"},
      )

  It matches predictions to ground truth exactly like ``DetectionValidator.match_predictions``
  (greedy, in descending confidence, per IoU threshold 0.50:0.05:0.95, classes must agree).

Pinned to ultralytics 8.4.190; the internals relied on are listed in docs/eval.md.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

N_IOU = 10  # IoU thresholds 0.50:0.05:0.95, as DetectionValidator.iouv
IOUV = np.linspace(0.5, 0.95, N_IOU)


@dataclass
class EvalStats:
    """Per-image statistics of one pass, stored flat (image-major, in the order the images were seen).

    ``tp``/``conf``/``pred_cls``/``pred_img``/``pred_box`` have one row per prediction (an image's
    predictions in descending confidence); ``target_*`` one row per ground-truth box. ``*_img``
    index ``im_files``; boxes are xyxy in original-image pixels. Dtypes are Ultralytics' (float32
    confidences and classes), so that its ``ap_per_class`` sees bit-identical inputs.
    """

    im_files: list[str]
    names: dict[int, str]
    tp: np.ndarray  # (N, 10) bool
    conf: np.ndarray  # (N,) float32
    pred_cls: np.ndarray  # (N,) float32 class ids
    pred_img: np.ndarray  # (N,) int64
    pred_box: np.ndarray  # (N, 4) float32
    target_cls: np.ndarray  # (M,) float32
    target_img: np.ndarray  # (M,) int64
    target_box: np.ndarray  # (M, 4) float32
    ultralytics: dict[str, float] = field(default_factory=dict)  # results_dict of the same pass
    meta: dict[str, Any] = field(default_factory=dict)  # model, split, runtime settings, timing

    @property
    def n_images(self) -> int:
        return len(self.im_files)

    @property
    def nc(self) -> int:
        return len(self.names)

    def gt_per_class(self) -> np.ndarray:
        """Ground-truth boxes per class in the split."""
        return np.bincount(self.target_cls.astype(np.int64), minlength=self.nc)[: self.nc]


def _cat(items: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return (
        np.concatenate([np.asarray(i, dtype).reshape(-1, *shape[1:]) for i in items], 0)
        if items
        else np.zeros(shape, dtype)
    )


def from_images(per_image: Sequence[dict[str, Any]], names: Mapping[int, str], **kw: Any) -> EvalStats:
    """Build from one dict per image: ``im_file, tp, conf, pred_cls, pred_box, target_cls, target_box``."""
    n_pred = [len(p["conf"]) for p in per_image]
    n_tgt = [len(p["target_cls"]) for p in per_image]
    col = lambda k: [p[k] for p in per_image]  # noqa: E731
    return EvalStats(
        im_files=[str(p["im_file"]) for p in per_image],
        names={int(k): str(v) for k, v in names.items()},
        tp=_cat(col("tp"), (0, N_IOU), bool),
        conf=_cat(col("conf"), (0,), np.float32),
        pred_cls=_cat(col("pred_cls"), (0,), np.float32),
        pred_img=np.repeat(np.arange(len(per_image)), n_pred).astype(np.int64),
        pred_box=_cat(col("pred_box"), (0, 4), np.float32),
        target_cls=_cat(col("target_cls"), (0,), np.float32),
        target_img=np.repeat(np.arange(len(per_image)), n_tgt).astype(np.int64),
        target_box=_cat(col("target_box"), (0, 4), np.float32),
        **kw,
    )


def box_iou(a: np.ndarray, b: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes, in float32 like ``ultralytics.utils.metrics.box_iou``."""
    a, b = np.asarray(a, np.float32)[:, None], np.asarray(b, np.float32)[None]
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    wa, wb = a[..., 2:] - a[..., :2], b[..., 2:] - b[..., :2]
    return inter / (wa[..., 0] * wa[..., 1] + wb[..., 0] * wb[..., 1] - inter + np.float32(eps))


def match(pred_cls: np.ndarray, true_cls: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """(n, 10) TP matrix: ``DetectionValidator.match_predictions`` (greedy), predictions in descending conf.

    Args:
        pred_cls: (n,) predicted classes, ordered by descending confidence.
        true_cls: (m,) ground-truth classes.
        iou: (m, n) IoU of each ground-truth box with each prediction.
    """
    correct = np.zeros((len(pred_cls), N_IOU), bool)
    if not len(pred_cls) or not len(true_cls):
        return correct
    iou = iou * (np.asarray(true_cls)[:, None] == np.asarray(pred_cls)[None])
    thresholds = IOUV.astype(np.float32)
    matched = np.zeros((iou.shape[0], N_IOU), bool)  # targets claimed at each threshold
    for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
        available = np.where(matched, 0, iou[:, j, None])
        k = available.argmax(0)
        correct[j] = available[k, range(N_IOU)] >= thresholds
        matched[k, range(N_IOU)] |= correct[j]
    return correct


def from_predictions(
    images: Sequence[str],
    preds: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    gts: Sequence[tuple[np.ndarray, np.ndarray]],
    names: Mapping[int, str],
    **kw: Any,
) -> EvalStats:
    """Per-image statistics from plain arrays (boxes xyxy in pixels of the same image for both).

    Args:
        images: One path (or id) per image.
        preds: Per image ``(xyxy (n, 4), conf (n,), cls (n,))``, in any order.
        gts: Per image ``(xyxy (m, 4), cls (m,))``.
        names: Class id -> name.
        kw: ``ultralytics``/``meta`` for the result.
    """
    if not len(images) == len(preds) == len(gts):
        raise ValueError(f"{len(images)} images, {len(preds)} prediction sets, {len(gts)} ground-truth sets")
    per_image = []
    for im, (pb, pc, pk), (gb, gk) in zip(images, preds, gts, strict=True):
        pb, gb = np.asarray(pb, np.float32).reshape(-1, 4), np.asarray(gb, np.float32).reshape(-1, 4)
        o = np.argsort(-np.asarray(pc, np.float32), kind="stable")  # NMS hands them over in this order
        pb, pc, pk = pb[o], np.asarray(pc, np.float32)[o], np.asarray(pk, np.float32)[o]
        gk = np.asarray(gk, np.float32).reshape(-1)
        tp = match(pk, gk, box_iou(gb, pb)) if len(pb) and len(gb) else np.zeros((len(pb), N_IOU), bool)
        per_image.append(
            dict(im_file=im, tp=tp, conf=pc, pred_cls=pk, pred_box=pb, target_cls=gk, target_box=gb)
        )
    return from_images(per_image, names, **kw)


@functools.cache
def validator_class() -> type:
    """The ``DetectionValidator`` subclass that keeps per-image statistics (imports Ultralytics)."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import ops

    class PerImageValidator(DetectionValidator):
        """Keeps, per image, what ``update_metrics`` hands to ``DetMetrics.update_stats``.

        Nothing Ultralytics computes changes: ``update_metrics`` runs unmodified and appends one entry
        per image to ``self.metrics.stats``; those entries are copied right after, before
        ``get_stats`` clears them, with the boxes scaled back to original-image pixels.
        """

        def init_metrics(self, model: Any) -> None:
            super().init_metrics(model)
            self.per_image: list[dict[str, Any]] = []
            self.backend_format = getattr(model, "format", None)  # AutoBackend's name for what runs

        def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
            st = self.metrics.stats
            n0 = len(st["tp"])
            super().update_metrics(preds, batch)
            for si, k in enumerate(range(n0, len(st["tp"]))):
                pb = self._prepare_batch(si, batch)
                self.per_image.append(
                    {
                        "im_file": batch["im_file"][si],
                        "tp": np.array(st["tp"][k], bool),
                        "conf": np.array(st["conf"][k]),
                        "pred_cls": np.array(st["pred_cls"][k]),
                        "pred_box": _pixels(preds[si]["bboxes"], pb),
                        "target_cls": np.array(st["target_cls"][k]),
                        "target_box": _pixels(pb["bboxes"], pb) if len(pb["cls"]) else np.zeros((0, 4)),
                    }
                )

    def _pixels(boxes: Any, pb: dict[str, Any]) -> np.ndarray:
        """Boxes of the letterboxed input back in original-image pixels."""
        return ops.scale_boxes(pb["imgsz"], boxes.clone(), pb["ori_shape"], pb["ratio_pad"]).cpu().numpy()

    return PerImageValidator


def collect(model: str | Path, data: str | Path, split: str, **val_kwargs: Any) -> EvalStats:
    """One validation pass of ``model`` (any format Ultralytics' AutoBackend loads) on ``data``/``split``.

    ``val_kwargs`` go to ``YOLO.val`` unchanged (imgsz, batch, conf, iou, max_det, device, project,
    name, ...), so the pass is the one ``YOLO(model).val(data=data, split=split, **val_kwargs)``
    runs; plots are off unless asked for. ``stats.ultralytics`` holds that pass's ``results_dict``.
    """
    from ultralytics import YOLO

    seen: list[Any] = []
    yolo = YOLO(str(model), task="detect")
    yolo.add_callback("on_val_end", seen.append)
    t0 = time.perf_counter()
    res = yolo.val(
        validator=validator_class(),
        data=str(data),
        split=split,
        **{"plots": False, "verbose": False, **val_kwargs},
    )
    v = seen[-1]
    meta = {k: getattr(v.args, k) for k in ("imgsz", "batch", "rect", "conf", "iou", "max_det")}
    meta.update(model=str(model), split=split, backend=getattr(v, "backend_format", None))
    meta.update(seconds=round(time.perf_counter() - t0, 3), speed_ms=dict(v.speed))
    ultra = {k: float(x) for k, x in res.results_dict.items()}
    return from_images(v.per_image, v.names, ultralytics=ultra, meta=meta)
