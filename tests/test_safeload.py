"""Loading a checkpoint never runs code from it: real checkpoints load, malicious ones are refused.

Each malicious file carries a payload that would write a marker file when unpickled; the tests show
the refusal names the problem and that the marker is never written.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from helpers import cli, files_under, interrupted_run

from detector import safeload
from detector.train import weights

BUNDLED = weights.BUNDLED / "yolo11n-seg.pt"


class Payload:
    """Unpickling this runs ``os.system`` (what an attacker's checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class ModelCall:
    """Pickles as ``DetectionModel(cfg)``: an allowlisted class called with a YAML whose activation is code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        from ultralytics.nn.tasks import DetectionModel

        cfg = {
            "activation": f"__import__('os').system('touch {self.marker}')",
            "nc": 1,
            "backbone": [],
            "head": [],
        }
        return DetectionModel, (cfg,)


@pytest.fixture(scope="module")
def coco() -> dict:
    """The bundled COCO checkpoint, loaded safely once."""
    return safeload.safe_load(BUNDLED)


def _evil_copy(ckpt: dict, path: Path, payload) -> Path:
    torch.save({**ckpt, "extra": payload}, path)
    return path


def test_the_bundled_coco_checkpoint_loads_safely(coco):
    assert type(coco["model"]).__name__ == "SegmentationModel" and coco["train_args"]["task"] == "segment"
    assert safeload.LOADS[-1] == (str(BUNDLED), "safe")


@pytest.mark.parametrize("kind", ["extra key", "bare pickle", "plain torch.save", "constructor call"])
def test_a_malicious_file_is_refused_naming_what_it_holds_and_runs_nothing(kind, coco, tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    if kind == "extra key":
        _evil_copy(coco, path, Payload(marker))
    elif kind == "bare pickle":
        path.write_bytes(pickle.dumps(Payload(marker), protocol=2))
    elif kind == "plain torch.save":
        torch.save(Payload(marker), path)
    else:
        torch.save({"model": ModelCall(marker)}, path)
    with pytest.raises(safeload.UnsafeCheckpointError) as e:
        safeload.safe_load(path)
    expected = "ultralytics.nn.tasks.DetectionModel" if kind == "constructor call" else "posix.system"
    assert (
        str(path) in str(e.value)
        and expected in str(e.value)
        and "Nothing from the file was run" in str(e.value)
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "reason"), [(b"", "empty or not a PyTorch"), (b"GIF89a...", "empty or not a PyTorch")]
)
def test_a_file_that_is_no_checkpoint_is_named(content, reason, tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(safeload.CorruptCheckpointError, match=reason) as e:
        safeload.safe_load(path)
    assert str(path) in str(e.value)


def test_a_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "cut.pt"
    path.write_bytes(BUNDLED.read_bytes()[: BUNDLED.stat().st_size // 2])
    with pytest.raises(safeload.CorruptCheckpointError, match="truncated"):
        safeload.safe_load(path)


def test_detector_train_refuses_an_evil_checkpoint_before_training(coco, tmp_path, no_training):
    marker = tmp_path / "pwned"
    evil = _evil_copy(coco, tmp_path / "evil.pt", Payload(marker))
    res = cli("detector-train", f"model.weights={evil}", "debug=smoke")
    assert (
        res.returncode == 2 and "Refusing to load checkpoint" in res.stderr and "posix.system" in res.stderr
    )
    assert "model.trust_checkpoint=true" in res.stderr  # the way out, for a file the user trusts
    assert not marker.exists() and files_under(tmp_path / "runs") == []


def test_trusting_a_file_is_explicit_and_loud(coco, tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = _evil_copy(coco, tmp_path / "trusted.pt", Payload(marker))
    with safeload.trusting(evil):
        safeload.safe_load(evil)
    assert marker.exists()  # trusted: the old, unsafe load, as asked
    assert "TRUSTED CHECKPOINT" in capsys.readouterr().err and not safeload.is_trusted(evil)


@pytest.mark.slow
def test_a_runs_checkpoints_load_safely_and_an_evil_best_pt_is_not_exported(smoke, tmp_path):
    for name in ("best.pt", "last.pt"):  # written by the session's detector-train process
        assert type(safeload.safe_load(smoke.run / "weights" / name)["model"]).__name__ == "DetectionModel"
        assert safeload.LOADS[-1] == (str(smoke.run / "weights" / name), "safe")
    run = tmp_path / "run"
    shutil.copytree(smoke.run, run, symlinks=True)
    marker = tmp_path / "pwned"
    best = run / "weights" / "best.pt"
    _evil_copy(safeload.safe_load(best), best, Payload(marker))
    res = cli(
        "detector-export",
        f"run={run}",
        "export.publish.latency_runs=1",
        f"paths.artifacts_dir={tmp_path / 'a'}",
    )
    assert res.returncode == 2 and f"Refusing to load checkpoint {run}" in res.stderr, res.stderr[-2000:]
    assert not marker.exists() and files_under(tmp_path / "a") == []


@pytest.mark.slow
def test_only_bytes_the_trainer_wrote_here_skip_the_weights_only_pass(smoke, tmp_path):
    from ultralytics.engine import trainer

    last = tmp_path / "last.pt"
    shutil.copy(smoke.run / "weights" / "last.pt", last)
    safeload.OWN.clear()
    trainer.strip_optimizer(last)  # Ultralytics' own writer, as final_eval calls it
    ckpt = safeload.safe_load(last)
    assert safeload.LOADS[-1] == (str(last), "own") and type(ckpt["model"]).__name__ == "DetectionModel"
    copy = shutil.copy(last, tmp_path / "copy.pt")  # the same bytes elsewhere: still this process's own
    assert type(safeload.safe_load(copy)["model"]).__name__ == "DetectionModel"
    assert safeload.LOADS[-1] == (str(copy), "own")
    # anything else written here, even by torch.save in this process, gets the weights-only pass
    marker = tmp_path / "pwned"
    _evil_copy(ckpt, last, Payload(marker))
    with pytest.raises(safeload.UnsafeCheckpointError, match=r"posix\.system"):
        safeload.safe_load(last)
    assert safeload.LOADS[-1] == (str(last), "refused") and not marker.exists()
    torch.save({**ckpt, "note": "edited"}, last)  # a harmless edit outside the trainer
    safeload.safe_load(last)
    assert safeload.LOADS[-1] == (str(last), "safe")


@pytest.mark.slow
def test_resume_names_a_damaged_last_pt(tmp_path):
    """That a good last.pt is resumed through the safe loader is checked by test_resume's real resume."""
    again = tmp_path / "again"
    interrupted_run(again)
    damaged = again / "weights" / "last.pt"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    res = cli("detector-train", f"resume={again}")
    assert res.returncode == 2 and f"Cannot resume from {damaged}" in res.stderr
    assert "model.weights=" in res.stderr and "best.pt" in res.stderr
