"""Turn ``cfg.logger`` into ``wandb.init`` arguments: mode, group, name and a folder known to be writable.

Nothing here starts a W&B run; :mod:`detector.tracking` does, when training starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detector.errors import DetectorError

MODES = ("online", "offline", "disabled")


def has_api_key() -> bool:
    """True if W&B credentials are set up: ``WANDB_API_KEY`` or a ``.netrc`` entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        from wandb.sdk.lib.wbauth import wbnetrc

        return bool(wbnetrc.read_netrc_auth(host=os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")))
    except Exception:  # a private helper of wandb: if it moved or fails, assume no key
        return False


def resolve_mode(mode: str | None) -> str:
    """``logger.mode`` if set, else ``$WANDB_MODE``, else online with an API key and offline without.

    Raises:
        DetectorError: ``mode`` is not online, offline or disabled.
    """
    if mode:
        if mode not in MODES:
            raise DetectorError(f"logger.mode={mode!r} is not one of {', '.join(MODES)}")
        return mode
    return os.environ.get("WANDB_MODE") or ("online" if has_api_key() else "offline")


def relative(path: str | Path, root: str | Path) -> str:
    """``path`` relative to ``root`` (both resolved), or just its name if it lies elsewhere."""
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return Path(path).name


def default_group(cfg: DictConfig) -> str | None:
    """``logger.group``, else the Hydra multirun's sweep folder (shared by all its jobs), else None."""
    if cfg.logger.get("group"):
        return str(cfg.logger.group)
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return relative(HydraConfig.get().sweep.dir, cfg.paths.runs_dir)


def check_writable(folder: Path) -> None:
    """Raise DetectorError unless ``folder/wandb`` can be created and written.

    wandb itself would silently fall back to the system temp folder.
    """
    probe = folder / "wandb" / f".probe-{os.getpid()}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise DetectorError(f"cannot write W&B files under {folder} ({e}); set logger.dir") from e


def init_kwargs(cfg: DictConfig, run_dir: str | Path, group: str | None = None) -> dict[str, Any] | None:
    """Keyword arguments for ``wandb.init`` from ``cfg.logger``; None when the mode is ``disabled``.

    Args:
        cfg: The composed config; the whole of it, resolved and nested, becomes the W&B config.
        run_dir: The run folder: the default for ``logger.dir`` and, relative to
            ``paths.runs_dir``, for ``logger.name``.
        group: Overrides ``logger.group`` and the multirun default (e.g. an in-process sweep).

    Raises:
        DetectorError: wandb is missing, the folder is not writable, or a setting is invalid.
    """
    lg = cfg.logger
    if lg.get("backend") != "wandb":
        raise DetectorError(f"logger.backend={lg.get('backend')!r}: only wandb and none exist")
    mode = resolve_mode(lg.get("mode"))
    if mode == "disabled":
        return None
    try:
        import wandb  # noqa: F401
    except ImportError as e:
        raise DetectorError(f"wandb is not installed ({e}); pip install wandb") from e
    run_dir = Path(run_dir).resolve()
    folder = Path(lg.get("dir") or run_dir).expanduser().resolve()
    check_writable(folder)
    name = lg.get("name") or relative(run_dir, cfg.paths.runs_dir)
    resumed = bool(cfg.get("resume"))  # the rest of an interrupted run: a new W&B run, named after it
    return {
        "project": lg.get("project"),
        "entity": lg.get("entity"),
        "name": f"{name} (resumed)" if resumed else name,
        "group": group or default_group(cfg),
        "tags": list(lg.get("tags") or []) + (["resumed"] if resumed else []),
        "notes": lg.get("notes"),
        "mode": mode,
        "dir": str(folder),
        "job_type": "train",
        "config": OmegaConf.to_container(cfg, resolve=True),  # nested, as composed by Hydra
        "reinit": "create_new",  # never adopt or finish a run someone else opened in this process
    }
