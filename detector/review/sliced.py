"""``detector-eval MODEL tile.size=...``: a version evaluated on whole frames predicted tile by tile.

The one seam between sliced inference (:mod:`detector.artifacts.slicing`) and the evaluation
engine (:mod:`detector.eval.stats`): every image of the split is predicted exactly as
``detector-artifacts predict`` slices it, through the version's own runtime, and matched against
the full-frame labels in frame pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from detector.artifacts import slicing
from detector.artifacts.predict import pick_format

if TYPE_CHECKING:
    from detector.review.resolve import Model


def sliced_stats(m: Model, data_yaml: str | Path, split: str, conf: float):
    """Evaluation statistics of version ``m`` on ``split``, its images sliced with ``m.tile``.

    Args:
        m: A resolved version (:func:`detector.review.resolve.model`): its export ``m.file`` was
            checked (sha256) when it was resolved, and ``m.tile`` is the slicing to apply
            (:func:`detector.artifacts.slicing.resolve`), both once per command.
        data_yaml: The full-frame dataset (boxes in its labels are matched in frame pixels).
        split: ``test`` or ``val``.
        conf: Confidence threshold of the predictions (0.001 for mAP, as Ultralytics' val).

    Returns:
        ``detector.eval.stats.from_predictions(images, preds, gts, names)``: the engine's EvalStats.
    """
    from detector.eval.stats import from_predictions

    fmt = pick_format(m.version.manifest(), None)
    p = slicing.predict_split(m.file, fmt, data_yaml, split, m.tile, conf)
    return from_predictions(p.images, p.preds, p.gts, p.names)
