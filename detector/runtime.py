"""Every process-wide side effect of the project, in one place.

Ultralytics reads its environment when it is first imported: it writes ``settings.json``,
may look up DNS, and may pip-install missing packages. :func:`configure` must therefore run
before anything imports ``ultralytics``; every entry point calls it first. The other helpers
here change process state too (signal handlers, import hooks, OmegaConf resolvers, the
matplotlib backend), so they live here rather than beside the code that needs them.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def register_resolvers() -> None:
    """The OmegaConf resolvers our configs use (``${project_root:}``); safe to call more than once."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


class _DeferTorchBridge(importlib.abc.MetaPathFinder):
    """Keeps ``albumentations/__init__`` from importing its optional ``albumentations.pytorch``.

    That one import pulls in torch (1-3 s here) just to export ``ToTensorV2``, which an Ultralytics
    pipeline cannot use. albumentations wraps it in ``suppress(ImportError)``, and imports it again
    by itself on demand (``A.from_dict`` does when torch is installed), so nothing else changes.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "albumentations.pytorch":
            raise ImportError("deferred by detector.runtime: validation does not need torch")


def albumentations():
    """albumentations, imported without torch and without its pypi.org update check."""
    if "albumentations" not in sys.modules:
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # its import otherwise asks pypi.org for news
        bridge = _DeferTorchBridge()
        sys.meta_path.insert(0, bridge)
        try:
            import albumentations  # noqa: F401
        finally:
            sys.meta_path.remove(bridge)
    return sys.modules["albumentations"]


def pyplot():
    """matplotlib's pyplot on the Agg canvas (files only, never a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def is_main_thread() -> bool:
    """Signal handlers can only be installed from the main thread."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def on_sigterm(raise_: Callable[[int], BaseException], only_if_default: bool = False) -> Iterator[None]:
    """While the block runs, SIGTERM raises ``raise_(signum)`` in the main thread; restored afterwards.

    Args:
        raise_: Builds the exception to raise, e.g. ``lambda n: SystemExit(128 + n)``.
        only_if_default: Leave SIGTERM alone when someone else already handles it.
    """
    if not is_main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if only_if_default and previous is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise raise_(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
