"""Is the best trial distinguishable from the runner-up? A paired bootstrap on the same images.

Both trials' best.pt are scored on the val split of the best trial's data (``detector-eval``'s
engine, configs/eval/default.yaml's bootstrap), and the difference best - runner-up in mAP50-95
gets a 95% interval over images. That split also chose each trial's best.pt and ranked the trials,
so the comparison is optimistic; ``detector-eval BEST RUNNER_UP split=test`` on held-out data is
the honest one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from detector.errors import DetectorError

log = logging.getLogger(__name__)
NOTE = "on the val split, which also chose each trial's best.pt and ranked the trials: optimistic"


def top_two(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best and the runner-up complete trials, best first (fewer when there are fewer)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return sorted(done, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")[:2]


def versus_runner_up(study: optuna.Study, boot: dict, work: Path) -> dict[str, Any] | None:
    """best.yaml's ``versus_runner_up``: B = the best trial, A = the runner-up; None with fewer than two."""
    from detector.eval.bootstrap import paired_bootstrap
    from detector.eval.run import pass_stats
    from detector.train.rundir import inspect_run

    pair = top_two(study)
    if len(pair) < 2:
        return None
    try:
        best, runner = (inspect_run(t.user_attrs["run_dir"]) for t in pair)
        stats = [pass_stats(r.best, best.data_yaml, "val", r.imgsz, work=work) for r in (runner, best)]
        cmp = paired_bootstrap(*stats, **boot)
    except (DetectorError, ValueError, KeyError) as e:  # a trial folder gone, data that changed
        log.warning("best trial not compared with the runner-up: %s", e)
        return {"skipped": str(e)}
    verdict = {
        "B is better": "distinguishable: the best trial is better",
        "A is better": "the runner-up is better",
    }
    iv = cmp.diff["mAP50-95"]
    return {
        "best": pair[0].number,
        "runner_up": pair[1].number,
        "split": "val",
        "note": NOTE,
        "mAP50-95 difference (best - runner-up)": iv.as_dict(),
        "verdict": verdict.get(cmp.verdict, f"not distinguishable from the runner-up at {cmp.level:.0%}"),
    }
