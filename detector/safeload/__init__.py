"""Checkpoints that cannot run code: a ``.pt`` is a pickle, and Ultralytics loads it with
``weights_only=False``. :func:`safe_load` loads one with ``weights_only=True`` against an exact
allowlist of the classes a YOLO checkpoint holds, guarded so that none of their constructors runs;
:func:`detector.runtime.configure` makes Ultralytics itself use it everywhere it loads a ``.pt``.
"""

from detector.safeload.errors import CheckpointError, CorruptCheckpointError, UnsafeCheckpointError
from detector.safeload.loader import LOADS, is_trusted, safe_load, trust, trusting
from detector.safeload.own import OWN, recording, remember

__all__ = [
    "LOADS",
    "OWN",
    "CheckpointError",
    "CorruptCheckpointError",
    "UnsafeCheckpointError",
    "is_trusted",
    "recording",
    "remember",
    "safe_load",
    "trust",
    "trusting",
]
