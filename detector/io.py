"""Files written so that a reader sees the old version or the new one, never half of one; file hashes.

Every file the project writes for a user (summaries, reports, plots, manifests, aliases) goes
through :func:`atomic`: the content lands in a temporary file beside the target, named per
process, and is renamed over the target once complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path


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
