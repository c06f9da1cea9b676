"""Per-class operating thresholds, chosen on the val split, and what a deployer sees at them.

A threshold t keeps the predictions of its class with conf >= t; a prediction counts as correct
when it matches a ground-truth box at IoU 0.5 (Ultralytics' greedy matching, column 0 of the TP
matrix). Matching runs in descending confidence, so dropping the predictions below t never changes
whether those above it are correct: P, R and F1 at any t come from the one val pass.

Rules (``eval.threshold``):

- ``f1``: the threshold of maximal F1 (on a tie, the highest).
- ``precision:P``: the LOWEST threshold whose precision is >= P: the most recall there is at that
  precision. (Precision is not monotone in t; some higher thresholds may dip below P again.)
- ``recall:R``: the HIGHEST threshold whose recall is >= R: the fewest false boxes at that recall.
  Recall never rises with t, so every lower threshold meets R too; the lowest would be the val conf
  floor (0.001), which no deployer wants.

A target no threshold meets is reported per class (:func:`unmet`); a class that cannot be chosen
for at all (no ground truth or no prediction in the split) gets ``eval.fallback_conf``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detector.errors import DetectorError
from detector.eval.bootstrap import interval, resample_counts
from detector.eval.stats import EvalStats

RULES = "f1, precision:<target in (0, 1]> or recall:<target in (0, 1]>"


def parse_rule(rule: str) -> tuple[str, float | None]:
    """``"f1"`` -> ("f1", None); ``"precision:0.9"`` -> ("precision", 0.9).

    Raises:
        DetectorError: Anything else, with the accepted forms.
    """
    text = str(rule).strip().lower()
    if text == "f1":
        return "f1", None
    kind, _, value = text.partition(":")
    try:
        target = float(value)
    except ValueError:
        target = None
    if kind not in ("precision", "recall") or target is None or not 0 < target <= 1:
        raise DetectorError(f"eval.threshold={rule!r} is not a threshold rule; use {RULES}.")
    return kind, target


@dataclass
class Choice:
    """The threshold of one class and the figures at it on the split it was chosen on."""

    name: str
    threshold: float
    chosen: bool  # False: no threshold could be chosen; ``threshold`` is the fallback
    precision: float | None
    recall: float | None
    f1: float | None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def class_curve(stats: EvalStats, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Candidate thresholds of class ``c`` (its distinct confidences, descending) with the TP and
    prediction counts kept at each, and its ground-truth count."""
    m = stats.pred_cls.astype(np.int64) == c
    conf, tp = stats.conf[m].astype(np.float64), stats.tp[m, 0]
    o = np.argsort(-conf, kind="stable")
    conf, tp = conf[o], tp[o]
    last = np.r_[conf[1:] != conf[:-1], True] if len(conf) else np.zeros(0, bool)  # end of each tie group
    n_gt = int((stats.target_cls.astype(np.int64) == c).sum())
    return conf[last], np.cumsum(tp)[last], np.arange(1, len(conf) + 1)[last], n_gt


def _pick(kind: str, target: float | None, prec: np.ndarray, rec: np.ndarray, f1: np.ndarray) -> int | None:
    """Index into the descending thresholds, or None when the target is out of reach."""
    if kind == "f1":
        return int(np.flatnonzero(f1 == f1.max())[0])  # first = highest threshold
    ok = np.flatnonzero((prec if kind == "precision" else rec) >= target)
    if not len(ok):
        return None
    return int(ok[-1] if kind == "precision" else ok[0])


def choose(stats: EvalStats, rule: str, fallback: float) -> dict[int, Choice]:
    """Per-class thresholds chosen on ``stats`` (a val split's pass: never the test split)."""
    kind, target = parse_rule(rule)
    out: dict[int, Choice] = {}
    for c, name in stats.names.items():
        thr, tpc, npc, n_gt = class_curve(stats, c)
        if n_gt == 0 or not len(thr):
            why = "no ground truth of it in this split" if n_gt == 0 else "the model predicts none of it"
            out[c] = Choice(
                name, fallback, False, None, None, None, f"class {name!r}: {why}; conf {fallback} kept"
            )
            continue
        prec, rec = tpc / npc, tpc / n_gt
        f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-16)
        k = _pick(kind, target, prec, rec, f1)
        if k is None:
            best = prec.max() if kind == "precision" else rec.max()
            msg = f"class {name!r}: no threshold reaches {kind} {target:g} (at most {best:.3f} on this split)"
            out[c] = Choice(name, fallback, False, None, None, None, msg)
        else:
            note = "" if f1[k] > 0 else f"class {name!r}: no box of it is correct at any threshold (F1 0)"
            out[c] = Choice(name, float(thr[k]), True, float(prec[k]), float(rec[k]), float(f1[k]), note)
    return out


