"""Confidence intervals over images, and the paired comparison of two models on the same images.

Both draw seeded resamples of the images (with replacement, as many as the split has) and recompute
every figure from the one pass of predictions (:class:`detector.eval.metrics.ResampleEvaluator`),
never by running inference again. Intervals are percentile intervals.

    res = bootstrap(stats, resamples=1000, seed=0, level=0.95)
    res.overall()["mAP50-95"]          # Interval(value, low, high, n_valid)
    res.per_class()["panel"]["recall"]
    res.as_dict()                      # JSON-ready: what metrics.json holds under "overall"/"per_class"

    cmp = paired_bootstrap(stats_a, stats_b, resamples=1000, seed=0, level=0.95)
    cmp.verdict                        # "B is better" | "A is better" | "no detectable difference at 95%"
    cmp.as_dict()                      # differences B - A, overall and per class, with verdicts

A class with no ground truth in a resample is left out of that resample's means, as Ultralytics
would do on that data; ``n_valid`` says in how many resamples a figure was defined.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detector.eval.metrics import Metrics, ResampleEvaluator
from detector.eval.stats import EvalStats


def resample_counts(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_images) counts of each image in resamples of n_images draws with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_images, size=(resamples, n_images))
    flat = (idx + n_images * np.arange(resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * n_images).reshape(resamples, n_images)


@dataclass
class Interval:
    """A figure on the split (``value``) and its percentile interval over the resamples."""

    value: float
    low: float
    high: float
    n_valid: int  # resamples in which the figure is defined

    @property
    def width(self) -> float:
        return self.high - self.low

    def as_dict(self) -> dict[str, float | int | None]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def interval(value: float, samples: np.ndarray, level: float) -> Interval:
    """The percentile interval of ``samples`` (NaNs, undefined resamples, left out)."""
    s = samples[~np.isnan(samples)]
    if not len(s):
        return Interval(float(value), math.nan, math.nan, 0)
    lo, hi = np.quantile(s, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Interval(float(value), float(lo), float(hi), len(s))


@dataclass
class BootstrapResult:
    """The split's figures and ``resamples`` recomputations of them."""

    point: Metrics  # one row: the split itself
    samples: Metrics  # one row per resample
    names: dict[int, str]
    resamples: int
    seed: int
    level: float
    seconds: float

    def present(self) -> list[int]:
        """Classes with ground truth in the split (the others are in no table, as in Ultralytics')."""
        return [c for c in self.names if self.point.nt[0, c] > 0]

    def overall(self) -> dict[str, Interval]:
        pt, sm = self.point.overall(), self.samples.overall()
        return {k: interval(float(pt[k][0]), sm[k], self.level) for k in pt}

    def per_class(self) -> dict[str, dict[str, Interval]]:
        pt, sm = self.point.per_class(), self.samples.per_class()
        return {
            self.names[c]: {k: interval(float(pt[k][0, c]), sm[k][:, c], self.level) for k in pt}
            for c in self.present()
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "resamples": self.resamples,
            "seed": self.seed,
            "level": self.level,
            "seconds": round(self.seconds, 3),
            "overall": {k: v.as_dict() for k, v in self.overall().items()},
            "per_class": {c: {k: v.as_dict() for k, v in m.items()} for c, m in self.per_class().items()},
        }


def _run(stats: EvalStats, weights: np.ndarray, seed: int, level: float) -> BootstrapResult:
    t0 = time.perf_counter()
    ev = ResampleEvaluator(stats)
    point, samples = ev.point(), ev.evaluate(weights)
    return BootstrapResult(point, samples, stats.names, len(weights), seed, level, time.perf_counter() - t0)


def bootstrap(stats: EvalStats, resamples: int, seed: int, level: float) -> BootstrapResult:
    """Percentile bootstrap over the images of one pass."""
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"resamples={resamples} must be >= 1 and level={level} in (0, 1)")
    return _run(stats, resample_counts(stats.n_images, resamples, seed), seed, level)


def verdict(diff: Interval, level: float) -> str:
    """The plain reading of a B - A interval."""
    if diff.n_valid == 0:
        return "undefined: no resample has this class"
    if diff.low > 0:
        return "B is better"
    if diff.high < 0:
        return "A is better"
    return f"no detectable difference at {level:.0%}"


