"""The benchmark scripts run end to end on tiny settings and write well-formed results (no timings asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_script, script

TINY = ["--n-train", "16", "--imgsz", "64"]


def _run(name: str, *args: str) -> None:
    """Run a benchmark script with its scratch folder in the test's tmp_path (the working directory)."""
    run_script(name, *args, "--work", str(Path.cwd() / "work"))


@pytest.mark.slow
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
    # a later file with other contenders (none here) reuses the deterministic seed-0 baseline, untrained
    again = tmp_path / "again.json"
    _run("bench_finetune.py", "--datasets", "sample", "--epochs", "1", *TINY, "--recipe", "", "--baseline", str(out), "--out", str(again))  # fmt: skip
    (base0,) = json.loads(again.read_text())["results"]
    assert base0["reused_from"] == str(out) and base0["mAP50-95"] == rows[0]["mAP50-95"]
    # partial result files merge into one table, the shared baseline counted once
    merged = tmp_path / "merged.json"
    _run("bench_finetune.py", *TINY, "--merge", str(out), str(again), "--out", str(merged))
    doc = json.loads(merged.read_text())
    assert len(doc["results"]) == 2
    means = {m["contender"]: m for m in doc["summary"]}
    assert means["detector (default)"]["seeds"] == [0]
    assert means["detector (default)"]["mAP50-95"] == pytest.approx(rows[1]["mAP50-95"], abs=1e-4)
    assert merged.with_suffix(".md").read_text().count("| sample") == 2  # one seed: no mean rows


def test_bench_finetune_variants_keep_braces_whole():
    variants = script("bench_finetune.py")["_variants"]
    got = variants(["none:finetune=none,finetune.ema={decay:0.9,tau:5}", "lr:train.lr0=0.001"], "default")
    assert got == {
        "detector (default)": ["finetune=default"],
        "none": ["finetune=none", "finetune.ema={decay:0.9,tau:5}"],  # a preset of its own: kept
        "lr": ["finetune=default", "train.lr0=0.001"],  # no preset: on top of the recipe
    }


@pytest.mark.slow
def test_bench_train(tmp_path):
    out = tmp_path / "train.json"
    # one lever, two detector-train runs (plain Ultralytics' launcher is run by test_bench_finetune)
    _run("bench_train.py", "--dataset", "sample", "--epochs", "1", *TINY, "--levers", "frozen", "--out", str(out))  # fmt: skip
    doc = json.loads(out.read_text())
    assert set(doc["seconds_per_epoch"]) == {"ours", "frozen"}
    assert all(v > 0 for v in doc["seconds_per_epoch"].values())
    assert set(doc["ratios"]) == {"frozen backbone"}
    assert out.with_suffix(".md").read_text().count("| frozen backbone |") == 1


@pytest.mark.slow
def test_bench_sweep(tmp_path):
    out = tmp_path / "sweep.json"
    args = ["--dataset", "sample", "--n-train", "16", "--imgsz", "64", "--epochs", "1", "--trials", "1"]
    _run("bench_sweep.py", *args, "--out", str(out))
    doc = json.loads(out.read_text())
    assert [(r["mode"], r["trials"]) for r in doc["runs"]] == [("unpruned", 1), ("pruned", 1)]
    assert doc["runs"][0]["epochs"] == 1 and doc["runs"][0]["pruned"] == 0
    assert set(doc["ratios"]) == {
        "epochs (pruned / unpruned)",
        "best mAP50-95 (pruned / unpruned)",
        "wall (pruned / unpruned)",
    }
