"""One sweep trial: compose its config, train in-process, report every epoch, prune.

The trial's config is composed from ``configs/train.yaml`` with the user's overrides, the
search space's fixed ``overrides`` and the sampled point, exactly as ``detector-train`` would
compose it; then :func:`detector.train.run.run` trains it with callbacks that report the val metric
after every epoch. A trial the pruner rejects stops after that epoch (``trainer.stop``) and is
recorded as pruned.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from detector.config import compose, plain_overrides
from detector.errors import DetectorError
from detector.train.rundir import METRICS

TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # states that use up one of n_trials


class Surplus(Exception):
    """A trial created after the study already had ``n_trials`` finished or running (a race between workers)."""


def compose_train(overrides: list[str]) -> DictConfig:
    """Compose a detector-train config; a composition problem is a DetectorError."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = compose("train", overrides)
        OmegaConf.resolve(cfg)
        return cfg
    except (HydraException, OmegaConfBaseException) as e:
        raise DetectorError(f"Cannot compose a trial config with {plain_overrides(overrides)}: {e}") from e


class Reporter:
    """Ultralytics callbacks that report the val metric after every epoch and stop a pruned trial."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.key = trial, next(k for k, v in METRICS.items() if v == metric)
        self.epochs, self.pruned, self._armed = 0, False, False

    def callbacks(self) -> dict:
        return {
            "on_train_start": self._start,
            "on_train_epoch_end": self._arm,
            "on_fit_epoch_end": self._report,
        }

    def _start(self, trainer) -> None:
        if self.pruned:  # a two-stage run pruned in stage 1 does not start stage 2
            raise optuna.TrialPruned(f"pruned after {self.epochs} epochs")

    def _arm(self, trainer) -> None:
        self._armed = True  # the final validation of best.pt also fires on_fit_epoch_end; only epochs count

    def _report(self, trainer) -> None:
        if not self._armed:
            return
        self._armed = False
        # step = epochs trained so far, counted across the stages of a two-stage run
        self.trial.report(float(trainer.metrics[self.key]), self.epochs)
        self.epochs += 1
        if self.trial.should_prune():
            self.pruned = trainer.stop = True  # Ultralytics ends after this epoch


class Objective:
    """One trial: sample, compose, train in-process, return the final val metric."""

    def __init__(self, params: list, base: list[str], sweep_dir: Path, n_trials: int, metric: str) -> None:
        self.params, self.base, self.sweep_dir = params, base, sweep_dir
        self.n_trials, self.metric = n_trials, metric
        self.worker, self.ran = f"{socket.gethostname()}:{os.getpid()}", 0

    def _refuse_surplus(self, trial: optuna.Trial) -> None:
        study = trial.study
        before = [t for t in study.get_trials(deepcopy=False, states=TAKEN) if t.number < trial.number]
        if len(before) >= self.n_trials:
            trial.set_user_attr("surplus", True)
            study.stop()
            raise Surplus(f"trial {trial.number} not needed: the study already has {self.n_trials} trials")

    def __call__(self, trial: optuna.Trial) -> float:
        from detector.tracking.tracker import session
        from detector.train.run import run

        self._refuse_surplus(trial)
        values = {p.key: p.suggest(trial) for p in self.params}
        overrides = self.base + [p.override(values[p.key]) for p in self.params]
        run_dir = self.sweep_dir / "trials" / f"{trial.number:04d}"
        attrs = {"overrides": plain_overrides(overrides), "run_dir": str(run_dir), "worker": self.worker}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        cfg = compose_train(overrides)
        reporter = Reporter(trial, self.metric)
        self.ran += 1
        try:  # logger=wandb: one W&B run per trial, grouped under the study (unless logger.init.group is set)
            with session(cfg, run_dir, group=trial.study.study_name) as tracker:
                summary = run(cfg, run_dir, callbacks=[tracker.callbacks, reporter.callbacks()])
                tracker.record_training(summary)
        finally:
            trial.set_user_attr("epochs", reporter.epochs)
        if reporter.pruned:
            raise optuna.TrialPruned(f"pruned after {reporter.epochs} epoch(s)")
        return float(summary["metrics"][self.metric])
