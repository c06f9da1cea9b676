"""Compose configs from ``configs/`` the way the command-line apps do, and check their keys.

The apps (``detector-train``, ``detector-sweep``, ``detector-export``) and the sweep's per-trial
configs share this: the config folder, the pass-through rewrite of ``train.X=`` overrides, and the
validation of Ultralytics keys against Ultralytics' own schema (``ultralytics/cfg/default.yaml``),
read directly, without importing ultralytics (and torch), so that a typo fails in well under 2 seconds.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from detector import runtime
from detector.errors import DetectorError

CONFIG_DIR = str(runtime.data_dir("configs"))
# Groups whose keys pass straight to the library they feed: any of its keys may be set without a `+`.
PASSTHROUGH = ("train", "export", "finetune.train", "finetune.two_stage.train", "logger.init", "eval.val")
_PLAIN_KEY = re.compile(rf"^({'|'.join(map(re.escape, PASSTHROUGH))})\.[A-Za-z_]\w*=")


def passthrough_overrides(args: list[str]) -> list[str]:
    """Let ``train.lr0=0.01`` work whether or not the key is in the YAML (force-add with ``++``).

    Hydra's struct mode would otherwise demand ``+train.lr0=...``; key validation against
    Ultralytics' schema still catches typos, with better suggestions than Hydra's.
    """
    return [f"++{a}" if _PLAIN_KEY.match(a) else a for a in args]


def plain_overrides(args: list[str]) -> list[str]:
    """The inverse of :func:`passthrough_overrides`, for commands shown to a user."""
    return [a[2:] if a.startswith("++") and _PLAIN_KEY.match(a[2:]) else a for a in args]


def user_configs(args: list[str]) -> list[str]:
    """The override that adds ``./configs`` of the working directory to Hydra's search path, so a user's
    own options (``./configs/data/roofs.yaml`` -> ``data=roofs``) are found beside the packaged ones.

    Empty when there is no such folder, when it is the packaged one (a source checkout), or when the
    command line sets ``hydra.searchpath`` itself.
    """
    here = Path.cwd() / "configs"
    if not here.is_dir() or here.resolve() == Path(CONFIG_DIR).resolve():
        return []
    if any(a.lstrip("+").startswith("hydra.searchpath=") for a in args):
        return []
    return [f"hydra.searchpath=[file://{here.resolve()}]"]


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with command-line style overrides.

    Works inside a running Hydra app (reusing its search path) and outside one (adding the user's
    ``./configs`` as the console scripts do).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    runtime.register_resolvers()
    overrides = passthrough_overrides(list(overrides))
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name, overrides=overrides)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name, overrides=[*user_configs(overrides), *overrides])


def group_options(group: str) -> list[str]:
    """The options of config group ``group`` (``[]`` when it is not a group)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    def options() -> list[str]:
        return GlobalHydra.instance().config_loader().get_group_options(group)

    if GlobalHydra.instance().is_initialized():
        return options()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return options()


# Keys the app sets itself from other config groups; setting them under train/export would be
# silently overridden, so they are refused with a pointer to the right place.
RESERVED = {
    "model": "choose the model with model=yolo26s or model.arch=/model.weights=",
    "data": "choose the dataset with data=custom data.yaml=/path/to/data.yaml",
    "project": "runs land in paths.runs_dir; change that instead",
    "name": "set the run name with the top-level key name=...",
    "exist_ok": "each run gets its own folder",
    "pretrained": "set model.weights=... (or model.weights=null for random init)",
    "freeze": "use finetune.freeze=backbone|neck|none|N|[i,j,...]",
    "resume": "resume a run with detector-train resume=<run folder>",
    "mode": "the entry point sets it",
    "task": "detector trains detection models",
    "augmentations": "use the augment config group",
}


@functools.cache
def ultralytics_keys() -> frozenset[str]:
    """All keys of Ultralytics' ``cfg/default.yaml``, read without importing ultralytics."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("ultralytics is not installed: run `pip install -e .`")
    path = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "default.yaml"
    return frozenset(yaml.safe_load(path.read_text()))


def validate(group: str, keys: Iterable[str], allowed: Mapping[str, str] | None = None) -> None:
    """Fail with close-match suggestions when a key is not an Ultralytics key.

    Args:
        group: Config group the keys come from (``train`` or ``export``), named in the message.
        keys: Keys to check.
        allowed: Reserved keys and why they are refused; defaults to :data:`RESERVED`.

    Raises:
        DetectorError: Listing every bad key with a suggestion.
    """
    reserved = RESERVED if allowed is None else allowed
    valid = ultralytics_keys()
    problems = []
    for key in keys:
        if key in reserved:
            problems.append(f"  {group}.{key}: not set here; {reserved[key]}")
        elif key not in valid:
            close = difflib.get_close_matches(key, sorted(valid - reserved.keys()), n=3, cutoff=0.6)
            hint = (
                f"did you mean {' or '.join(f'{group}.{c}' for c in close)}?" if close else "no close match"
            )
            problems.append(f"  {group}.{key}: not an Ultralytics key ({hint})")
    if problems:
        raise DetectorError(
            f"Unknown or misplaced {group} keys:\n"
            + "\n".join(problems)
            + "\nValid keys are those of Ultralytics' cfg/default.yaml (https://docs.ultralytics.com/usage/cfg/)."
        )


def require(node: Mapping | DictConfig, names: Iterable[str], where: str) -> dict[str, Any]:
    """The values of ``names`` in ``node``, each of which must be present: defaults live in the YAML.

    Raises:
        DetectorError: Naming the missing keys of ``where`` (a config group deleted or overridden whole).
    """
    doc = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
    missing = [n for n in names if n not in doc]
    if missing:
        raise DetectorError(
            f"{where} lacks {', '.join(missing)}: set {' and '.join(f'{where}.{m}=...' for m in missing)}, "
            "or pick a complete option of that config group."
        )
    return {n: doc[n] for n in names}


def _imgsz_problem(value: Any) -> str | None:
    """Ultralytics rounds any imgsz up to a multiple of 32 with a warning, -5 included; a size is positive."""
    sizes = value if isinstance(value, list | tuple) else [value]
    if not 1 <= len(sizes) <= 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes
    ):
        return f"'imgsz={value}' must be a positive whole number of pixels (or [height, width])"
    return None


def check_values(group: str, kwargs: Mapping[str, Any]) -> None:
    """Check the values of Ultralytics keys with Ultralytics' own ``check_cfg`` (types and ranges), before work.

    Imports Ultralytics (and torch), so it runs after the cheap checks; :func:`detector.runtime.configure`
    comes first. ``check_cfg`` is called key by key, so the message names the key.

    Raises:
        DetectorError: Listing every bad value, with what Ultralytics accepts.
    """
    runtime.configure()
    from ultralytics.cfg import check_cfg

    problems = []
    for key, value in kwargs.items():
        if key == "imgsz" and (bad := _imgsz_problem(value)):
            problems.append(f"  {group}.imgsz: {bad}")
            continue
        try:
            check_cfg({key: value}, hard=True)
        except (TypeError, ValueError) as e:
            problems.append(f"  {group}.{key}: {e}")
    if problems:
        raise DetectorError(f"Invalid {group} values:\n" + "\n".join(problems))
