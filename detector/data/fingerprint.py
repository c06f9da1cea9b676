"""A content hash of a dataset, so a model can be traced to the exact data it saw.

It covers the class names and, for every image, its split, the sha256 of its bytes and the
sha256 of its normalised label text. File names, file order and folder layout do not count:
renaming or re-listing files keeps the fingerprint, and changing one pixel, one label line or
one name changes it. A missing label file and an empty one (both: a background image) hash alike.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from detector.data import scan as scanning
from detector.data import spec as specs


def from_items(names: dict[int, str], items: list[scanning.Item]) -> str:
    """The fingerprint of already-scanned items (see the module docstring)."""
    rows = sorted(f"{it.split} {it.info.sha256 or 'unreadable'} {it.labels.digest}" for it in items)
    h = hashlib.sha256(json.dumps({str(k): v for k, v in sorted(names.items())}).encode())
    h.update("\n".join(rows).encode())
    return h.hexdigest()


def fingerprint(spec_or_yaml: specs.DataSpec | str | Path) -> str:
    """The dataset's fingerprint: a sha256 hex digest (64 characters).

    Args:
        spec_or_yaml: A parsed :class:`~detector.data.spec.DataSpec`, a data.yaml path, or a
            folder holding one.

    Raises:
        DetectorError: The data.yaml cannot be used (see :func:`detector.data.spec.load`).
    """
    spec = spec_or_yaml if isinstance(spec_or_yaml, specs.DataSpec) else specs.load(spec_or_yaml)
    return from_items(spec.names, scanning.scan(spec, decode=False))
