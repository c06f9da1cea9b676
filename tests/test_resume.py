"""detector-train resume=<run folder>: an interrupted run finishes with its own config, augmentations,
lrs by layer, sampler and W&B record, and a bad resume is refused before anything is touched."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import wandb
from helpers import cli, compose, files_under, interrupted_run, optimizer_groups
from helpers.wandb_records import OfflineRun, offline_runs
from omegaconf import OmegaConf

from detector import safeload
from detector.io import sha256
from detector.train import balance


@pytest.mark.slow
def test_resume_finishes_the_run_with_its_pipeline_lr_split_sampler_and_wandb(
    rare_sample, offline, monkeypatch
):
    """One interrupted run with an albumentations pipeline, lrs by layer, repeat-factor sampling and
    W&B, resumed through the CLI: each comes back as it was, last.pt is loaded safely, and the resumed
    run is a new W&B run that goes on from its epoch."""
    from ultralytics.utils.callbacks import base

    drawn: dict[int, list[int]] = {}
    seen: dict[int, list[int]] = {}

    def watch(trainer) -> None:  # every image the loader really loads, by epoch (mosaic is off: 2 epochs)
        dataset, load = trainer.train_loader.dataset, trainer.train_loader.dataset.get_image_and_label

        def recorded(index):
            seen.setdefault(trainer.epoch, []).append(index)
            return load(index)

        dataset.get_image_and_label = recorded

    def compare(trainer) -> None:
        drawn[trainer.epoch] = balance.sampler_of(trainer).indices(trainer.epoch).tolist()

    run_dir = offline / "run"
    interrupted_run(
        run_dir,
        "logger=wandb",
        "logger.table_images=2",
        "augment=aerial",
        "finetune.layer_lr={neck:0.5}",
        *("data=custom", f"data.yaml={rare_sample}", "model.weights=null"),
        *("finetune.balance=repeat_factor", "finetune.balance_threshold=1.0"),
        callbacks=({"on_pretrain_routine_end": watch, "on_train_epoch_end": compare},),
    )
    assert (run_dir / "weights" / "last.pt").exists() and not (run_dir / "summary.json").exists()
    assert seen[0] == drawn[0] and len(seen[0]) == 64  # epoch_length=dataset: 64 images, by repeat factor
    assert Counter(seen[0]) != Counter(range(64))  # repeats and omissions: not one pass of the dataset
    first = json.loads((run_dir / balance.RECORD).read_text())["digest"]

    resumed = {}  # the resumed trainer's optimizer, through Ultralytics' own default callbacks

    def record(trainer) -> None:
        resumed.update(groups=optimizer_groups(trainer), state=len(trainer.optimizer.state))

    monkeypatch.setitem(
        base.default_callbacks, "on_train_end", [*base.default_callbacks["on_train_end"], record]
    )
    # the trainer's own writes were remembered; a resume runs in a later process, which knows none
    assert sha256(run_dir / "weights" / "last.pt") in safeload.OWN
    safeload.OWN.clear()
    safeload.LOADS.clear()
    wandb.teardown()  # the interrupted run's W&B process, as its exit would
    res = cli("detector-train", f"resume={run_dir}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.last_line == str(run_dir)  # same folder, not a new one
    last = str(run_dir / "weights" / "last.pt")
    assert (last, "safe") in safeload.LOADS  # Ultralytics' own resume went through the safe loader

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed"] == [{"stage": "train", "from_epoch": 2}]
    with open(run_dir / "results.csv") as f:
        assert [int(float(r["epoch"])) for r in csv.DictReader(f)] == [1, 2]
    assert summary["config"]["train"]["epochs"] == 2 and summary["config"]["resume"] == str(run_dir)

    # W&B: the interrupted run failed after logging epoch 1; the resumed one is a new run from epoch 2
    interrupted, resumed_run = (OfflineRun.load(f) for f in offline_runs(run_dir))  # named by start time
    assert (interrupted.exit_code, [h["epoch"] for h in interrupted.history if "epoch" in h]) == (1, [1])
    assert (resumed_run.exit_code, [h["_step"] for h in resumed_run.history if "epoch" in h]) == (0, [2])
    assert resumed_run.run.display_name == "run (resumed)" and list(resumed_run.run.tags) == ["resumed"]
    assert resumed_run.config["resume"] == str(run_dir) and resumed_run.artifact("model")

    # the pipeline: "applied" is read off the resumed trainer's training dataloader, not from our config
    applied = summary["augment"]["applied"]["transform"]
    configured = summary["augment"]["configured"]["transform"]
    assert applied["transforms"] == configured["transforms"]
    assert [t["__class_fullname__"] for t in applied["transforms"]][:3] == [
        "HorizontalFlip",
        "VerticalFlip",
        "RandomRotate90",
    ]
    assert applied["bbox_params"]["format"] == "yolo"
    assert "augmentations" not in summary["stages"][0]["train"]  # recorded once, as A.to_dict, not as repr

    # the lr split: Adam moments came back from the checkpoint into the split groups
    assert resumed["state"] > 0
    assert {(g["tag"], round(g["initial_lr"], 6)) for g in resumed["groups"]} == {
        (tag, lr) for tag in ("weight", "bn", "bias") for lr in (0.002, 0.001)
    }

    # the sampler: the same factors, recorded again by the resumed run
    record_ = summary["stages"][0]["balance"]
    assert record_["digest"] == first and record_["method"] == "repeat_factor"
    assert record_["images_per_epoch"] == 64 and record_["images_per_epoch_natural"] > 64
    r = {name: c["repeat_factor"] for name, c in record_["classes"].items()}
    assert r == pytest.approx(
        {n: math.sqrt(64 / k) for n, k in zip("abcde", [64, 42, 24, 17, 9], strict=True)}, abs=1e-4
    )


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
