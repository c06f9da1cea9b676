"""Open (or join) the Optuna study a sweep worker contributes to: storage, sampler, pruner.

Every check here runs before the first trial: an unknown sampler or pruner, an unreachable
storage, or a study that already exists with another direction or metric is a DetectorError.
"""

from __future__ import annotations

import logging
import os
import random
import re
import socket
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from detector.errors import DetectorError

log = logging.getLogger(__name__)

# Sampler name -> factory(seed, **kwargs). TPE's constant liar treats running trials as bad
# results, so workers sampling at the same time spread out instead of piling onto one point.
SAMPLERS: dict[str, Callable[..., Any]] = {
    "tpe": lambda seed, **kw: optuna.samplers.TPESampler(seed=seed, **{"constant_liar": True, **kw}),
    "random": lambda seed, **kw: optuna.samplers.RandomSampler(seed=seed, **kw),
    "gp": lambda seed, **kw: optuna.samplers.GPSampler(seed=seed, **kw),
}
PRUNERS: dict[str, Callable[..., Any]] = {
    "median": lambda **kw: optuna.pruners.MedianPruner(**kw),
    "successive_halving": lambda **kw: optuna.pruners.SuccessiveHalvingPruner(**kw),
    "hyperband": lambda **kw: optuna.pruners.HyperbandPruner(**kw),
    "percentile": lambda **kw: optuna.pruners.PercentilePruner(**kw),
    "threshold": lambda **kw: optuna.pruners.ThresholdPruner(**kw),
    "none": lambda **kw: optuna.pruners.NopPruner(**kw),
}


def _build(kind: str, table: Mapping[str, Callable], name: str, kwargs: Mapping, *args: Any) -> Any:
    if name not in table:
        raise DetectorError(f"hparams_search.{kind}={name!r} is unknown; use one of {sorted(table)}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna flags several options as experimental
            return table[name](*args, **dict(kwargs))
    except (TypeError, ValueError) as e:
        raise DetectorError(
            f"hparams_search.{kind}_args={dict(kwargs)} do not fit the {name} {kind}: {e}"
        ) from e


def pruner(name: str, kwargs: Mapping) -> optuna.pruners.BasePruner:
    """The Optuna pruner ``hparams_search.pruner`` names, built with ``hparams_search.pruner_args``."""
    return _build("pruner", PRUNERS, name, kwargs)


class PerTrialSeed(BaseSampler):
    """A sampler re-created for every trial with ``seed + trial.number``.

    One worker replays the same sequence for the same seed; workers sharing a study never draw
    the same random point, because trial numbers are unique across the study. The samplers in
    :data:`SAMPLERS` keep their state in the study, so a fresh instance loses nothing.
    """

    def __init__(self, name: str, seed: int, kwargs: Mapping) -> None:
        self._name, self._seed, self._kwargs = name, int(seed), dict(kwargs)
        self._inner = _build("sampler", SAMPLERS, name, self._kwargs, self._seed)

    def __str__(self) -> str:
        return f"{type(self._inner).__name__}(seed={self._seed} + trial number)"

    def before_trial(self, study, trial) -> None:
        self._inner = _build("sampler", SAMPLERS, self._name, self._kwargs, self._seed + trial.number)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def storage_url(storage: str | None, sweep_dir: Path) -> str:
    """``sweep.storage``, or the default SQLite file ``<sweep_dir>/study.db``."""
    return str(storage) if storage else f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def masked(url: str) -> str:
    """The URL with any password hidden, safe to print and to store in the study."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all: still hide anything between ':' and '@'
        return re.sub(r":[^:/@]*@", ":***@", url)


def _rdb(
    url: str, connect: dict, heartbeat_s: int, grace_s: int, tries: int = 5
) -> optuna.storages.RDBStorage:
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    for attempt in range(tries):
        try:
            with warnings.catch_warnings():
                # Optuna marks heartbeats and the retry callback experimental; they are what makes kill-safe.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": connect, "pool_pre_ping": True},
                    heartbeat_interval=int(heartbeat_s),
                    grace_period=int(grace_s),
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=1
                    ),
                )
        except SQLAlchemyError as e:
            # Workers that start together on an empty database race to create Optuna's tables
            # (optuna/optuna#1092); the loser finds them made a moment later.
            race = isinstance(e, IntegrityError) or "already exists" in str(e)
            if not race or attempt == tries - 1:
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


def open_storage(url: str, heartbeat_s: int, grace_s: int) -> optuna.storages.RDBStorage:
    """Connect to an Optuna RDB storage (any SQLAlchemy URL), with heartbeats so that a trial of a
    killed worker is noticed after ``grace_s`` seconds, failed and queued again once.

    Raises:
        DetectorError: The URL is malformed, its driver is missing, or the server cannot be reached.
    """
    if heartbeat_s <= 0 or grace_s <= heartbeat_s:
        raise DetectorError(f"sweep.heartbeat_s={heartbeat_s} must be > 0 and below sweep.grace_s={grace_s}.")
    connect = {"timeout": 60} if url.startswith("sqlite") else {}  # seconds a worker waits for SQLite's lock
    if url.startswith("postgresql"):
        connect = {"connect_timeout": 10}  # fail fast on an unreachable host
    try:
        return _rdb(url, connect, heartbeat_s, grace_s)
    except ImportError as e:  # Optuna re-raises the driver's ModuleNotFoundError as a plain ImportError
        driver = getattr(e.__cause__, "name", None) or getattr(e, "name", None) or "its driver"
        raise DetectorError(
            f"sweep.storage={masked(url)} needs the database driver {driver!r}: pip install 'detector[postgres]' "
            "for PostgreSQL, or the driver SQLAlchemy names for your database."
        ) from e
    except Exception as e:  # SQLAlchemy raises ArgumentError, OperationalError, NoSuchModuleError ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DetectorError(
            f"Cannot open the study storage {masked(url)}: {first}. Check that the database server is running "
            "and reachable, and that the URL (dialect://user:password@host:port/database) is right."
        ) from e


def check_existing(storage, name: str, direction: str, metric: str) -> None:
    """Refuse to join an existing study that optimises something else."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return
    have = [d.name.lower() for d in storage.get_study_directions(study_id)]
    attrs = storage.get_study_user_attrs(study_id)
    if have != [direction]:
        raise DetectorError(
            f"Study {name!r} already exists in this storage with direction {'/'.join(have)}, but "
            f"hparams_search.direction={direction}. Use the same direction, or start a new study with "
            "sweep.study_name=<new name>."
        )
    if attrs.get("metric", metric) != metric:
        raise DetectorError(
            f"Study {name!r} already optimises {attrs['metric']}, but hparams_search.metric={metric}. "
            "Use the same metric, or start a new study with sweep.study_name=<new name>."
        )


def join(
    storage, url: str, name: str, direction: str, metric: str, sampler: Any, pruner: Any, attrs: Mapping
):
    """Create or load study ``name`` and record this worker in its user attributes.

    The study keeps ``storage`` (password hidden), ``metric``, ``workers`` (how many workers have
    joined) and one ``worker/<host>/<pid>/<time>`` entry per worker.
    """
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    worker = f"worker/{socket.gethostname()}/{os.getpid()}/{time.strftime('%Y%m%dT%H%M%S')}"
    study.set_user_attr(worker, {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()})
    for key, value in {**attrs, "storage": masked(url), "metric": metric}.items():
        study.set_user_attr(key, value)
    study.set_user_attr("workers", sum(k.startswith("worker/") for k in study.user_attrs))
    return study, worker
