"""A sweep's search space: read ``hparams_search.space``, check it against the config, sample it.

Each entry names any key ``detector-train`` takes (``train.lr0``, ``finetune.freeze``) or a
config group (``model``, ``augment``), and says how to sample it::

    train.lr0: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}   # float range, log scale
    train.imgsz: {type: int, low: 256, high: 416, step: 32}          # int range
    finetune.freeze: [none, backbone, neck]                          # categorical
    augment: {choices: [none, light, aerial], optional: true}        # a group; skipped if absent

A sampled point becomes ordinary overrides (``train.lr0=0.0031``, ``augment=light``), so every
trial's config is composed exactly as ``detector-train`` would compose it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from detector import config
from detector.config import PASSTHROUGH, group_options
from detector.errors import DetectorError

_FIELDS = {"type", "low", "high", "log", "step", "choices", "optional"}
_SAFE = re.compile(r"^[\w.\-/:]+$")  # override values that need no quoting
_ABSENT = object()


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    key: str  # config key or group name
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    optional: bool = False  # skip (with a warning) when the key or group does not exist
    group: bool = False  # the key is a config group: a choice picks one of its option files

    def suggest(self, trial) -> Any:
        """Draw this parameter from an Optuna trial (or read it back from a fixed/retried one)."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_categorical(self.key, list(self.choices))

    def override(self, value: Any) -> str:
        """The ``detector-train`` override that sets this parameter to ``value``."""
        return f"{self.key}={_format(value)}"  # train.X keys get their ++ from compose()

    def edges(self) -> list[Any]:
        """The values worth composing before the sweep starts: every choice, or both ends."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]


def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text if _SAFE.match(text) else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(key: str, field: str, value: Any, integer: bool) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool):
        raise DetectorError(
            f"hparams_search.space.{key}.{field}={value!r} must be {'an integer' if integer else 'a number'}."
        )
    return value


def _range(key: str, spec: Mapping, kind: str) -> Param:
    integer = kind == "int"
    if "low" not in spec or "high" not in spec:
        raise DetectorError(f"hparams_search.space.{key}: a {kind} range needs low and high.")
    low, high = (_number(key, f, spec[f], integer) for f in ("low", "high"))
    log, step = bool(spec.get("log", False)), spec.get("step")
    if low == high:
        raise DetectorError(
            f"hparams_search.space.{key}: empty range (low = high = {low}); widen it or fix the key."
        )
    if low > high:
        raise DetectorError(f"hparams_search.space.{key}: inverted range low={low} > high={high}; swap them.")
    if log and low <= 0:
        raise DetectorError(f"hparams_search.space.{key}: log: true needs low > 0 (got {low}).")
    if step is not None:
        step = _number(key, "step", step, integer)
        if log:
            raise DetectorError(f"hparams_search.space.{key}: use either log: true or step, not both.")
        if not 0 < step <= high - low:
            raise DetectorError(f"hparams_search.space.{key}: step={step} must be in (0, high - low].")
    return Param(key, kind, low, high, log, step, optional=bool(spec.get("optional", False)))


def _categorical(key: str, choices: Any, optional: bool) -> Param:
    if not isinstance(choices, (list, tuple)) or not choices:
        raise DetectorError(f"hparams_search.space.{key}: choices must be a non-empty list, got {choices!r}.")
    bad = [c for c in choices if c is not None and not isinstance(c, (bool, int, float, str))]
    if bad:
        raise DetectorError(
            f"hparams_search.space.{key}: choices must be plain values (text, numbers, true/false, null), "
            f"not {bad}; write a list setting as a separate config option and choose between options."
        )
    if len(set(map(repr, choices))) != len(choices):
        raise DetectorError(f"hparams_search.space.{key}: choices {list(choices)} repeat a value.")
    return Param(key, "categorical", choices=tuple(choices), optional=optional)


def parse(space: Mapping | DictConfig | None) -> list[Param]:
    """Read ``hparams_search.space`` into parameters, checking each range and list.

    Raises:
        DetectorError: Empty space, unknown fields, empty or inverted ranges, bad choices.
    """
    if isinstance(space, DictConfig):
        space = OmegaConf.to_container(space, resolve=True)
    if not space:
        raise DetectorError("hparams_search.space is empty: give at least one key to search over.")
    params = []
    for key, spec in space.items():
        if isinstance(spec, (list, tuple)):
            params.append(_categorical(key, spec, False))
            continue
        if not isinstance(spec, Mapping):
            raise DetectorError(f"hparams_search.space.{key}: give a list of choices or {{type, low, high}}.")
        unknown = set(spec) - _FIELDS
        if unknown:
            raise DetectorError(
                f"hparams_search.space.{key}: unknown field(s) {sorted(unknown)}; use {sorted(_FIELDS)}."
            )
        kind = spec.get("type", "categorical" if "choices" in spec else None)
        if kind in ("float", "int"):
            params.append(_range(key, spec, kind))
        elif kind == "categorical":
            params.append(_categorical(key, spec.get("choices"), bool(spec.get("optional", False))))
        else:
            raise DetectorError(
                f"hparams_search.space.{key}: type={kind!r}; use float, int or categorical (or just a list)."
            )
    return params


def _flat_keys(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, (DictConfig, dict)):
        for k in node:
            path = f"{prefix}{k}"
            yield path
            yield from _flat_keys(node[k] if isinstance(node, dict) else node._get_node(k), f"{path}.")
    elif isinstance(node, ListConfig):
        return


def _missing(key: str, base: DictConfig) -> str:
    known = sorted(set(_flat_keys(base)))
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else "it is neither a config key nor a config group"
    return (
        f"hparams_search.space.{key}: no such key in the composed config ({hint}). Search over keys that "
        f"`detector-train --cfg job` shows, a config group (model, finetune, ...), or any Ultralytics "
        "train key as train.<key>."
    )


def resolve(params: list[Param], base: DictConfig) -> tuple[list[Param], list[str]]:
    """Check every key against the composed ``detector-train`` config ``base``.

    Returns:
        The parameters to search (group parameters marked), and warnings for skipped optional ones.

    Raises:
        DetectorError: A key or group that does not exist, or a choice that is not a group option.
    """
    kept, warnings = [], []
    for p in params:
        options = group_options(p.key)
        if options:
            if p.kind != "categorical":
                raise DetectorError(
                    f"hparams_search.space.{p.key} is a config group: give a list of its options."
                )
            bad = [c for c in p.choices if c not in options]
            if bad:
                raise DetectorError(
                    f"hparams_search.space.{p.key}: {bad} not options of the {p.key} group; choose from {options}."
                )
            kept.append(Param(**{**p.__dict__, "group": True}))
        elif OmegaConf.select(base, p.key, default=_ABSENT) is not _ABSENT:
            kept.append(p)
        elif group := next(
            (g for g in sorted(PASSTHROUGH, key=len, reverse=True) if p.key.startswith(f"{g}.")), None
        ):
            config.validate(group, [p.key[len(group) + 1 :]])  # an Ultralytics key not written in the YAML
            kept.append(p)
        elif p.optional:
            warnings.append(f"hparams_search.space.{p.key} skipped: it is optional and not in this config.")
        else:
            raise DetectorError(_missing(p.key, base))
    return kept, warnings
