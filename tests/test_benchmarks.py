"""The benchmark scripts run end to end on tiny settings and write well-formed results (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow
TINY = ["--n-train", "16", "--imgsz", "64"]


def _run(script: str, *args: str) -> None:
    """Run a benchmark script with its scratch folder in the test's tmp_path (the working directory)."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args, "--work", str(Path.cwd() / "work")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]


def test_bench_finetune(tmp_path):
    out = tmp_path / "finetune.json"
    _run("bench_finetune.py", "--datasets", "sample", "--epochs", "1", *TINY, "--out", str(out))
    doc = json.loads(out.read_text())
    rows = doc["results"]
    assert doc["complete"] is True  # written after every cell; True once the last one is in
    assert [r["contender"] for r in rows] == ["ultralytics defaults", "detector (default)"]
    for r in rows:
        assert 0 <= r["mAP50-95"] <= r["mAP50"] <= 1 and r["wall_s"] > 0
    assert out.with_suffix(".md").read_text().count("| sample") == 2
    # another contender reuses the deterministic seed-0 baseline instead of retraining it
    again = tmp_path / "again.json"
    _run(
        "bench_finetune.py", "--datasets", "sample", "--epochs", "1", *TINY, "--recipe", "",
        "--variant", "none:finetune=none,finetune.ema={decay:0.9,tau:5}", "--baseline", str(out), "--out", str(again),
    )  # fmt: skip
    base0, none0 = json.loads(again.read_text())["results"]
    assert base0["reused_from"] == str(out) and base0["mAP50-95"] == rows[0]["mAP50-95"]
    assert none0["contender"] == "none" and none0["seed"] == 0
    assert none0["overrides"] == ["finetune=none", "finetune.ema={decay:0.9,tau:5}"]  # braces kept whole
    # partial result files merge into one table, the shared baseline counted once
    merged = tmp_path / "merged.json"
    _run("bench_finetune.py", *TINY, "--merge", str(out), str(again), "--out", str(merged))
    doc = json.loads(merged.read_text())
    assert len(doc["results"]) == 3
    means = {m["contender"]: m for m in doc["summary"]}
    assert means["none"]["seeds"] == [0] and means["none"]["mAP50-95"] == pytest.approx(
        none0["mAP50-95"], abs=1e-4
    )
    assert merged.with_suffix(".md").read_text().count("| sample") == 3  # one seed: no mean rows


def test_bench_train(tmp_path):
    out = tmp_path / "train.json"
    _run("bench_train.py", "--dataset", "sample", "--epochs", "3", *TINY, "--out", str(out))
    doc = json.loads(out.read_text())
    assert set(doc["seconds_per_epoch"]) == {"plain", "ours", "frozen", "ram", "workers0", "workers2"}
    assert all(v > 0 for v in doc["seconds_per_epoch"].values())
    assert set(doc["ratios"]) == {"wrapper overhead", "frozen backbone", "cache", "CPU workers"}


def test_bench_sweep(tmp_path):
    out = tmp_path / "sweep.json"
    args = ["--dataset", "sample", "--n-train", "0", "--imgsz", "64", "--epochs", "2", "--trials", "2"]
    _run("bench_sweep.py", *args, "--out", str(out))
    doc = json.loads(out.read_text())
    assert [(r["mode"], r["trials"]) for r in doc["runs"]] == [("unpruned", 2), ("pruned", 2)]
    assert doc["runs"][0]["epochs"] == 4 and doc["runs"][0]["pruned"] == 0
    assert set(doc["ratios"]) == {
        "epochs (pruned / unpruned)",
        "best mAP50-95 (pruned / unpruned)",
        "wall (pruned / unpruned)",
    }
