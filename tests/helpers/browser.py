"""Render a page in a real headless browser (Debian's chromium), for tests of report.html."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium() -> str:
    """The browser's executable, or skip the calling test (``apt-get install chromium``; .ci/run does)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): report.html not rendered")
    return exe


def render(page: Path, work: Path, size: str = "1400,3000") -> tuple[Path, str]:
    """A screenshot of ``page`` and its DOM after loading, offline (a file:// URL, no network)."""
    exe, shot = chromium(), work / "screenshot.png"
    base = [exe, *FLAGS, f"--user-data-dir={work / 'profile'}"]
    subprocess.run(
        [*base, f"--screenshot={shot}", f"--window-size={size}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    )
    return shot, dom.stdout
