"""Load an Ultralytics ``.pt`` without ever running code from it.

:func:`safe_load` first scans every GLOBAL the file references (reporting all that are not allowed at
once, before anything is unpickled), then loads it with ``torch.load(weights_only=True)`` against
exactly the allowlist entries it needs (:mod:`detector.safeload.allowlist`; whatever other code
registered with ``add_safe_globals`` is set aside meanwhile), and finally refuses data that
Ultralytics would later turn into code: a model YAML whose ``activation`` ``parse_model`` would
``eval()``, and a dataset URL in the training arguments whose ``download:`` script ``val()`` would run.

A file the user trusts can be loaded the old way, loudly: :func:`trusting` marks it for the process.
A checkpoint that Ultralytics' trainer wrote in this very process is loaded in full from the bytes it
wrote, matched by sha256 (:mod:`detector.safeload.own`).
"""

from __future__ import annotations

import ast
import collections
import contextlib
import logging
import os
import pickle
import re
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from detector.io import sha256
from detector.safeload import allowlist, own
from detector.safeload.errors import CheckpointError, CorruptCheckpointError, UnsafeCheckpointError

log = logging.getLogger(__name__)

LOADS: collections.deque = collections.deque(
    maxlen=200
)  # (path, "safe" | "own" | "trusted" | "refused"), newest last
_TRUSTED: set[str] = set()  # real paths the user chose to trust, for the process
_LOCK = threading.RLock()
_UNSAFE = re.compile(r"GLOBAL (\S+) was not an allowed global|GLOBAL (\S+) whose module (\S+) is blocked")
DATA_REMOVED = "data-url-removed-by-detector.yaml"  # a dataset URL from a checkpoint is never fetched


def trust(path: str | Path) -> None:
    """From now on in this process, ``path`` is loaded with ``weights_only=False`` (loudly, every time):
    the user's explicit opt-in, ``model.trust_checkpoint=true``."""
    _TRUSTED.add(os.path.realpath(path))


@contextlib.contextmanager
def trusting(path: str | Path) -> Iterator[None]:
    """:func:`trust` for the duration of the block only."""
    real = os.path.realpath(path)
    added = real not in _TRUSTED
    _TRUSTED.add(real)
    try:
        yield
    finally:
        if added:
            _TRUSTED.discard(real)


def is_trusted(path: str | Path) -> bool:
    return os.path.realpath(path) in _TRUSTED


def safe_load(path: str | Path, map_location: Any = "cpu", **kwargs: Any) -> Any:
    """Load a checkpoint without running code from it (or trusted, if :func:`trusting` said so).

    Raises:
        UnsafeCheckpointError: Naming the file and every global or construct that is not allowed.
        CorruptCheckpointError: Naming the file, when it is damaged, empty or not a checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorruptCheckpointError(path, FileNotFoundError(path), "the file does not exist")
    if is_trusted(path):
        LOADS.append((path, "trusted"))
        return _trusted_load(path, map_location, **kwargs)
    for key in ("weights_only", "pickle_module"):  # how to unpickle is decided here, not by the caller
        kwargs.pop(key, None)
    try:
        ckpt = own.load(path, map_location, kwargs)
        how = "safe" if ckpt is None else "own"
        ckpt = _load(path, map_location, **kwargs) if ckpt is None else check_content(ckpt, path)
    except CheckpointError:
        LOADS.append((path, "refused"))
        raise
    LOADS.append((path, how))
    return ckpt


def _trusted_load(path: str, map_location: Any, **kwargs: Any) -> Any:
    import torch

    message = (
        f"TRUSTED CHECKPOINT: loading {path} (sha256 {sha256(path)[:16]}...) with weights_only=False because "
        "model.trust_checkpoint=true. Any code in this file runs now."
    )
    log.warning(message)
    print(f"WARNING: {message}", file=sys.stderr, flush=True)
    kwargs.pop("weights_only", None)
    return torch.load(path, map_location=map_location, weights_only=False, **kwargs)


@contextlib.contextmanager
def _exactly(entries: list) -> Iterator[None]:
    """Make ``entries`` torch's only user safe globals for the block (others set aside and restored)."""
    import torch.serialization as ts

    with _LOCK:
        saved = ts.get_safe_globals()
        ts.clear_safe_globals()
        ts.add_safe_globals(entries)
        try:
            yield
        finally:
            ts.clear_safe_globals()
            ts.add_safe_globals(saved)


def _globals(path: str, is_zip: bool) -> set[str] | None:
    """Every non-default GLOBAL the file references (None when the scan cannot tell: torch.load says why)."""
    import torch.serialization as ts

    try:
        if is_zip:
            with _exactly([]):  # torch hides what is registered at call time (73 built-ins at import)
                return set(ts.get_unsafe_globals_in_checkpoint(path))
        return _scan_non_zip(path)
    except pickle.UnpicklingError as e:  # an opcode outside the weights-only subset
        raise CorruptCheckpointError(
            path, e, "it uses pickle opcodes a torch checkpoint never contains"
        ) from None
    except CheckpointError:
        raise
    except (RuntimeError, ValueError, EOFError, OSError, KeyError, IndexError, zipfile.BadZipFile) as e:
        if is_zip:
            raise CorruptCheckpointError(path, e) from None
        return None


