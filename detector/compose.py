"""Compose configs from ``configs/`` the way the command-line apps do, from any caller.

The apps (``detector-train``, ``detector-sweep``) and the sweep's per-trial configs share this:
the config folder, the ``${project_root:}`` resolver and the pass-through rewrite of
``train.X=`` overrides.
"""

from __future__ import annotations

import re

from omegaconf import DictConfig, OmegaConf

from detector.runtime import PROJECT_ROOT

CONFIG_DIR = str(PROJECT_ROOT / "configs")
# Groups whose keys pass straight to Ultralytics: any of its keys may be set without a `+`.
PASSTHROUGH = ("train", "export", "finetune.train", "finetune.two_stage.train")
_PLAIN_KEY = re.compile(rf"^({'|'.join(map(re.escape, PASSTHROUGH))})\.[A-Za-z_]\w*=")

if not OmegaConf.has_resolver("project_root"):
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def passthrough_overrides(args: list[str]) -> list[str]:
    """Let ``train.lr0=0.01`` work whether or not the key is in the YAML (force-add with ``++``).

    Hydra's struct mode would otherwise demand ``+train.lr0=...``; key validation against
    Ultralytics' schema still catches typos, with better suggestions than Hydra's.
    """
    return [f"++{a}" if _PLAIN_KEY.match(a) else a for a in args]


def plain_overrides(args: list[str]) -> list[str]:
    """The inverse of :func:`passthrough_overrides`, for commands shown to a user."""
    return [a[2:] if a.startswith("++") and _PLAIN_KEY.match(a[2:]) else a for a in args]


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with command-line style overrides.

    Works inside a running Hydra app (reusing its search path) and outside one.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = passthrough_overrides(list(overrides))
    if GlobalHydra.instance().is_initialized():
        return hydra_compose(config_name, overrides=overrides)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides)


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
