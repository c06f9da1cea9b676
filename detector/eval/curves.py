"""Precision, recall and F1 of weighted images at Ultralytics' one operating confidence.

``ap_per_class`` evaluates each class's P and R curves with ``np.interp(-x, -conf, ...)`` on a
1000-point confidence grid, takes F1 = 2PR / (P + R + eps), and reports every class at ONE grid
index: the argmax of the box-smoothed mean F1 over classes. This module reproduces that for many
weightings at once (see :mod:`detector.eval.metrics`), with np.interp's own arithmetic: a grid
point x lies between the last drawn prediction with conf >= x (counted through all its copies)
and the next drawn one (counted with one copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-16  # ap_per_class's eps
CONF_X = np.linspace(0, 1, 1000)  # the confidence grid of the P/R/F1 curves


def first_event_above(nt: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Smallest integer i >= 1 with float(i / (nt + eps)) > x, for each ground-truth count and grid point."""
    n = nt[..., None].astype(np.float64) + EPS
    i = np.maximum(np.floor(grid * n).astype(np.int64) + 1, 1)
    for _ in range(3):  # the float guess is off by at most one, either way
        i = np.where((i > 1) & ((i - 1) / n > grid), i - 1, i)
        i = np.where(i / n <= grid, i + 1, i)
    return i


@dataclass
class ConfGrid:
    """The grid points each class needs (those at or below its top confidence; above, np.interp
    returns its ``left`` values whatever the weights), and the distinct last predictions J behind them."""

    q_u: np.ndarray  # per grid point (class-major): its unit
    q_x: np.ndarray  # per grid point: np.interp's query (-x)
    u_cls: np.ndarray  # per unit (class, J): the class
    u_J1: np.ndarray  # J + 1
    u_seg_start: np.ndarray
    u_seg_end: np.ndarray
    u_m: np.ndarray  # IoU-0.5 TP blocks at sorted index <= J
    u_m0: np.ndarray  # ... before the class's segment
    kact: list[int]  # grid points computed per class
    qstart: list[int]

    @classmethod
    def build(cls, ev: Any) -> ConfGrid:
        q_u, q_x, u_J, u_cls, kact, qstart = [], [], [], [], [], []
        n_units = 0
        for c in range(ev.C):
            a, b = int(ev.seg_start[c]), int(ev.seg_end[c])
            k = int((ev.s_conf[a] >= CONF_X).sum()) if b > a else 0
            J = a + np.searchsorted(-ev.s_conf[a:b], -CONF_X[:k], side="right") - 1
            uj, inv = np.unique(J, return_inverse=True)
            qstart.append(sum(kact))
            kact.append(k)
            q_u.append(inv + n_units)
            q_x.append(-CONF_X[:k])
            u_J.append(uj)
            u_cls.append(np.full(len(uj), c))
            n_units += len(uj)
        cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
        uJ, ucls = cat(u_J, np.int64), cat(u_cls, np.int64)
        return cls(
            q_u=cat(q_u, np.int64),
            q_x=cat(q_x, np.float64),
            u_cls=ucls,
            u_J1=uJ + 1,
            u_seg_start=ev.seg_start[ucls],
            u_seg_end=ev.seg_end[ucls],
            u_m=np.searchsorted(ev.pos0, uJ, side="right"),
            u_m0=np.searchsorted(ev.pos0, ev.seg_start[ucls], side="left"),
            kact=kact,
            qstart=qstart,
        )


def _units(ev: Any, g: ConfGrid, wp: np.ndarray, Wc: np.ndarray, nt: np.ndarray, use: np.ndarray) -> tuple:
    """Per unit (class, J): np.interp's segment start (x0; r0, p0) and slopes (sr, sp)."""
    R, N = wp.shape[0], ev.N
    keep = wp > 0
    kc = ev.buffer("kc", R)
    np.cumsum(keep, axis=1, out=kc[:, 1:])  # drawn predictions at sorted index <= p
    pp = np.flatnonzero(keep)  # r * N + p of every drawn prediction, resample by resample
    row = (np.arange(R) * N)[:, None]
    rowoff = (np.cumsum(kc[:, -1]) - kc[:, -1])[:, None]  # first entry of each resample in pp
    c0 = np.zeros((R, len(ev.pos0) + 1), ev.dt)
    np.cumsum(np.take(wp, ev.pos0, axis=1), axis=1, out=c0[:, 1:])
    tpJ = (np.take(c0, g.u_m, axis=1) - np.take(c0, g.u_m0, axis=1)).astype(np.float64)
    nJ = (np.take(Wc, g.u_J1, axis=1) - np.take(Wc, g.u_seg_start, axis=1)).astype(np.float64)
    rank = np.take(kc, g.u_J1, axis=1) + rowoff  # index in pp of the next drawn prediction after J
    j_next = pp[np.minimum(rank, len(pp) - 1)] - row
    j_last = pp[np.maximum(rank - 1, 0)] - row
    has_next = (rank < rowoff + kc[:, -1][:, None]) & (j_next < g.u_seg_end)
    dx0 = -ev.s_conf[np.clip(j_last, 0, N - 1)]
    j_next = np.clip(j_next, 0, N - 1)
    nl = np.take(nt, g.u_cls, axis=1) + EPS
    with np.errstate(invalid="ignore", divide="ignore"):
        den = -ev.s_conf[j_next] - dx0
        r0, p0 = tpJ / nl, tpJ / nJ
        # np.interp: slope = (y1 - y0) / (x1 - x0), y = slope * (x - x0) + y0; a zero slope gives y0
        # exactly, which covers "no next point" and np.interp's x == x0 shortcut.
        t1 = ev.s_tp0[j_next]
        sr = np.where(has_next, ((tpJ + t1) / nl - r0) / den, 0.0)
        sp = np.where(has_next, ((tpJ + t1) / (nJ + 1) - p0) / den, 0.0)
    left = nJ == 0  # nothing drawn with conf >= x: np.interp's `left` (recall 0, precision 1)
    off = ~np.take(use, g.u_cls, axis=1)
    for a, v in ((r0, 0.0), (sr, 0.0), (sp, 0.0), (p0, 1.0)):
        a[left] = v
        a[off] = 0.0
    return dx0, r0, p0, sr, sp


