"""Find the checkpoint that initialises a model, and never train from random weights by accident.

``model.weights`` is resolved in this order:

1. an explicit path (``model.weights=/data/best.pt``, or any existing file);
2. a file name in the weights cache, ``paths.weights_dir`` (``yolo26s.pt``);
3. a checkpoint bundled inside detector (``detector/bundled/``: the COCO ``yolo11n-seg.pt``);
4. a download into the weights cache (:mod:`detector.train.download`), unless ``DETECTOR_OFFLINE``
   (or a ``YOLO_OFFLINE`` you set) turns the network off; bounded in time.

A name that none of these yields is an error naming the fixes; random initialisation happens only
when asked for, with ``model.weights=null``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from detector import runtime
from detector.errors import DetectorError
from detector.io import sha256
from detector.train import download

log = logging.getLogger(__name__)

BUNDLED = runtime.PACKAGE / "bundled"


@dataclass
class Pretrained:
    """Where the initial weights came from; recorded in the run summary."""

    requested: str | None
    path: Path | None = None
    source: str = "none"  # explicit path | weights cache | bundled | download | none (random init on purpose)
    sha256: str | None = None
    url: str | None = None  # where a download came from

    @property
    def found(self) -> bool:
        return self.path is not None


def known_sha256() -> dict[str, str]:
    """sha256 of the checkpoints the project knows (``bundled/SHA256SUMS``), by file name."""
    rows = (line.split() for line in (BUNDLED / "SHA256SUMS").read_text().splitlines() if line.strip())
    return {name: digest for digest, name in rows}


def _bundled(name: str) -> Path | None:
    path = BUNDLED / name
    if not path.is_file():
        return None
    if sha256(path) != known_sha256().get(name):
        raise DetectorError(
            f"The bundled checkpoint {path} does not match its sha256 in {BUNDLED / 'SHA256SUMS'}: the installation "
            "is damaged. Reinstall detector (pip install --force-reinstall ...)."
        )
    return path


def _unavailable(name: str, cache_dir: Path, why: str) -> DetectorError:
    base, what = download.source()
    return DetectorError(
        f"Checkpoint {name} is not available: it is not in the weights cache {cache_dir}/, not bundled with detector, "
        f"and {why}. Fixes:\n"
        f"  - put {name} in {cache_dir}/ (or pass model.weights=/path/to/{name});\n"
        f"  - set DETECTOR_WEIGHTS_URL to a mirror that serves {name} (now {what}: {base}/{name});\n"
        f"  - or start from the bundled COCO checkpoint: model=yolo11n_coco (no network needed).\n"
        "To train from random weights on purpose, pass model.weights=null."
    )


def resolve(weights: str | None, cache_dir: str | Path) -> Pretrained:
    """Resolve ``model.weights`` to a local file (see the module docstring for the order).

    Raises:
        DetectorError: An explicit path that does not exist, or a name that no source yields
            (with the fixes), or a download that failed, stalled or did not match its sha256.
    """
    if weights in (None, "", "none", "null"):
        return Pretrained(requested=None)
    cache_dir = Path(cache_dir).expanduser()
    given = Path(str(weights)).expanduser()
    if given.is_file():
        return _found(str(weights), given, "explicit path")
    if given.parent != Path("."):  # looks like a path, not a bare name: do not search further
        raise DetectorError(f"Checkpoint not found: {given}. Check model.weights=... points at a .pt file.")
    name = given.name
    if (cache_dir / name).is_file():
        return _found(str(weights), cache_dir / name, "weights cache")
    if (bundled := _bundled(name)) is not None:
        return _found(str(weights), bundled, "bundled")
    if not runtime.network_allowed():
        raise _unavailable(name, cache_dir, "downloads are off (DETECTOR_OFFLINE or YOLO_OFFLINE is set)")
    try:
        path, url = download.fetch(name, cache_dir, known_sha256())
    except download.DownloadError as e:
        raise _unavailable(name, cache_dir, f"the download failed: {e}") from e
    log.info("Downloaded %s from %s into %s", name, url, path)
    pre = _found(str(weights), path, "download")
    pre.url = url
    return pre


def _found(requested: str, path: Path, source: str) -> Pretrained:
    path = path.resolve()
    return Pretrained(requested, path, source, sha256(path))


def load_checkpoint(path: Path):
    """Load a checkpoint with Ultralytics' loader (safely: see :mod:`detector.safeload`), turning any
    failure into a clear error.

    The last file loaded is kept (one entry, keyed by its path, size and mtime): the pre-flight check
    and the transfer read the same file, and a safe load of the bundled checkpoint takes about 0.27 s on CPU (0.10 s unsafe).

    Returns:
        The checkpoint's model (FP32, EMA weights when present); callers read it, never change it.
    """
    from detector import safeload

    path = Path(path)
    if not path.is_file() or safeload.is_trusted(path):  # a trusted file warns at every load
        return _load(path)
    st = path.stat()
    return _load_once(path.resolve(), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _load_once(path: Path, size: int, mtime_ns: int):
    return _load(path)


def _load(path: Path):
    from ultralytics.nn.tasks import load_checkpoint as ul_load

    try:
        model, _ = ul_load(path)
    except DetectorError:  # refused by the safe loader: its message names the file and the class
        raise
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise DetectorError(
            f"{path} is not a loadable Ultralytics checkpoint ({type(e).__name__}: {str(e)[:200]}). "
            "Pass a .pt saved by Ultralytics training, or model.weights=null for random init."
        ) from e
    return model
