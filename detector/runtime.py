"""Every process-wide side effect of the project, in one place.

Ultralytics reads its environment when it is first imported: it writes ``settings.json``,
may look up DNS, and may pip-install missing packages. :func:`configure` must therefore run
before anything imports ``ultralytics``; every entry point calls it first. The other helpers
here change process state too (signal handlers, import hooks, OmegaConf resolvers, the
matplotlib backend), so they live here rather than beside the code that needs them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the source checkout (or site-packages for a wheel)
PACKAGE = Path(__file__).resolve().parent
TRUTHY = {"1", "true", "yes", "on"}

# Integrations that Ultralytics switches on by itself when their package is importable.
# We own tracking (W&B through our logger group), so all of them stay off.
_INTEGRATIONS = ("clearml", "comet", "dvc", "hub", "mlflow", "neptune", "raytune", "tensorboard", "wandb")


def data_dir(name: str) -> Path:
    """A folder that ships with the project: ``configs`` or ``datasets``.

    In a source checkout (and an editable install) it is the checkout's own top-level folder, the
    source of truth; a wheel carries a copy inside the package, ``detector/_<name>/``.
    """
    packaged = PACKAGE / f"_{name}"
    return packaged if packaged.is_dir() else PROJECT_ROOT / name


def output_root() -> Path:
    """Where outputs go unless the config says otherwise: ``$DETECTOR_ROOT``, else the working directory."""
    return Path(os.environ.get("DETECTOR_ROOT") or os.getcwd()).resolve()


def cache_dir() -> Path:
    """Where libraries' caches, telemetry ids and W&B's own folders go: ``.cache/`` in the output root."""
    return output_root() / ".cache"


def yolo_config_dir() -> Path:
    """Folder for Ultralytics' ``settings.json``: ``$YOLO_CONFIG_DIR``, else ``.ultralytics/`` in the output root."""
    return Path(os.environ.get("YOLO_CONFIG_DIR") or output_root() / ".ultralytics")


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUTHY


def network_allowed() -> bool:
    """Whether detector may fetch a checkpoint: yes unless ``DETECTOR_OFFLINE`` (or a ``YOLO_OFFLINE``
    that the user set, not the one :func:`configure` sets for Ultralytics) says offline."""
    if _truthy("DETECTOR_OFFLINE"):
        return False
    return not (_truthy("YOLO_OFFLINE") and not _truthy("DETECTOR_SET_YOLO_OFFLINE"))


def configure(weights_dir: str | Path | None = None) -> None:
    """Prepare the environment for Ultralytics. Safe to call more than once.

    Ultralytics itself never goes on the network: ``YOLO_OFFLINE=true`` (unless the user set it;
    ``DETECTOR_SET_YOLO_OFFLINE`` records that this was us, so :func:`network_allowed` still lets
    detector's own bounded checkpoint download run), ``YOLO_AUTOINSTALL=false`` and a project-owned
    ``YOLO_CONFIG_DIR``, whose settings file switches Ultralytics' own integrations off. A value the
    user exported already wins.

    Args:
        weights_dir: Where Ultralytics may put downloaded weights (only when online).
    """
    cfg_dir = yolo_config_dir()
    cfg_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cfg_dir))
    keep_caches_home()
    if "YOLO_OFFLINE" not in os.environ:
        os.environ["YOLO_OFFLINE"] = os.environ["DETECTOR_SET_YOLO_OFFLINE"] = "true"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_VERBOSE", "true")
    from ultralytics.utils import SETTINGS

    update = {k: False for k in _INTEGRATIONS if k in SETTINGS}
    update["sync"] = False
    if weights_dir is not None:
        update["weights_dir"] = str(weights_dir)
    if any(SETTINGS.get(k) != v for k, v in update.items()):
        SETTINGS.update(update)
    load_checkpoints_safely()