@dataclass
class PairedResult:
    """Model B minus model A on the same images, with the same resamples for both."""

    a: BootstrapResult
    b: BootstrapResult
    diff: dict[str, Interval]  # overall figures, B - A
    diff_per_class: dict[str, dict[str, Interval]]
    level: float

    @property
    def verdict(self) -> str:
        """On mAP50-95."""
        return verdict(self.diff["mAP50-95"], self.level)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "metric": "mAP50-95",
            "difference": "B - A",
            "resamples": self.a.resamples,
            "seed": self.a.seed,
            "level": self.level,
            "overall": {k: v.as_dict() for k, v in self.diff.items()},
            "per_class": {
                c: {**{k: v.as_dict() for k, v in m.items()}, "verdict": verdict(m["mAP50-95"], self.level)}
                for c, m in self.diff_per_class.items()
            },
        }


def align(a: EvalStats, b: EvalStats) -> np.ndarray:
    """``perm`` with ``b.im_files[perm[i]] == a.im_files[i]``.

    Raises:
        ValueError: The two passes did not see the same classes, images and ground truth.
    """
    if a.names != b.names:
        raise ValueError(f"the models' class names differ: {a.names} against {b.names}")
    pos = {f: i for i, f in enumerate(b.im_files)}
    if len(pos) != len(b.im_files) or set(pos) != set(a.im_files) or len(a.im_files) != len(b.im_files):
        raise ValueError("the two evaluations are not on the same images")
    perm = np.array([pos[f] for f in a.im_files], np.int64)
    key = lambda s, img: np.bincount(img * s.nc + s.target_cls.astype(np.int64), minlength=s.n_images * s.nc)  # noqa: E731
    if not np.array_equal(key(a, a.target_img), key(b, np.argsort(perm)[b.target_img])):
        raise ValueError("the two evaluations have different ground truth for the same images")
    return perm


def paired_bootstrap(a: EvalStats, b: EvalStats, resamples: int, seed: int, level: float) -> PairedResult:
    """Paired bootstrap of B - A: each resample draws the same images for both models."""
    perm = align(a, b)
    w_a = resample_counts(a.n_images, resamples, seed)
    w_b = np.empty_like(w_a)
    w_b[:, perm] = w_a  # b's image perm[i] is a's image i
    ra, rb = _run(a, w_a, seed, level), _run(b, w_b, seed, level)
    pa, pb, sa, sb = ra.point.overall(), rb.point.overall(), ra.samples.overall(), rb.samples.overall()
    diff = {k: interval(float(pb[k][0] - pa[k][0]), sb[k] - sa[k], level) for k in pa}
    ca, cb, qa, qb = (
        ra.point.per_class(),
        rb.point.per_class(),
        ra.samples.per_class(),
        rb.samples.per_class(),
    )
    per_class = {
        a.names[c]: {
            k: interval(float(cb[k][0, c] - ca[k][0, c]), qb[k][:, c] - qa[k][:, c], level) for k in ca
        }
        for c in ra.present()
    }
    return PairedResult(ra, rb, diff, per_class, level)


def _map_samples(s: EvalStats, ref: EvalStats, w: np.ndarray) -> tuple[float, np.ndarray]:
    """mAP50-95 of ``s`` on the split and under weights ``w`` given in ``ref``'s image order."""
    ws = np.empty_like(w)
    ws[:, align(ref, s)] = w
    ev = ResampleEvaluator(s)
    return float(ev.point().map[0]), ev.evaluate(ws).map


def pooled_difference(
    pairs: list[tuple[EvalStats, EvalStats]], resamples: int, seed: int, level: float
) -> dict[str, Any]:
    """The mean over pairs (e.g. training seeds) of B - A in mAP50-95, every pair scored on the same
    images and every resample drawing the same images for all of them: an interval over images for
    the mean difference, with the seeds held as they are (it says nothing about other seeds)."""
    ref = pairs[0][0]
    w = resample_counts(ref.n_images, resamples, seed)
    diffs, points = [], []
    for a, b in pairs:
        (pa, sa), (pb, sb) = _map_samples(a, ref, w), _map_samples(b, ref, w)
        points.append(pb - pa)
        diffs.append(sb - sa)
    iv = interval(float(np.mean(points)), np.mean(diffs, axis=0), level)
    return {"pairs": len(pairs), **iv.as_dict(), "verdict": verdict(iv, level)}
