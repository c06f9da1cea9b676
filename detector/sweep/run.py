"""``detector-sweep``: an Optuna study whose trials are ``detector-train`` runs, in this process.

This module checks the sweep before any trial (search space, every composed variant, storage,
existing study), joins the study and runs trials (:mod:`detector.sweep.trial`) until it is full.

``sweep.n_trials`` counts the study's finished trials (complete + pruned) over all workers. A
worker takes a new trial only while finished + running trials are fewer, so workers sharing a
storage stop together at the requested count.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from detector import config, runtime
from detector.errors import DetectorError
from detector.sweep import report, space
from detector.sweep import study as studies
from detector.sweep.trial import TAKEN, Objective, Surplus, compose_train
from detector.train import freeze, plan
from detector.train.rundir import METRICS

log = logging.getLogger(__name__)

_RESERVED = ("sweep", "hparams_search", "hydra")  # override roots that configure the sweep itself
_LR_KEYS = ("train.lr0", "train.momentum")  # ignored by Ultralytics' optimizer=auto
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def train_overrides(task_overrides: list[str]) -> list[str]:
    """The overrides of a ``detector-sweep`` command that are meant for every trial's detector-train config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    return [o.input_line for o in parsed if o.key_or_group.split(".")[0].split("@")[0] not in _RESERVED]


def _count(study: optuna.Study, states: tuple) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental in Optuna
        optuna.storages.fail_stale_trials(study)