def keep_caches_home() -> None:
    """Nothing the libraries write lands in ``~``: caches and telemetry ids go under :func:`cache_dir`.

    onnxruntime keeps a device id and a telemetry queue under ``$XDG_CACHE_HOME`` (else
    ``~/.cache/Microsoft/DeveloperTools``), matplotlib its font cache under ``$MPLCONFIGDIR``, W&B its
    artifact cache and logs under ``$WANDB_CACHE_DIR`` (the files it stages for a run go into the run
    folder, :func:`detector.tracking.tracker.session`; your ``wandb login`` and settings stay yours). OpenVINO's converter sends telemetry through ``openvino_telemetry`` (writing
    ``~/intel``) and falls back to its own no-op stub when that package cannot be imported, so it is
    made unimportable. Values you exported win.
    """
    root = cache_dir()
    for var, sub in (("XDG_CACHE_HOME", "xdg"), ("MPLCONFIGDIR", "matplotlib"), ("WANDB_CACHE_DIR", "wandb")):
        os.environ.setdefault(var, str(root / sub))
    sys.modules.setdefault("openvino_telemetry", None)  # `import openvino_telemetry` now raises ImportError


def load_checkpoints_safely() -> None:
    """Make every ``.pt`` Ultralytics loads go through :func:`detector.safeload.safe_load`. Idempotent.

    Ultralytics 8.4.190 loads checkpoints with ``utils/patches.py`` ``torch_load`` (``weights_only=False``);
    that name is replaced there (for later ``from ... import torch_load``) and in every module that
    bound it already (``nn/tasks.py``, ``utils/torch_utils.py`` for ``strip_optimizer``). Its model
    builder is held to its own no-``eval`` path (``_SafeLoad.restricted``), its own broader
    allowlist is not registered (``_SafeLoad.loading``), and ``check_resume``, which reports any load
    error as "Resume checkpoint not found", lets a refusal through as it is. What the trainer's
    ``save_model`` and ``strip_optimizer`` write with ``torch.save`` is remembered by sha256
    (:func:`detector.safeload.recording`), so that the run's own reloads of it skip the weights-only pass.
    """
    import torch
    import ultralytics.engine.trainer as trainer
    import ultralytics.nn.tasks as tasks
    import ultralytics.utils.patches as patches
    import ultralytics.utils.torch_utils  # binds torch_load when imported

    from detector.safeload import errors, recording, remember, safe_load

    original = patches.torch_load
    if getattr(original, "detector_safe", False):
        return

    def torch_load(f, *args, **kwargs):
        map_location = kwargs.pop("map_location", args[0] if args else None)
        kwargs.pop("weights_only", None)
        if not isinstance(f, str | os.PathLike):
            raise errors.UnsafeCheckpointError(repr(f), ["a file object"], "only files are loaded")
        return safe_load(f, map_location=map_location, **kwargs)

    torch_load.detector_safe = True
    patches.torch_load = torch_load
    for name, module in list(sys.modules.items()):
        if name.startswith("ultralytics") and getattr(module, "torch_load", None) is original:
            module.torch_load = torch_load
    tasks._SafeLoad.restricted = classmethod(lambda cls: True)
    tasks._SafeLoad.loading = classmethod(lambda cls, weight: contextlib.nullcontext())
    check_resume = trainer.BaseTrainer.check_resume

    def checked_resume(self, overrides):
        try:
            return check_resume(self, overrides)
        except FileNotFoundError as e:
            if (refused := errors.find(e)) is not None:
                raise refused from None
            raise

    trainer.BaseTrainer.check_resume = checked_resume

    save = torch.save  # Ultralytics' retrying torch_save by now

    def remembered_save(obj, f, *args, **kwargs):
        out = save(obj, f, *args, **kwargs)
        remember(f)  # a no-op outside recording()
        return out

    def recorded(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            with recording():
                return fn(*args, **kwargs)

        return call

    torch.save = remembered_save
    trainer.BaseTrainer.save_model = recorded(trainer.BaseTrainer.save_model)
    trainer.strip_optimizer = ultralytics.utils.torch_utils.strip_optimizer = recorded(
        trainer.strip_optimizer
    )


RESOLVERS = {
    "output_root": lambda: str(output_root()),  # ${output_root:}: $DETECTOR_ROOT or the working directory
    "detector_data": lambda name: str(data_dir(name)),  # ${detector_data:datasets}: what ships with detector
    "arch_name": lambda arch: (
        Path(str(arch)).name.removesuffix(".yaml").removesuffix(".yml")
    ),  # yolo11n.yaml -> yolo11n
}


def register_resolvers() -> None:
    """The OmegaConf resolvers our configs use (:data:`RESOLVERS`); safe to call more than once."""
    from omegaconf import OmegaConf

    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


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
