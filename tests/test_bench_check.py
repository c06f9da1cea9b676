"""The check benchmark runs end to end on the bundled sample and writes its JSON (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT


@pytest.mark.slow
def test_bench_check_writes_json(tmp_path):
    out = tmp_path / "check.json"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "bench_check.py"),
        "--datasets",
        "sample",
        "--repeat",
        "1",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(out.read_text())["results"]
    assert result["images"] == 80 and result["errors"] == 0
    assert all(r > 0 for r in result["ratio_to_read"].values())
    assert set(result["seconds"]) >= {"check", "check again", "fingerprint", "detector-data check (CLI)"}