def unmet(choices: dict[int, Choice], rule: str) -> list[str]:
    """The messages of classes whose precision or recall target no threshold meets."""
    if parse_rule(rule)[0] == "f1":
        return []
    return [ch.message for ch in choices.values() if not ch.chosen and "no threshold reaches" in ch.message]


def counts(stats: EvalStats, thresholds: dict[int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image and class (n_images, C): kept predictions, correct ones among them, ground-truth boxes."""
    C, n = stats.nc, stats.n_images
    thr = np.array([float(thresholds[c]) for c in range(C)])
    pc = stats.pred_cls.astype(np.int64)
    kept = (pc >= 0) & (pc < C)
    kept[kept] = stats.conf[kept].astype(np.float64) >= thr[pc[kept]]
    NP, TP, NT = np.zeros((n, C), np.int64), np.zeros((n, C), np.int64), np.zeros((n, C), np.int64)
    np.add.at(NP, (stats.pred_img[kept], pc[kept]), 1)
    np.add.at(TP, (stats.pred_img[kept], pc[kept]), stats.tp[kept, 0].astype(np.int64))
    tc = stats.target_cls.astype(np.int64)
    ok = (tc >= 0) & (tc < C)
    np.add.at(NT, (stats.target_img[ok], tc[ok]), 1)
    return NP, TP, NT


def _figures(w: np.ndarray, NP: np.ndarray, TP: np.ndarray, NT: np.ndarray) -> dict[str, np.ndarray]:
    tp, npred, nt = w @ TP, w @ NP, w @ NT
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(nt > 0, np.where(npred > 0, tp / np.maximum(npred, 1), 0.0), np.nan)
        r = np.where(nt > 0, tp / np.maximum(nt, 1), np.nan)
        f = np.where(p + r > 0, 2 * p * r / (p + r), np.where(nt > 0, 0.0, np.nan))
        P, R = tp.sum(1) / np.maximum(npred.sum(1), 1), tp.sum(1) / np.maximum(nt.sum(1), 1)
        micro = np.where(P + R > 0, 2 * P * R / np.maximum(P + R, 1e-16), 0.0)
        return {
            "p": p, "r": r, "f1": f,
            "precision": np.nanmean(p, 1), "recall": np.nanmean(r, 1), "f1_macro": np.nanmean(f, 1),
            "micro_precision": P, "micro_recall": R, "micro_f1": micro,
        }  # fmt: skip


def at_thresholds(
    stats: EvalStats, thresholds: dict[int, float], resamples: int, seed: int, level: float
) -> dict[str, Any]:
    """P, R and F1 (IoU 0.5) when each class keeps conf >= its threshold, with bootstrap intervals.

    Overall figures are the macro mean over classes with ground truth (like Ultralytics' P and R)
    and the micro (pooled) figures, whose precision also counts kept boxes of absent classes.
    """
    NP, TP, NT = counts(stats, thresholds)
    present = [c for c in range(stats.nc) if NT[:, c].sum() > 0]
    if not present:
        return {"thresholds": {stats.names[c]: thresholds[c] for c in stats.names}, "per_class": {}}
    pt = _figures(np.ones((1, stats.n_images), np.int64), NP, TP, NT)
    sm = _figures(resample_counts(stats.n_images, resamples, seed), NP, TP, NT)
    out: dict[str, Any] = {"thresholds": {stats.names[c]: thresholds[c] for c in stats.names}}
    for k in ("precision", "recall", "f1_macro", "micro_precision", "micro_recall", "micro_f1"):
        out[k] = interval(float(pt[k][0]), sm[k], level).as_dict()
    out["per_class"] = {
        stats.names[c]: {
            key: interval(float(pt[k][0, c]), sm[k][:, c], level).as_dict()
            for key, k in (("precision", "p"), ("recall", "r"), ("f1", "f1"))
        }
        for c in present
    }
    return out
