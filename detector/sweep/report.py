"""What a sweep leaves for its user: ``best.yaml``, ``trials.csv`` and PNG plots.

Every file is written to a temporary name and renamed, so a reader (or a second worker writing
the same files at the end of its run) never sees half of one.
"""

from __future__ import annotations

import csv
import io
import logging
import shlex
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from detector import runtime
from detector.io import atomic, write_text

log = logging.getLogger(__name__)

# Optuna's matplotlib plots, one PNG each. Importances need two finished trials that differ.
PLOTS = {
    "history": "plot_optimization_history",
    "importances": "plot_param_importances",
    "parallel_coordinates": "plot_parallel_coordinate",
    "intermediate_values": "plot_intermediate_values",
}


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state, lower-case state names."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    return out


def command(overrides: list[str]) -> str:
    """The shell command that trains with ``overrides``, quoted for a POSIX shell."""
    return " ".join(["detector-train", *(shlex.quote(o) for o in overrides)])


def write_best(study: optuna.Study, path: Path, versus: dict | None = None) -> dict[str, Any] | None:
    """Write ``best.yaml``: the best trial's overrides and the command that reproduces it, and
    ``versus`` (:func:`detector.sweep.compare.versus_runner_up`) when given."""
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    overrides = list(best.user_attrs.get("overrides", []))
    doc = {
        "study": study.study_name,
        "storage": study.user_attrs.get("storage"),
        "metric": study.user_attrs.get("metric"),
        "direction": study.direction.name.lower(),
        "value": best.value,
        "trial": best.number,
        "params": dict(best.params),
        "overrides": overrides,
        "command": command(overrides),
        "run_dir": best.user_attrs.get("run_dir"),
        "epochs": best.user_attrs.get("epochs"),
        "trials": counts(study),
        **({"versus_runner_up": versus} if versus else {}),
    }
    write_text(
        path,
        "# The best trial so far; `command` retrains it with detector-train.\n"
        + yaml.safe_dump(doc, sort_keys=False),
    )
    return doc


def write_csv(study: optuna.Study, path: Path) -> int:
    """Write every trial of the study, one row each; returns the row count."""
    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    fields = [
        "number",
        "state",
        "value",
        *names,
        "epochs",
        "duration_s",
        "worker",
        "run_dir",
        "started",
        "finished",
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for t in trials:
        writer.writerow(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value if t.state == TrialState.COMPLETE else "",
                **{k: t.params.get(k, "") for k in names},
                "epochs": t.user_attrs.get("epochs", ""),
                "duration_s": round(t.duration.total_seconds(), 2) if t.duration else "",
                "worker": t.user_attrs.get("worker", ""),
                "run_dir": t.user_attrs.get("run_dir", ""),
                "started": t.datetime_start or "",
                "finished": t.datetime_complete or "",
            }
        )
    write_text(path, buf.getvalue())
    return len(trials)


def write_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Save Optuna's own matplotlib plots as PNG files; a plot the study cannot support yet is skipped."""
    from optuna.visualization import matplotlib as ovm

    plt = runtime.pyplot()

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fn in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna.visualization.matplotlib is marked experimental
                ax = getattr(ovm, fn)(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(10, 6)
            fig.tight_layout()
            path = out_dir / f"{name}.png"
            with atomic(path) as tmp:
                fig.savefig(tmp, dpi=100)
            written.append(path)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # too few trials for this plot
            log.info("plot %s skipped: %s", name, e)
        finally:
            plt.close("all")
    return written


def write_all(
    study: optuna.Study, sweep_dir: Path, plots: bool = True, versus: dict | None = None
) -> dict[str, Any] | None:
    """Write best.yaml, trials.csv and (optionally) plots/ into ``sweep_dir``; returns best.yaml's content."""
    best = write_best(study, sweep_dir / "best.yaml", versus)
    write_csv(study, sweep_dir / "trials.csv")
    if plots:
        write_plots(study, sweep_dir / "plots")
    return best