class Stopper:
    """After each trial: stop this worker once finished + running trials reach ``n_trials``."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def __call__(self, study: optuna.Study, trial) -> None:
        _fail_stale(study)  # a killed worker's trial frees its slot (and is queued again)
        if _count(study, TAKEN) >= self.n_trials:
            study.stop()


def _wait_for_slot(study: optuna.Study, n_trials: int, heartbeat_s: int, grace_s: int) -> bool:
    """True when this worker may start a trial; waits while every slot is held by a running trial,
    which may belong to a killed worker (it frees up after ``grace_s``)."""
    deadline = time.monotonic() + grace_s + 2 * heartbeat_s
    while True:
        _fail_stale(study)
        done, taken = _count(study, _FINISHED), _count(study, TAKEN)
        if done >= n_trials:
            log.warning(
                "Study %s already has %d/%d finished trials: nothing to run.",
                study.study_name,
                done,
                n_trials,
            )
            return False
        if taken < n_trials:
            return True
        if time.monotonic() > deadline:
            log.warning(
                "All %d trial slots are held by other running workers: nothing left to start.", n_trials
            )
            return False
        log.warning(
            "All %d slots are held by running trials; waiting for a killed worker's trial to expire.",
            n_trials,
        )
        time.sleep(min(heartbeat_s, 5))


def _check_variants(params: list, base: list[str], base_cfg: DictConfig) -> None:
    """Compose the config at every choice and both ends of every range, and check what a trial
    would otherwise find out only once it starts: train keys, freeze settings, optimizer."""
    runtime.configure(weights_dir=base_cfg.paths.weights_dir)  # before ultralytics is imported
    layouts: dict[str, freeze.Layout] = {}
    searched = {p.key for p in params}
    variants = [base_cfg] + [compose_train([*base, p.override(v)]) for p in params for v in p.edges()]
    for cfg in variants:
        train = plan.train_kwargs(cfg)  # finetune.train merged under train, both validated
        plan.check_train_values(cfg)  # a bad value stops the sweep here, not as a failed trial
        if train.get("val") is False:
            raise DetectorError("train.val=false: a sweep reads the val metric after every epoch; remove it.")
        if searched & set(_LR_KEYS) and train.get("optimizer", "auto") == "auto":
            raise DetectorError(
                f"Searching {sorted(searched & set(_LR_KEYS))} with train.optimizer=auto has no effect: Ultralytics' "
                "auto optimizer picks its own lr and momentum. Add train.optimizer=AdamW (or SGD) to "
                "hparams_search.overrides or the command line."
            )
        arch = str(cfg.model.arch)
        layouts.setdefault(arch, freeze.Layout.from_yaml(arch))
        freeze.resolve(OmegaConf.to_container(cfg.finetune, resolve=True).get("freeze"), layouts[arch])


def _settings(cfg: DictConfig) -> tuple[str, str, int]:
    hs, sw = cfg.hparams_search, cfg.sweep
    metric, direction, n = str(hs.metric), str(hs.direction), sw.n_trials
    if metric not in METRICS.values():
        raise DetectorError(f"hparams_search.metric={metric!r}; use one of {sorted(METRICS.values())}.")
    if direction not in ("maximize", "minimize"):
        raise DetectorError(f"hparams_search.direction={direction!r}; use maximize or minimize.")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DetectorError(f"sweep.n_trials={n!r} must be a whole number of trials, at least 1.")
    return metric, direction, n


def prepare(cfg: DictConfig, overrides: list[str]) -> tuple[list, list[str], list[str]]:
    """Check the sweep config and search space against the composed detector-train config.

    Returns:
        (parameters, base overrides for every trial, warnings).
    """
    params = space.parse(cfg.hparams_search.get("space"))
    base = [*overrides, *list(cfg.hparams_search.get("overrides") or [])]
    base_cfg = compose_train(base)
    params, notes = space.resolve(params, base_cfg)
    if not params:
        raise DetectorError("hparams_search.space: every parameter was skipped; nothing left to search.")
    _check_variants(params, base, base_cfg)
    plan.check_inputs(base_cfg)  # the dataset and its labels, once
    return params, base, notes


def run(cfg: DictConfig, sweep_dir: str | Path, overrides: list[str]) -> float | None:
    """Run one sweep worker in ``sweep_dir``; any number may run at once on one storage.

    Args:
        cfg: The composed ``configs/sweep.yaml``.
        sweep_dir: This worker's output folder (Hydra's run folder, ``sweep.dir``).
        overrides: The user's detector-train overrides, applied to every trial.

    Returns:
        The study's best value so far (None without a complete trial).

    Raises:
        DetectorError: On bad input, before the first trial.
    """
    sweep_dir = Path(sweep_dir).resolve()
    metric, direction, n_trials = _settings(cfg)
    hs, sw = cfg.hparams_search, cfg.sweep
    sampler = studies.PerTrialSeed(str(hs.sampler), int(sw.seed), hs.sampler_args or {})
    pruner = studies.pruner(str(hs.pruner), hs.pruner_args or {})
    params, base, notes = prepare(cfg, overrides)
    for note in notes:
        log.warning(note)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    url = studies.storage_url(sw.get("storage"), sweep_dir)
    storage = studies.open_storage(url, int(sw.heartbeat_s), int(sw.grace_s))
    studies.check_existing(storage, str(sw.study_name), direction, metric)
    attrs = {
        "n_trials": n_trials,
        "overrides": config.plain_overrides(base),
        "space": [p.key for p in params],
    }
    study, worker = studies.join(storage, url, str(sw.study_name), direction, metric, sampler, pruner, attrs)
    objective = Objective(params, base, sweep_dir, n_trials, metric)
    finished = False
    try:
        # kill/SLURM preemption ends the trial like Ctrl-C
        with runtime.on_sigterm(lambda n: KeyboardInterrupt(f"signal {n}")):
            if _wait_for_slot(study, n_trials, int(sw.heartbeat_s), int(sw.grace_s)):
                study.optimize(
                    objective, callbacks=[Stopper(n_trials)], catch=(Surplus,), gc_after_trial=True
                )
        finished = True
    except KeyboardInterrupt:
        log.warning("Interrupted: finished trials stay in the study; run the same command to continue it.")
        raise
    finally:
        versus = _versus(cfg, study, sweep_dir) if finished else None
        best = report.write_all(study, sweep_dir, plots=bool(sw.plots), versus=versus)
        study.set_user_attr(
            worker, {**study.user_attrs.get(worker, {}), "finished": time.time(), "trials": objective.ran}
        )
        _print_summary(study, sweep_dir, best, n_trials)
    return None if best is None else best["value"]


def _versus(cfg: DictConfig, study: optuna.Study, sweep_dir: Path) -> dict | None:
    """sweep.compare: the best trial against the runner-up (paired bootstrap on val)."""
    if not cfg.sweep.compare:
        return None
    from detector.eval.run import operating_settings
    from detector.sweep.compare import versus_runner_up

    return versus_runner_up(study, operating_settings(cfg.eval)["bootstrap"], sweep_dir)


def _print_summary(study: optuna.Study, sweep_dir: Path, best: dict | None, n_trials: int) -> None:
    c = report.counts(study)
    print(f"\nstudy {study.study_name}: {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
          f"{c.get('fail', 0)} failed (n_trials={n_trials})")  # fmt: skip
    if best:
        print(f"best {best['metric']}={best['value']:.4f} (trial {best['trial']}): {best['command']}")
        if (v := best.get("versus_runner_up")) and "verdict" in v:
            d = v["mAP50-95 difference (best - runner-up)"]
            print(f"against the runner-up (trial {v['runner_up']}), mAP50-95 {d['value']:+.4f} "
                  f"[{d['low']:+.4f}, {d['high']:+.4f}]: {v['verdict']} ({v['note']})")  # fmt: skip
    print(sweep_dir)  # last line: scripts can capture the sweep folder
