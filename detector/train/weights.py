"""Find the checkpoint that initialises a model, without ever hanging on a download.

Order: an explicit path, then the project's weights cache folder, then Ultralytics' download
(only when the user allowed network access with ``YOLO_OFFLINE=false``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from detector import runtime
from detector.errors import DetectorError

log = logging.getLogger(__name__)


@dataclass
class Pretrained:
    """Where the initial weights came from; recorded in the run summary."""

    requested: str | None
    path: Path | None = None
    source: str = "none"  # explicit path | weights cache | download | missing | none
    sha256: str | None = None

    @property
    def found(self) -> bool:
        return self.path is not None


def _download(name: str, cache_dir: Path) -> Path | None:
    from ultralytics.utils.downloads import attempt_download_asset

    try:
        path = Path(attempt_download_asset(str(cache_dir / name)))
    except Exception as e:  # network errors come in many types; a failed download is "missing"
        log.warning("Download of %s failed: %s", name, e)
        return None
    return path if path.is_file() else None


def resolve(weights: str | None, cache_dir: str | Path, require: bool = False) -> Pretrained:
    """Resolve ``model.weights`` to a local file.

    Args:
        weights: A path, a bare file name such as ``yolo26n.pt``, or None for random init.
        cache_dir: The project weights cache (``paths.weights_dir``).
        require: Raise instead of falling back to random initialisation.

    Raises:
        DetectorError: An explicit path does not exist, or nothing was found and ``require`` is set.
    """
    if weights in (None, "", "none", "null"):
        return Pretrained(requested=None)
    cache_dir = Path(cache_dir)
    given = Path(str(weights)).expanduser()
    if given.is_file():
        return Pretrained(str(weights), given.resolve(), "explicit path")
    if given.parent != Path("."):  # looks like a path, not a bare name: do not search further
        raise DetectorError(f"Checkpoint not found: {given}. Check model.weights=... points at a .pt file.")
    cached = cache_dir / given.name
    if cached.is_file():
        return Pretrained(str(weights), cached.resolve(), "weights cache")
    if not runtime.is_offline():
        cache_dir.mkdir(parents=True, exist_ok=True)
        downloaded = _download(given.name, cache_dir)
        if downloaded:
            return Pretrained(str(weights), downloaded.resolve(), "download")
    fix = (
        f"Put {given.name} in {cache_dir}/ (or pass model.weights=/path/to/{given.name}); "
        "with network access, YOLO_OFFLINE=false lets Ultralytics download it."
    )
    if require:
        raise DetectorError(f"Pretrained checkpoint {given.name} is not available offline. {fix}")
    return Pretrained(str(weights), source="missing")


def missing_banner(p: Pretrained, cache_dir: str | Path) -> str:
    """The prominent warning printed when training falls back to random initialisation."""
    line = "!" * 78
    return (
        f"\n{line}\n! PRETRAINED CHECKPOINT NOT FOUND: {p.requested}\n"
        f"! Training starts from RANDOM weights (pretrained: false in summary.json).\n"
        f"! Fix: copy {Path(str(p.requested)).name} into {cache_dir}/ or set model.weights=/path/to/file.pt\n"
        f"! (or model.require_pretrained=true to make this an error).\n{line}\n"
    )


def load_checkpoint(path: Path):
    """Load a checkpoint with Ultralytics' loader, turning any failure into a clear error.

    Returns:
        The checkpoint's model (FP32, EMA weights when present).
    """
    from ultralytics.nn.tasks import load_checkpoint as ul_load

    try:
        model, _ = ul_load(path)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise DetectorError(
            f"{path} is not a loadable Ultralytics checkpoint ({type(e).__name__}: {str(e)[:200]}). "
            "Pass a .pt saved by Ultralytics training, or model.weights=null for random init."
        ) from e
    return model
