"""Write files so that a reader sees the old version or the new one, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` (per process), then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, doc: dict) -> None:
    """``doc`` as indented JSON (anything else as ``str``), written atomically."""
    write_text(path, json.dumps(doc, indent=2, default=str) + "\n")
