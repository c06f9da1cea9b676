"""Turn ``cfg.logger`` into ``wandb.init`` arguments: ``logger.init`` as given, plus mode, group, name
and a folder known to be writable when it leaves them out.

Nothing here starts a W&B run; :mod:`detector.tracking.tracker` does, when training starts.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detector import redact
from detector.errors import DetectorError
from detector.io import reachable

log = logging.getLogger(__name__)

INIT_TIMEOUT_S = 30  # wandb.init's own wait for the server (90 s by default), when online was asked for
MODES = ("online", "offline", "disabled")


def has_api_key() -> bool:
    """True if W&B credentials are set up: ``WANDB_API_KEY`` or a ``.netrc`` entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        from wandb.sdk.lib.wbauth import wbnetrc

        return bool(wbnetrc.read_netrc_auth(host=base_url()))
    except Exception:  # a private helper of wandb: if it moved or fails, assume no key
        return False


def base_url() -> str:
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def resolve_mode(mode: str | None) -> str:
    """``logger.init.mode`` if set, else ``$WANDB_MODE``, else online with an API key and offline without.

    An API key alone does not make a run online when the W&B server cannot be reached within 3 s:
    ``wandb.init`` would otherwise wait 90 s for it; the run is recorded offline instead, for ``wandb sync``.

    Raises:
        DetectorError: ``mode`` is not online, offline or disabled.
    """
    if mode:
        if mode not in MODES:
            raise DetectorError(f"logger.init.mode={mode!r} is not one of {', '.join(MODES)}")
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if not has_api_key():
        return "offline"
    if not reachable(base_url()):
        log.warning(
            "W&B at %s cannot be reached: this run is recorded offline (upload it later with wandb sync).",
            base_url(),
        )
        return "offline"
    return "online"


def relative(path: str | Path, root: str | Path) -> str:
    """``path`` relative to ``root`` (both resolved), or just its name if it lies elsewhere."""
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return Path(path).name


def default_group(cfg: DictConfig) -> str | None:
    """The Hydra multirun's sweep folder (shared by all its jobs), else None."""
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
        raise DetectorError(f"cannot write W&B files under {folder} ({e}); set logger.init.dir") from e


# wandb.init arguments the app sets itself; refused in logger.init with where they come from.
OURS = {
    "config": "the whole composed config is the W&B config",
    "reinit": "each training run is a new W&B run",
    "resume": "detector-train resume=<run folder> records the rest of a run as a new W&B run",
}


def check_init_keys(init: dict[str, Any]) -> None:
    """Refuse ``logger.init`` keys that ``wandb.init`` does not take (with close matches) or that we set.

    Raises:
        DetectorError: Listing every bad key.
    """
    import inspect

    import wandb

    valid = set(inspect.signature(wandb.init).parameters) - set(OURS)
    problems = []
    for key in init:
        if key in OURS:
            problems.append(f"  logger.init.{key}: not set here; {OURS[key]}")
        elif key not in valid:
            close = difflib.get_close_matches(key, sorted(valid), n=2, cutoff=0.6)
            hint = (
                f"did you mean {' or '.join(f'logger.init.{c}' for c in close)}?"
                if close
                else "no close match"
            )
            problems.append(f"  logger.init.{key}: not a wandb.init argument ({hint})")
    if problems:
        raise DetectorError("Unknown or misplaced logger.init keys:\n" + "\n".join(problems))


def init_kwargs(cfg: DictConfig, run_dir: str | Path, group: str | None = None) -> dict[str, Any] | None:
    """Keyword arguments for ``wandb.init``: ``logger.init`` as given, the rest filled in; None when disabled.

    Filled in when ``logger.init`` leaves them out: ``name`` (the run folder relative to
    ``paths.runs_dir``), ``group`` (:func:`default_group`), ``mode`` (:func:`resolve_mode`), ``dir``
    (the run folder) and ``job_type``; always set: ``config`` (the composed config) and ``reinit``.

    Args:
        cfg: The composed config; the whole of it, resolved and nested, becomes the W&B config.
        run_dir: The run folder.
        group: The group when ``logger.init.group`` is unset (an in-process sweep passes its study),
            before the multirun default.

    Raises:
        DetectorError: wandb is missing, the folder is not writable, or a setting is invalid.
    """
    if cfg.logger.backend != "wandb":
        raise DetectorError(f"logger.backend={cfg.logger.backend!r}: only wandb and none exist")
    init = {
        k: v
        for k, v in (OmegaConf.to_container(cfg.logger.init, resolve=True) or {}).items()
        if v is not None
    }
    mode = resolve_mode(init.get("mode"))
    if mode == "disabled":
        return None
    try:
        import wandb  # noqa: F401
    except ImportError as e:
        raise DetectorError(f"wandb is not installed ({e}); pip install wandb") from e
    check_init_keys(init)
    run_dir = Path(run_dir).resolve()
    folder = Path(init.get("dir") or run_dir).expanduser().resolve()
    check_writable(folder)
    name = init.get("name") or relative(run_dir, cfg.paths.runs_dir)
    resumed = bool(cfg.get("resume"))  # the rest of an interrupted run: a new W&B run, named after it
    return {
        "job_type": "train",
        **init,
        "name": f"{name} (resumed)" if resumed else name,
        "group": init.get("group") or group or default_group(cfg),
        "tags": list(init.get("tags") or []) + (["resumed"] if resumed else []),
        "mode": mode,
        "dir": str(folder),
        "config": redact.value(OmegaConf.to_container(cfg, resolve=True)),  # nested, as composed; no secrets
        "reinit": "create_new",  # never adopt or finish a run someone else opened in this process
        "settings": {"init_timeout": INIT_TIMEOUT_S, **(init.get("settings") or {})},
    }
