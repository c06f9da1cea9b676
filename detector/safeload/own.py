"""Checkpoints this process wrote itself, recognised by the sha256 of their bytes.

What Ultralytics' trainer saves inside :func:`recording` (``detector.runtime`` wraps its
``save_model`` and ``strip_optimizer``) is remembered, so that the run's own reloads of it (the final
validation, the reload of ``best.pt``, an export in the same command) are unpickled in full from one
read of the file, 3 to 4 times faster than the weights-only pass. Unpickling exactly the bytes this
process pickled runs nothing it did not already hold. Anything else, even ``torch.save`` in this
process outside :func:`recording`, and every file in a later process, takes the weights-only path.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import threading
from collections.abc import Iterator
from typing import Any

from detector.io import sha256_bytes

OWN: collections.OrderedDict[str, int] = (
    collections.OrderedDict()
)  # sha256 -> size of what was written, newest last
_MAX = 64  # a run's last.pt and best.pt are among the last few writes
_RECORDING = threading.local()
_LOCK = threading.Lock()


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """While Ultralytics' trainer writes its own checkpoints: :func:`remember` notes what it wrote."""
    _RECORDING.depth = getattr(_RECORDING, "depth", 0) + 1
    try:
        yield
    finally:
        _RECORDING.depth -= 1


def remember(f: Any) -> None:
    """After ``torch.save(obj, f)``: inside :func:`recording`, note the sha256 of the bytes written
    (a buffer's content, or the file read back at once); elsewhere, nothing."""
    if not getattr(_RECORDING, "depth", 0):
        return
    if isinstance(f, io.BytesIO):
        with f.getbuffer() as view:  # no copy: a checkpoint with its optimizer can be hundreds of MB
            digest, size = sha256_bytes(view), view.nbytes
    elif isinstance(f, str | os.PathLike) and os.path.isfile(f):
        with open(f, "rb") as fh:
            data = fh.read()
        digest, size = sha256_bytes(data), len(data)
    else:
        return
    with _LOCK:
        OWN[digest] = size
        while len(OWN) > _MAX:
            OWN.popitem(last=False)


def load(path: str, map_location: Any, kwargs: dict) -> Any:
    """The unpickled file when it holds exactly bytes this process wrote, else None (nothing loaded).
    A file of a size never written here is not even read."""
    with _LOCK:
        if os.path.getsize(path) not in OWN.values():
            return None
    with open(path, "rb") as f:
        data = f.read()
    if sha256_bytes(data) not in OWN:
        return None
    import torch

    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False, **kwargs)
