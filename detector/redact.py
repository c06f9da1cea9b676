"""Secrets never reach disk: passwords in URLs and API keys become ``***`` in whatever is written.

The live process keeps using the real values (the study storage connects with its password, wandb
with its key); only what is written for people to read (summaries, the commands they record, Hydra's
saved config, the W&B config and metadata, logs) goes through here.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MASK = "***"
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|passw(or)?d|credential)", re.IGNORECASE)
SECRET_ENV = ("WANDB_API_KEY",)  # environment values that must not appear verbatim anywhere
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]+:)(?P<secret>[^@\s'\"]+)(?P<at>@)", re.IGNORECASE
)
_KEY_VALUE = re.compile(
    r"(?P<key>\b[\w.-]*(?:api[_-]?key|token|secret|passw(?:or)?d)[\w.-]*\s*[=:]\s*)(?P<value>[^\s,'\"}\]]+)",
    re.IGNORECASE,
)


def text(s: str) -> str:
    """``s`` with URL passwords, ``key=value`` secrets and the W&B API key of the environment masked."""
    for var in SECRET_ENV:
        secret = os.environ.get(var, "")
        if len(secret) >= 8:  # a key printed in full anywhere, whatever surrounds it
            s = s.replace(secret, MASK)
    s = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", s)
    return _KEY_VALUE.sub(lambda m: f"{m['key']}{MASK}", s)


def value(obj: Any) -> Any:
    """A copy of a config-like structure with every secret masked: values under secret-looking keys
    (``api_key``, ``password``, ``token``...) and passwords inside any string."""
    if isinstance(obj, dict):
        return {
            k: MASK if isinstance(k, str) and SECRET_KEY.search(k) and v else value(v) for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return type(obj)(value(v) for v in obj)
    if isinstance(obj, str):
        return text(obj)
    return obj


def files(folder: Path, pattern: str = "*.yaml") -> None:
    """Mask secrets in place in the files ``pattern`` matches under ``folder`` (Hydra's ``.hydra/``)."""
    from detector.io import write_text

    for path in sorted(folder.glob(pattern)):
        before = path.read_text()
        after = text(before)
        if after != before:
            write_text(path, after)


@contextlib.contextmanager
def argv() -> Iterator[None]:
    """``sys.argv`` masked while the block runs, for libraries that record the command line (wandb's metadata)."""
    saved = sys.argv[:]
    sys.argv[:] = [text(a) for a in saved]
    try:
        yield
    finally:
        sys.argv[:] = saved
