"""Every process-wide side effect of the project, in one place.

Ultralytics reads its environment when it is first imported: it writes ``settings.json``,
may look up DNS, and may pip-install missing packages. :func:`configure` must therefore run
before anything imports ``ultralytics``; every entry point calls it first.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Integrations that Ultralytics switches on by itself when their package is importable.
# We own tracking (W&B through our logger group), so all of them stay off.
_INTEGRATIONS = ("clearml", "comet", "dvc", "hub", "mlflow", "neptune", "raytune", "tensorboard", "wandb")


def yolo_config_dir() -> Path:
    """Folder for Ultralytics' ``settings.json`` and fonts: project-owned, never ``~/.config``."""
    return Path(os.environ.get("YOLO_CONFIG_DIR") or PROJECT_ROOT / ".ultralytics")


def is_offline() -> bool:
    """True unless the user explicitly allowed network access with ``YOLO_OFFLINE=false``."""
    return os.environ.get("YOLO_OFFLINE", "true").strip().lower() in {"1", "true", "yes"}


def configure(weights_dir: str | Path | None = None) -> None:
    """Prepare the environment for Ultralytics. Safe to call more than once.

    Sets ``YOLO_OFFLINE=true`` (unless the user set it), ``YOLO_AUTOINSTALL=false`` and a
    project-owned ``YOLO_CONFIG_DIR``, then switches Ultralytics' own integrations off in that
    folder's settings file. A value the user exported already wins.

    Args:
        weights_dir: Where Ultralytics may put downloaded weights (only when online).
    """
    cfg_dir = yolo_config_dir()
    cfg_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cfg_dir))
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_VERBOSE", "true")
    from ultralytics.utils import SETTINGS

    update = {k: False for k in _INTEGRATIONS if k in SETTINGS}
    update["sync"] = False
    if weights_dir is not None:
        update["weights_dir"] = str(weights_dir)
    if any(SETTINGS.get(k) != v for k, v in update.items()):
        SETTINGS.update(update)
