"""Real (tiny) fine-tunes on CPU: transfer learning, freezing, two-stage, EMA, read-only data, bad input.

The offline quickstart (a real detector-train process, bundled checkpoint) is test_wheel's run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers import Interrupted, cli, compose, files_under, tree_hash

from detector.train import ema
from detector.train.run import run
from detector.train.weights import load_checkpoint


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict()


def _layer(key: str) -> int:
    return int(key.split(".")[1])


@pytest.mark.slow
def test_two_stage_freezes_the_backbone_then_trains_all_at_a_lower_lr_with_its_ema(
    tiny_ckpt, sample_copy, tmp_path
):
    """One two-stage run (one epoch each): stage 1 leaves the frozen backbone untouched and trains the
    head, stage 2 trains everything at a tenth of the lr, and both follow finetune.ema's schedule."""
    before = tree_hash(sample_copy.parent)
    emas = []

    def record(trainer) -> None:
        emas.append((trainer.ema.updates, trainer.ema.decay(trainer.ema.updates)))

    cfg = compose(
        "debug=smoke", "data=custom", f"data.yaml={sample_copy}", "model.arch=yolo26n.yaml", f"model.weights={tiny_ckpt}",
        "finetune=two_stage", "train.epochs=2", "finetune.two_stage.epochs=1", "finetune.ema={decay:0.9,tau:1}",
    )  # fmt: skip
    summary = run(cfg, tmp_path / "run", callbacks=[{"on_train_end": record}])

    s1, s2 = summary["stages"]
    assert (s1["freeze"], s2["freeze"]) == (list(range(11)), [])
    assert s1["train"]["epochs"] + s2["train"]["epochs"] == 2
    assert s2["optimizer"] == s1["optimizer"] and s2["lr0"] == pytest.approx(s1["lr0"] * 0.1)
    assert s2["frozen_params"] == 0 and s2["tensors_transferred"] == s2["tensors_total"]
    stage1 = tmp_path / "run" / "stage1" / "weights"
    assert (stage1 / "best.pt").exists() and Path(summary["weights"]["best"]).exists()

    src, out = _state(tiny_ckpt), _state(stage1 / "last.pt")
    backbone = [k for k in src if _layer(k) <= 10]
    head = [k for k in src if _layer(k) == 23 and src[k].is_floating_point()]
    assert backbone and head
    assert all(torch.equal(src[k], out[k]) for k in backbone), "a frozen backbone tensor changed"
    assert any(not torch.equal(src[k], out[k]) for k in head), "the head did not train"
    pre = summary["pretrained_source"]
    assert summary["pretrained"] is True and pre["source"] == "explicit path"
    assert pre["tensors_transferred"] == pre["tensors_total"] == len(src)  # same arch and classes: all
    assert s1["frozen_params"] > 0 and s1["trainable_params"] > 0

    # Ultralytics' EMA, in each stage, follows decay * (1 - exp(-updates / tau)), not its own schedule
    assert [e[0] for e in emas] == [1, 1]  # 4 batches of 16 images, one optimizer step per 64 (nbs)
    for updates, decay in emas:
        assert decay == pytest.approx(0.9 * (1 - math.exp(-updates / 1))) and decay > 0.5
        assert ema.schedule(0.9999, 2000)(updates) < 0.01  # Ultralytics' own would be near 0 here
    assert [st["ema"] for st in summary["stages"]] == [{"decay": 0.9, "tau": 1.0}] * 2

    assert set(summary["metrics"]) == {"precision", "recall", "mAP50", "mAP50-95"}
    assert summary["versions"]["ultralytics"] and summary["wall_time_s"] > 0
    assert tree_hash(sample_copy.parent) == before, "training wrote into the dataset folder"
    assert (tmp_path / "run" / "data" / "labels" / "train.cache").exists()  # the cache went to the run