def pr_at_best_f1(ev: Any, wp: np.ndarray, Wc: np.ndarray, nt: np.ndarray) -> tuple[np.ndarray, ...]:
    """P, R, F1 (R, C) at the max-smoothed-mean-F1 confidence, as ``ap_per_class`` reports them."""
    R, C = wp.shape[0], ev.C
    out = [np.zeros((R, C)) for _ in range(3)]
    present = nt > 0
    if ev.N == 0 or not present.any():
        return tuple(out)
    g = ev.__dict__.get("grid") or ev.__dict__.setdefault("grid", ConfGrid.build(ev))
    has_pred = (np.take(Wc, ev.seg_end, axis=1) - np.take(Wc, ev.seg_start, axis=1)) > 0
    use = has_pred & present  # else ap_per_class leaves the class's row at 0
    dx0, r0, p0, sr, sp = _units(ev, g, wp, Wc, nt, use)
    d = g.q_x - np.take(dx0, g.q_u, axis=1)
    r_curve = np.take(sr, g.q_u, axis=1) * d + np.take(r0, g.q_u, axis=1)
    p_curve = np.take(sp, g.q_u, axis=1) * d + np.take(p0, g.q_u, axis=1)
    f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + EPS)
    mean_f1 = np.zeros((R, len(CONF_X)))
    for c in range(C):  # in class order, as f1_curve.mean(0) sums; beyond kact[c] F1 is 0
        s, k = g.qstart[c], g.kact[c]
        mean_f1[:, :k] += f1_curve[:, s : s + k]
    mean_f1 /= np.maximum(present.sum(1), 1)[:, None]
    k = smooth_argmax(mean_f1, 0.1)
    ri = np.arange(R)
    for c in range(C):
        s, kact = g.qstart[c], g.kact[c]
        if kact:
            inside = k < kact  # beyond: np.interp's left values (P 1, R 0, F1 0)
            q = s + np.minimum(k, kact - 1)
            for o, curve, outside in zip(out, (p_curve, r_curve, f1_curve), (1.0, 0.0, 0.0), strict=True):
                o[:, c] = np.where(inside, curve[ri, q], outside)
    return tuple(o * use for o in out)


def smooth_argmax(y: np.ndarray, f: float) -> np.ndarray:
    """Row-wise ``ultralytics.utils.metrics.smooth(y[i], f).argmax()``, exact, without convolving every
    row in full: a cumulative-sum moving average finds the near-maximal indices, then np.convolve runs
    over that range only, so the first maximum is the one Ultralytics finds."""
    R, K = y.shape
    nf = round(K * f * 2) // 2 + 1
    h = nf // 2
    yp = np.concatenate((np.repeat(y[:, :1], h, 1), y, np.repeat(y[:, -1:], h, 1)), 1)
    cs = np.concatenate((np.zeros((R, 1)), np.cumsum(yp, 1)), 1)
    approx = (cs[:, nf:] - cs[:, :-nf]) / nf
    tol = 1e-9 * np.maximum(np.abs(approx).max(1), 1.0)
    near = approx >= (approx.max(1) - tol)[:, None]
    lo, hi = near.argmax(1), K - near[:, ::-1].argmax(1)
    kern = np.ones(nf) / nf
    out = np.empty(R, np.int64)
    for i in range(R):
        seg = np.convolve(yp[i, lo[i] : hi[i] + nf - 1], kern, mode="valid")
        out[i] = lo[i] + int(seg.argmax())
    return out