def _scan_non_zip(path: str) -> set[str]:
    """GLOBAL names in a non-zip file: torch's legacy format (up to 4 pickles) or a bare pickle."""
    from torch._weights_only_unpickler import _get_allowed_globals, get_globals_in_pkl

    names: set[str] = set()
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        for i in range(4):
            if i and f.tell() == size:  # a clean end after a whole pickle: a bare pickle
                break
            try:
                names |= get_globals_in_pkl(f)
            except EOFError:
                raise CorruptCheckpointError(
                    path, EOFError(f"pickle {i + 1} ends early"), "it is truncated"
                ) from None
    return names - set(_get_allowed_globals())


def _check_header(path: str) -> bool:
    """True for a zip checkpoint; refuses what cannot be one before any unpickling."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        raise CorruptCheckpointError(
            path, ValueError("zip central directory missing"), "it is a truncated zip archive"
        )
    if head[:1] != b"\x80":  # torch.save and every protocol >= 2 pickle start with PROTO
        raise CorruptCheckpointError(
            path, ValueError(f"starts with {head!r}"), "it is empty or not a PyTorch checkpoint"
        )
    return False


def _load(path: str, map_location: Any, **kwargs: Any) -> Any:
    import torch

    is_zip = _check_header(path)
    names = _globals(path, is_zip)
    if names and (bad := names - set(allowlist.ALLOWLIST)):
        raise UnsafeCheckpointError(path, bad)
    entries = allowlist.entries_for(sorted(names) if names is not None else allowlist.ALLOWLIST, path)
    try:
        with _exactly(entries):
            ckpt = torch.load(path, map_location=map_location, weights_only=True, **kwargs)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        if m := _UNSAFE.search(str(e)):
            name = m.group(1) or m.group(2)
            raise UnsafeCheckpointError(path, [name if "." in name else f"builtins.{name}"]) from None
        message = str(e).split("WeightsUnpickler error:")[-1].strip().split("\n")[0]
        legacy = "Only persistent_load of storage" in message and not is_zip
        reason = (
            "it is in torch's legacy format with embedded module source; re-save it with a current torch"
            if legacy
            else None
        )
        raise CorruptCheckpointError(path, pickle.UnpicklingError(message), reason) from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        reason = "it is a TorchScript archive (code), not a checkpoint" if "TorchScript" in str(e) else None
        raise CorruptCheckpointError(path, e, reason) from None
    return check_content(ckpt, path)


def _check_activation(act: Any, path: str) -> None:
    """Ultralytics' own restricted rule for a model YAML's activation: ``[torch.]nn.<Module>(literals)``."""
    import torch

    try:
        call = ast.parse(str(act).strip(), mode="eval").body
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
        base = call.func.value
        assert (isinstance(base, ast.Name) and base.id == "nn") or (
            isinstance(base, ast.Attribute)
            and base.attr == "nn"
            and isinstance(base.value, ast.Name)
            and base.value.id == "torch"
        )
        [ast.literal_eval(a) for a in call.args]
        [ast.literal_eval(k.value) for k in call.keywords]
        cls = getattr(torch.nn, call.func.attr)
        assert isinstance(cls, type) and issubclass(cls, torch.nn.Module)
    except Exception:
        how = f"its model.yaml activation {str(act)[:80]!r} is not a plain nn.<Module>(literals) call, which parse_model() would eval()"
        raise UnsafeCheckpointError(path, ["model.yaml activation"], how) from None


def _check_yaml(y: Any, path: str) -> None:
    if not isinstance(y, dict):
        return
    if y.get("activation"):
        _check_activation(y["activation"], path)
    import torch
    import ultralytics.nn.tasks as tasks

    for row in [*(y.get("backbone") or []), *(y.get("head") or [])]:
        m = row[2] if isinstance(row, list | tuple) and len(row) > 2 else None
        if isinstance(m, str) and m.startswith("torchvision.ops."):
            continue  # parse_model checks it is an nn.Module subclass under its restricted mode
        obj = (
            getattr(torch.nn, m[3:], None)
            if isinstance(m, str) and m.startswith("nn.")
            else vars(tasks).get(str(m))
        )
        if not (isinstance(obj, type) and issubclass(obj, torch.nn.Module)):
            raise UnsafeCheckpointError(
                path, ["model.yaml layer"], f"its model.yaml layer {m!r:.60} is not an nn.Module class"
            )


def check_content(ckpt: Any, path: str) -> Any:
    """Refuse data Ultralytics would turn into code; replace a dataset URL from the file. Returns ``ckpt``."""
    if not isinstance(ckpt, dict):
        raise UnsafeCheckpointError(
            path, [type(ckpt).__name__], f"it holds a {type(ckpt).__name__}, not a checkpoint dict"
        )
    models = tuple(allowlist.resolve(n) for n in allowlist.MODEL_CLASSES)
    for key in ("model", "ema"):
        if (m := ckpt.get(key)) is None:
            continue
        if not isinstance(m, models):
            raise UnsafeCheckpointError(
                path, [type(m).__name__], f"its {key!r} is a {type(m).__name__}, not a YOLO model"
            )
        _check_yaml(getattr(m, "yaml", None), path)
    for holder in (ckpt.get("train_args"), *(getattr(ckpt.get(k), "args", None) for k in ("model", "ema"))):
        data = holder.get("data") if isinstance(holder, dict) else getattr(holder, "data", None)
        if (
            isinstance(data, str) and "://" in data
        ):  # val() would download that YAML and run its download: script
            log.warning(
                "%s: its data=%r is not used (a dataset URL is never fetched); pass data= yourself",
                path,
                data,
            )
            if isinstance(holder, dict):
                holder["data"] = DATA_REMOVED
            else:
                holder.data = DATA_REMOVED
    return ckpt
