"""Where a result came from: library versions, the project's git commit, the machine."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from detector.runtime import PROJECT_ROOT


def versions(dists: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of python, this project, torch, ultralytics, numpy and ``dists`` (those installed)."""
    from detector import __version__

    out = {"python": platform.python_version(), "detector": __version__}
    for d in ("torch", "ultralytics", "numpy", *dists):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[d] = importlib.metadata.version(d)
    return out


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any] | None:
    """The project's commit and whether tracked files differ from it; None outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode:
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def machine() -> dict[str, Any]:
    """The CPU a latency was measured on."""
    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    return {"cpu": cpu or platform.machine(), "cpus": os.cpu_count(), "platform": platform.platform()}
