"""Synthetic per-image statistics for the evaluation engine's tests, and Ultralytics' slow reference."""

from __future__ import annotations

import numpy as np

from detector.eval.stats import N_IOU, EvalStats, from_images


def image(name: str, tp, conf, pred_cls, target_cls) -> dict:
    """One image's entry for :func:`detector.eval.stats.from_images` (boxes left empty)."""
    tp = np.asarray(tp, bool).reshape(-1, N_IOU)
    return {
        "im_file": name,
        "tp": tp,
        "conf": np.asarray(conf, np.float32),
        "pred_cls": np.asarray(pred_cls, np.float32),
        "pred_box": np.zeros((len(tp), 4), np.float32),
        "target_cls": np.asarray(target_cls, np.float32),
        "target_box": np.zeros((len(target_cls), 4), np.float32),
    }


def synthetic(n_img: int, seed: int, skill: float = 0.6, C: int = 3, gt_seed: int | None = None) -> EvalStats:
    """A random model on random ground truth: backgrounds, a class without ground truth (C - 1),
    predictions more often right when confident. ``gt_seed`` fixes the ground truth apart from the
    predictions, so two seeds give two models on the same images."""
    g, rng = np.random.default_rng(seed if gt_seed is None else gt_seed), np.random.default_rng(seed)
    per = []
    for i in range(n_img):
        tc = g.integers(0, C - 1, 0 if g.random() < 0.15 else g.integers(1, 6)).astype(np.float32)
        n = int(rng.integers(0, 20))
        pc = rng.integers(0, C, n).astype(np.float32)
        conf = np.sort(rng.random(n).astype(np.float32))[::-1]
        tp = np.zeros((n, N_IOU), bool)
        for c in range(C):
            idx = [j for j in np.flatnonzero(pc == c) if rng.random() < skill * (conf[j] + 0.3)]
            for k in range(N_IOU):
                tp[[j for j in idx if rng.random() < 1 - 0.07 * k][: int((tc == c).sum())], k] = True
        tp = np.logical_and.accumulate(tp, axis=1)
        per.append(image(f"im{i:03d}.jpg", tp, conf, pc, tc))
    return from_images(per, {c: f"c{c}" for c in range(C)})


def perfect(stats: EvalStats) -> EvalStats:
    """Every ground-truth box predicted once, right class, confidence 1, correct at every IoU."""
    per = [
        image(f, np.ones((int((stats.target_img == i).sum()), N_IOU)), np.ones((stats.target_img == i).sum()),
              stats.target_cls[stats.target_img == i], stats.target_cls[stats.target_img == i])
        for i, f in enumerate(stats.im_files)
    ]  # fmt: skip
    return from_images(per, stats.names)


def reference(stats: EvalStats, idx: np.ndarray) -> dict:
    """Ultralytics' own ``ap_per_class`` on the literal concatenation of images ``idx`` (repeats allowed)."""
    from ultralytics.utils.metrics import ap_per_class

    p = np.concatenate([np.flatnonzero(stats.pred_img == i) for i in idx] or [np.zeros(0, int)])
    t = np.concatenate([np.flatnonzero(stats.target_img == i) for i in idx] or [np.zeros(0, int)])
    _, _, P, R, F1, ap, cls, *_ = ap_per_class(
        stats.tp[p], stats.conf[p], stats.pred_cls[p], stats.target_cls[t]
    )
    return {"mAP50-95": ap.mean(), "mAP50": ap[:, 0].mean(), "precision": P.mean(), "recall": R.mean(), "f1": F1.mean(),
            "cls": cls.astype(int), "ap": ap, "p": P, "r": R}  # fmt: skip
