"""The report's plots, as PNG data URIs: PR curves, the confusion matrix, P/R/F1 against threshold."""

from __future__ import annotations

import base64
import io

import numpy as np

from detector import runtime
from detector.eval.stats import EvalStats
from detector.eval.thresholds import class_curve


def _uri(fig) -> str:
    plt = runtime.pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _curves(stats: EvalStats) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per class with ground truth: (thresholds descending, precision, recall) at IoU 0.5."""
    out = {}
    for c, name in stats.names.items():
        thr, tpc, npc, n_gt = class_curve(stats, c)
        if n_gt:
            out[name] = (thr, tpc / np.maximum(npc, 1), tpc / n_gt)
    return out


def pr_curves(stats: EvalStats, ap50: dict[str, float]) -> str:
    """Precision against recall per class (IoU 0.5), each labelled with its AP50."""
    plt = runtime.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (_, p, r) in _curves(stats).items():
        ax.plot(np.r_[0, r], np.r_[1, p], label=f"{name} (AP50 {ap50.get(name, 0):.3f})", lw=1.5)
    ax.set(
        xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="PR curve per class (IoU 0.5)"
    )
    ax.legend(fontsize=8, loc="lower left")
    return _uri(fig)


def threshold_curves(stats: EvalStats, thresholds: dict[int, float]) -> str:
    """P, R and F1 against the confidence threshold, per class, with each class's threshold marked."""
    plt = runtime.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    by_name = {name: thresholds[c] for c, name in stats.names.items()}
    for k, (name, (thr, p, r)) in enumerate(_curves(stats).items()):
        f1 = 2 * p * r / np.maximum(p + r, 1e-16)
        colour = f"C{k % 10}"
        t = by_name[name]
        i = int(np.searchsorted(-thr, -t, side="right")) - 1  # the last threshold >= t: what t keeps
        for ax, y in zip(axes, (p, r, f1), strict=True):
            ax.plot(thr, y, color=colour, lw=1.5, label=name)
            ax.axvline(t, color=colour, ls="--", lw=1)
            if i >= 0:
                ax.plot([t], [y[i]], "o", color=colour, ms=6)
    for ax, what in zip(axes, ("precision", "recall", "F1"), strict=True):
        ax.set(
            xlabel="confidence threshold", ylabel=what, xlim=(0, 1), ylim=(0, 1.02), title=f"{what} (IoU 0.5)"
        )
    axes[0].legend(fontsize=8)
    fig.suptitle("dashed line and dot: the class's operating threshold", fontsize=9)
    return _uri(fig)


def confusion_plot(cm: np.ndarray, names: dict[int, str]) -> str:
    """The confusion matrix, counts in each cell, background last."""
    plt = runtime.pyplot()
    labels = [*names.values(), "background"]
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.5 + 0.7 * n), max(4.0, 1.3 + 0.6 * n)))
    ax.imshow(cm / max(cm.max(), 1), cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j, i, str(v), ha="center", va="center", fontsize=8, color="black" if v < cm.max() / 2 else "white"
        )
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set(xlabel="true class", ylabel="predicted class", title="confusion at the thresholds (IoU 0.5)")
    return _uri(fig)
