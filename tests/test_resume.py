"""detector-train resume=<run folder>: an interrupted run finishes with its own config and augmentations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import cli, compose, files_under, interrupted_run
from omegaconf import OmegaConf

from detector import safeload


@pytest.mark.slow
def test_resume_finishes_the_run_with_the_same_pipeline(tmp_path):
    run_dir = tmp_path / "run"
    interrupted_run(run_dir, "augment=aerial")
    assert (run_dir / "weights" / "last.pt").exists() and not (run_dir / "summary.json").exists()

    safeload.LOADS.clear()
    res = cli("detector-train", f"resume={run_dir}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.last_line == str(run_dir)  # same folder, not a new one
    last = str(run_dir / "weights" / "last.pt")
    assert (last, "safe") in safeload.LOADS  # Ultralytics' own resume went through the safe loader

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed"] == [{"stage": "train", "from_epoch": 2}]
    with open(run_dir / "results.csv") as f:
        assert [int(float(r["epoch"])) for r in csv.DictReader(f)] == [1, 2]
    # "applied" is read off the resumed trainer's training dataloader, not from our config
    applied = summary["augment"]["applied"]["transform"]
    configured = summary["augment"]["configured"]["transform"]
    assert applied["transforms"] == configured["transforms"]
    assert [t["__class_fullname__"] for t in applied["transforms"]][:3] == [
        "HorizontalFlip",
        "VerticalFlip",
        "RandomRotate90",
    ]
    assert applied["bbox_params"]["format"] == "yolo"
    assert summary["config"]["train"]["epochs"] == 2 and summary["config"]["resume"] == str(run_dir)


def _fake_run(tmp_path: Path, summary: bool = False, last: bool = True) -> Path:
    run_dir = tmp_path / "old"
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose("debug=smoke"), run_dir / ".hydra" / "config.yaml")
    if last:
        (run_dir / "weights").mkdir()
        (run_dir / "weights" / "last.pt").write_bytes(b"x")
    if summary:
        (run_dir / "summary.json").write_text('{"status": "complete"}')
    return run_dir


BAD = {
    "not a run folder": (lambda p: p / "nowhere", [], "not a run folder (no .hydra/config.yaml)"),
    "finished run": (
        lambda p: _fake_run(p, summary=True),
        [],
        "that run finished (its summary.json says complete)",
    ),
    "no checkpoint yet": (lambda p: _fake_run(p, last=False), [], "stopped before it saved a checkpoint"),
    "other overrides": (_fake_run, ["train.epochs=5"], "resume continues a run with its own config; drop"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_resume_fails_clearly_and_touches_nothing(case, tmp_path):
    make, extra, message = BAD[case]
    target = make(tmp_path)
    before = files_under(tmp_path)
    res = cli("detector-train", f"resume={target}", *extra)
    assert res.returncode == 2, res.stdout[-1500:] + res.stderr[-1500:]
    assert message in res.stderr
    assert files_under(tmp_path) == before
