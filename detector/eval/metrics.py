"""Ultralytics' detection metrics for weighted images, exact and fast: the engine of the bootstrap.

A resample of the images is a vector of integer counts ``w`` (an image drawn k times has weight
k). :class:`ResampleEvaluator` gives, for many such vectors at once, the figures Ultralytics'
``ap_per_class`` would give on the literal concatenation of the drawn images: mAP50, mAP50-95,
precision, recall and F1, overall and per class. It never re-sorts and never materialises a
resample. Set-up sorts the predictions once with the very ``np.argsort(-conf)`` of
``ap_per_class`` (so ties come out in its order), then groups them by class (stable):

- AP (``compute_ap``: precision envelope, 101-point ``np.interp``, trapezoid): at recall grid point
  x the interpolated envelope equals the envelope at the first TP event whose recall exceeds x, so
  only TP predictions are visited (false positives enter through the prediction counts).
- P/R/F1 (``np.interp(-x, -conf, ...)`` on a 1000-point confidence grid, then ONE confidence for
  all classes: the argmax of the box-smoothed mean F1): per grid point, the values at the last
  drawn prediction with conf >= x and at the next drawn one, with np.interp's own arithmetic.

Cost per resample: a few passes over the N sorted predictions plus work proportional to the TP
events and to classes x 1000 (about 0.2-0.4 ms on one CPU core for 20,000-30,000 predictions).
Perfect predictions give AP 0.995, not 1: Ultralytics' curve ends at (recall 1, precision 0), so the
last of the 100 trapezoids adds half its width.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from detector.eval.curves import first_event_above, pr_at_best_f1
from detector.eval.stats import N_IOU, EvalStats

AP_X = np.linspace(0, 1, 101)  # compute_ap's recall grid
_AP_DX = np.diff(AP_X)  # trapezoid widths, as np.trapezoid computes them


@dataclass
class Metrics:
    """Figures of R weightings of the images. Per-class arrays are NaN where the class has no ground
    truth in that weighting: Ultralytics leaves such a class out of every mean."""

    map50: np.ndarray  # (R,)
    map: np.ndarray  # (R,) mAP50-95: mean over present classes and the 10 IoU thresholds
    precision: np.ndarray  # (R,) mean over present classes, at the mean-F1-optimal confidence
    recall: np.ndarray  # (R,)
    f1: np.ndarray  # (R,) mean of the per-class F1 at that confidence
    ap: np.ndarray  # (R, C, 10)
    p: np.ndarray  # (R, C)
    r: np.ndarray  # (R, C)
    f1_c: np.ndarray  # (R, C)
    nt: np.ndarray  # (R, C) ground-truth boxes per class

    def overall(self) -> dict[str, np.ndarray]:
        """Overall figures by name, each (R,)."""
        return {
            "mAP50": self.map50,
            "mAP50-95": self.map,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }

    def per_class(self) -> dict[str, np.ndarray]:
        """Per-class figures by name, each (R, C)."""
        return {
            "mAP50": self.ap[:, :, 0],
            "mAP50-95": self.ap.mean(2),
            "precision": self.p,
            "recall": self.r,
            "f1": self.f1_c,
        }

    @staticmethod
    def concat(parts: Sequence[Metrics]) -> Metrics:
        return Metrics(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts], 0) for f in fields(Metrics)}
        )


class ResampleEvaluator:
    """Exact metrics for image weights (see the module docstring); set up once per :class:`EvalStats`."""

    def __init__(self, stats: EvalStats) -> None:
        self.C, self.n_img = stats.nc, stats.n_images
        self._sort(stats)
        T = np.zeros((self.n_img, self.C), np.int64)  # ground truth per image and class
        tc = stats.target_cls.astype(np.int64)
        ok = (tc >= 0) & (tc < self.C)
        np.add.at(T, (stats.target_img[ok], tc[ok]), 1)
        self.T = T
        self._events()
        self._istar_table = np.zeros((0, len(AP_X)), np.int64)
        self._buffers: dict[str, np.ndarray] = {}
        self.dt = np.int32 if (self.N + 1) * max(self.n_img, 1) < 2**31 else np.int64  # cumulative counts

    def _sort(self, stats: EvalStats) -> None:
        """Predictions in ap_per_class's order, grouped by class; classes outside 0..C-1 dropped."""
        order = np.argsort(-stats.conf)  # the call ap_per_class makes: identical tie order
        cls = stats.pred_cls[order].astype(np.int64)
        keep = (cls >= 0) & (cls < self.C)
        order, cls = order[keep], cls[keep]
        cm = np.argsort(cls, kind="stable")
        S = order[cm]
        self.N = len(S)
        self.s_img, self.s_cls = stats.pred_img[S], cls[cm]
        self.s_conf = stats.conf[S].astype(np.float64)  # np.interp works in float64
        self.s_tp = stats.tp[S]
        self.s_tp0 = self.s_tp[:, 0].astype(np.float64)
        counts = np.bincount(self.s_cls, minlength=self.C)
        self.seg_start = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.seg_end = self.seg_start + counts

    def _events(self) -> None:
        """TP events (sorted positions that are TP at IoU column j), grouped by g = class * 10 + j."""
        pos_list = [np.flatnonzero(self.s_tp[:, j]) for j in range(N_IOU)]
        pos = np.concatenate(pos_list).astype(np.int64)
        grp = np.concatenate([self.s_cls[p] * N_IOU + j for j, p in enumerate(pos_list)]).astype(np.int64)
        o = np.lexsort((pos, grp))
        self.ev_pos, self.ev_grp = pos[o], grp[o]
        self.G = self.C * N_IOU
        gcount = np.bincount(self.ev_grp, minlength=self.G)
        self.ev_gstart = np.concatenate(([0], np.cumsum(gcount)[:-1])).astype(np.int64)
        self.ev_gend = self.ev_gstart + gcount
        slot = np.arange(len(self.ev_pos)) - self.ev_gstart[self.ev_grp]
        self.Lmax = max(int(gcount.max()) if self.G else 0, 1)
        self.ev_rslot = gcount[self.ev_grp] - 1 - slot  # slot counted from the group's end
        self.ev_seg_start = self.seg_start[self.ev_grp // N_IOU]
        self.ev_first = self.ev_gstart[self.ev_grp]
        self.pos0 = pos_list[0].astype(np.int64)  # TP at IoU 0.5, for the P/R curves

    def evaluate(self, weights: np.ndarray, chunk: int = 16, workers: int | None = None) -> Metrics:
        """Metrics for each row of ``weights`` (R, n_images) of non-negative integer image counts.

        Rows go ``chunk`` at a time; ``workers`` threads share them (numpy releases the GIL), None
        meaning min(2, CPU count). The results do not depend on either.
        """
        w = np.atleast_2d(np.asarray(weights, dtype=np.int64))
        if w.ndim != 2 or w.shape[1] != self.n_img or (w < 0).any():
            raise ValueError(f"weights must be (R, {self.n_img}) non-negative image counts, got {w.shape}")
        R, C = len(w), self.C
        nt = w @ self.T
        ap, p, r, f1 = np.zeros((R, C, N_IOU)), np.zeros((R, C)), np.zeros((R, C)), np.zeros((R, C))
        self.istar(nt)  # grow the shared table before any thread reads it

        def run(ev: ResampleEvaluator, rows: range) -> None:
            for i in range(rows.start, rows.stop, chunk):
                s = slice(i, min(i + chunk, rows.stop))
                ap[s], p[s], r[s], f1[s] = ev._chunk(w[s], nt[s])

        workers = min(2, os.cpu_count() or 1) if workers is None else int(workers)
        workers = max(1, min(workers, R // max(chunk, 1)))
        if workers == 1:
            run(self, range(R))
        else:
            from concurrent.futures import ThreadPoolExecutor

            bounds = np.linspace(0, R, workers + 1).astype(int)
            with ThreadPoolExecutor(workers) as ex:
                clones = [self._clone() for _ in range(workers)]
                list(ex.map(run, clones, [range(a, b) for a, b in itertools.pairwise(bounds)]))
        return _means(ap, p, r, f1, nt)

    def point(self) -> Metrics:
        """Metrics of the split itself (every image once): what Ultralytics' val reports."""
        return self.evaluate(np.ones((1, self.n_img), np.int64))

    def _clone(self) -> ResampleEvaluator:
        """A shallow copy sharing the read-only set-up, with its own scratch buffers (one per thread)."""
        ev = copy.copy(self)
        ev._buffers = {}
        return ev

    def buffer(self, name: str, R: int) -> np.ndarray:
        """(R, N + 1) integer scratch with a zero first column, reused across chunks."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < R:
            buf = self._buffers[name] = np.zeros((R, self.N + 1), self.dt)
        return buf[:R]

    def istar(self, nt: np.ndarray) -> np.ndarray:
        """(R, C, 101): the first TP event whose recall exceeds each grid point, by ground-truth count."""
        n = int(nt.max()) + 1 if nt.size else 1
        if len(self._istar_table) < n:
            self._istar_table = first_event_above(np.arange(max(n, 2 * len(self._istar_table))), AP_X)
        return self._istar_table[nt]

    def _chunk(self, w: np.ndarray, nt: np.ndarray) -> tuple[np.ndarray, ...]:
        wp = np.take(w.astype(self.dt), self.s_img, axis=1)  # (R, N) copies of each sorted prediction
        Wc = self.buffer("Wc", len(w))
        np.cumsum(wp, axis=1, out=Wc[:, 1:])  # Wc[:, p + 1]: weighted predictions at sorted index <= p
        return (self._ap(wp, Wc, nt), *pr_at_best_f1(self, wp, Wc, nt))

    def _ap(self, wp: np.ndarray, Wc: np.ndarray, nt: np.ndarray) -> np.ndarray:
        """AP (R, C, 10): compute_ap on the literal concatenation, from the TP events only."""
        R, C, E = wp.shape[0], self.C, len(self.ev_pos)
        if E == 0:
            return np.zeros((R, C, N_IOU))
        wev = np.take(wp, self.ev_pos, axis=1)  # (R, E) copies of each TP block
        ct0 = np.zeros((R, E + 1), self.dt)
        np.cumsum(wev, axis=1, out=ct0[:, 1:])
        ctg = ct0[:, 1:] - np.take(ct0, self.ev_first, axis=1)  # TP count within the group, through the block
        n = np.take(Wc, self.ev_pos + 1, axis=1) - np.take(
            Wc, self.ev_seg_start, axis=1
        )  # predictions in class
        prec = ctg / np.maximum(n, 1) * (wev > 0)  # precision at the block's last copy; 0 if not drawn
        pad = np.zeros((R, self.G, self.Lmax))  # slots back to front: the envelope is a forward scan
        pad[:, self.ev_grp, self.ev_rslot] = prec
        env = np.maximum.accumulate(pad, axis=2)
        ev_env = np.repeat(env[:, self.ev_grp, self.ev_rslot].ravel(), wev.ravel())  # per TP event (copy)
        tot = (np.take(ct0, self.ev_gend, axis=1) - np.take(ct0, self.ev_gstart, axis=1)).reshape(
            R, C, N_IOU, 1
        )
        goff = (np.cumsum(tot.ravel()) - tot.ravel()).reshape(R, C, N_IOU, 1)
        istar = self.istar(nt)[:, :, None, :]
        valid = istar <= tot
        v = ev_env[np.where(valid, goff + istar - 1, 0)] * valid if len(ev_env) else 0.0 * valid
        return (_AP_DX * (v[..., 1:] + v[..., :-1]) / 2.0).sum(-1)  # np.trapezoid's own arithmetic


def _means(ap: np.ndarray, p: np.ndarray, r: np.ndarray, f1: np.ndarray, nt: np.ndarray) -> Metrics:
    """Means over the classes present in each weighting (NaN where none is), as ``Metric.mp`` etc."""
    present = nt > 0
    den = np.where(present.sum(1) > 0, present.sum(1), np.nan)
    with np.errstate(invalid="ignore"):
        mean = lambda a: np.where(present, a, 0.0).sum(1) / den  # noqa: E731
        return Metrics(
            map50=mean(ap[:, :, 0]),
            map=np.where(present[:, :, None], ap, 0.0).sum((1, 2)) / (den * N_IOU),
            precision=mean(p),
            recall=mean(r),
            f1=mean(f1),
            ap=np.where(present[:, :, None], ap, np.nan),
            p=np.where(present, p, np.nan),
            r=np.where(present, r, np.nan),
            f1_c=np.where(present, f1, np.nan),
            nt=nt,
        )