@pytest.mark.slow
@pytest.mark.parametrize(("optimizer", "lr0"), [(None, 0.002), ("auto", 0.001)])
def test_default_recipe_sets_its_optimizer_whatever_the_class_count(optimizer, lr0, sample_copy, tmp_path):
    # Six class names: Ultralytics' optimizer=auto would pick AdamW at 0.002 * 5 / (4 + 6) = 0.001.
    text = sample_copy.read_text().replace("  0: solar-pv-panel", "\n".join(f"  {i}: c{i}" for i in range(6)))
    sample_copy.write_text(text)
    extra = [] if optimizer is None else [f"train.optimizer={optimizer}"]
    cfg = compose("debug=smoke", "data=custom", f"data.yaml={sample_copy}", "finetune=default", *extra)
    seen = {}

    def built(trainer) -> None:  # the optimizer the trainer built; no need to train it
        seen.update(
            name=type(trainer.optimizer).__name__,
            lr={g["initial_lr"] for g in trainer.optimizer.param_groups},
        )
        raise Interrupted

    with pytest.raises(Interrupted):
        run(cfg, tmp_path / "run", callbacks=[{"on_train_start": built}])
    assert seen["name"] == "AdamW" and [round(lr, 6) for lr in seen["lr"]] == [lr0]


def _break_names(data: Path) -> None:
    lab = sorted((data.parent / "labels" / "train").iterdir())[0]
    lab.write_text("4 0.5 0.5 0.2 0.2\n")


def _empty_val(data: Path) -> None:
    for f in (data.parent / "images" / "val").iterdir():
        f.unlink()


BAD = {
    "missing data.yaml": (["data.yaml=/nonexistent/data.yaml"], None, "data.yaml not found"),
    "split without images": ([], _empty_val, "the val split"),
    "names vs class ids": ([], _break_names, "class id 4 but data.yaml names only 1 classes"),
    "unknown model arch": (["model.arch=yolo99q.yaml"], None, "Unknown model architecture 'yolo99q.yaml'"),
    "not a checkpoint": (
        ["model.weights={bogus}"],
        None,
        "cannot be loaded: it is empty or not a PyTorch checkpoint",
    ),
    "freeze beyond depth": (["finetune.freeze=[0,1,99]"], None, r"finetune.freeze lists layer(s) [99]"),
    "missing explicit checkpoint": (["model.weights=/no/such/best.pt"], None, "Checkpoint not found"),
    "unknown checkpoint offline": (["model=yolo26s"], None, "Checkpoint yolo26s.pt is not available"),
    "several devices (DDP)": (["train.device=[0,1]"], None, "detector-train runs on one device"),
    "epochs not a number": (["train.epochs=abc"], None, "train.epochs: 'epochs=abc' is of invalid type str"),
    "batch not a number": (["train.batch=big"], None, "train.batch: 'batch=big' is of invalid type str"),
    "lr0 not a number": (["train.lr0=fast"], None, "train.lr0: 'lr0=fast' is of invalid type str"),
    "negative imgsz": (["train.imgsz=-5"], None, "train.imgsz: 'imgsz=-5' must be a positive whole number"),
    "recipe value": (
        ["finetune.train.flipud=2"],
        None,
        "finetune.train.flipud: 'flipud=2' is an invalid value",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_fails_clearly_before_training(case, sample_copy, tmp_path, no_training):
    args, mutate, message = BAD[case]
    if mutate:
        mutate(sample_copy)
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("not a checkpoint")
    runs = tmp_path / "runs"
    args = [a.format(bogus=bogus) for a in args]
    res = cli("detector-train", "data=custom", f"data.yaml={sample_copy}", f"paths.runs_dir={runs}", *args)
    assert res.returncode == 2, res.stdout[-1500:] + res.stderr[-1500:]
    assert message in res.stderr
    assert files_under(runs) == [], "a failed run left a folder"


def test_a_crash_leaves_its_traceback_and_no_run_folder(tmp_path, monkeypatch):
    import detector.train.run

    def crash(*args, **kwargs):
        raise RuntimeError("a real bug, not bad input")

    monkeypatch.setattr(detector.train.run, "run", crash)
    res = cli("detector-train", "debug=smoke")
    assert res.returncode == 1 and "RuntimeError: a real bug, not bad input" in res.stderr
    assert files_under(tmp_path / "runs") == []
