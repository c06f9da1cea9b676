"""I/O that never half-completes or hangs: atomic writes, file hashes, network calls with a deadline.

Every file the project writes for a user (summaries, reports, plots, manifests, aliases) goes
through :func:`atomic`: the content lands in a temporary file beside the target, named per
process, and is renamed over the target once complete. Every network access goes through
:func:`within`, so it gives up within its deadline, name lookup included.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit


@contextlib.contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block ends without error.

    For writers that want a file name (``fig.savefig``, ``Image.save``). The temporary file keeps
    ``path``'s suffix, so libraries that pick a format from it still do. On error it is removed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, doc: dict) -> None:
    """``doc`` as indented JSON (anything else as ``str``), written atomically."""
    write_text(path, json.dumps(doc, indent=2, default=str) + "\n")


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex sha256 of bytes in memory: what :func:`sha256` gives for a file that holds them."""
    return hashlib.sha256(data).hexdigest()


T = TypeVar("T")


def within(seconds: float, fn: Callable[[], T]) -> T:
    """``fn()``, or TimeoutError after ``seconds``. A socket timeout does not cover the name lookup
    (``getaddrinfo`` blocks), so ``fn`` runs on a thread that is abandoned when the deadline passes."""
    box: queue.Queue = queue.Queue(maxsize=1)

    def call() -> None:
        try:
            box.put((True, fn()))
        except BaseException as e:  # handed to the caller as it is
            box.put((False, e))

    threading.Thread(target=call, name="detector-net", daemon=True).start()
    try:
        ok, value = box.get(timeout=seconds)
    except queue.Empty:
        raise TimeoutError(f"no answer within {seconds:g} s") from None
    if not ok:
        raise value
    return value


def reachable(url: str, seconds: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host and port opens within ``seconds``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        within(seconds, lambda: socket.create_connection((parts.hostname, port), timeout=seconds).close())
    except (OSError, TimeoutError):
        return False
    return True
