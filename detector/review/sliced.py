"""``detector-eval MODEL tile.size=...``: a version evaluated on whole frames predicted tile by tile.

The one seam between sliced inference (:mod:`detector.artifacts.slicing`) and the evaluation
engine (:mod:`detector.eval.stats`): every image of the split is predicted exactly as
``detector-artifacts predict`` slices it, through the version's own runtime, and matched against
the full-frame labels in frame pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector.artifacts import slicing, store
from detector.artifacts.integrity import export_file
from detector.artifacts.predict import pick_format


def sliced_stats(
    version: store.Version, data_yaml: str | Path, split: str, tile: dict[str, Any], conf: float
):
    """Evaluation statistics of ``version`` on ``split``, its images sliced as the version slices them.

    Args:
        version: A published version; its export's files are checked (sha256) before it runs.
        data_yaml: The full-frame dataset (boxes in its labels are matched in frame pixels).
        split: ``test`` or ``val``.
        tile: Overrides of the version's own tile settings: ``size`` (0: whole frames), ``overlap``,
            ``batch``, ``full_frame`` (None values are not given).
        conf: Confidence threshold of the predictions (0.001 for mAP, as Ultralytics' val).

    Returns:
        ``detector.eval.stats.from_predictions(images, preds, gts, names)``: the engine's EvalStats.

    Raises:
        DetectorError: The version's files differ from its manifest, or bad tile settings.
    """
    from detector.eval.stats import from_predictions

    manifest = version.manifest()
    fmt = pick_format(manifest, None)
    path = export_file(version, fmt)  # every file of the export checked against the manifest first
    s = slicing.resolve(manifest, tile)
    p = slicing.predict_split(path, fmt, data_yaml, split, s, conf)
    return from_predictions(p.images, p.preds, p.gts, p.names)
