"""W&B tracking, offline, on real runs: what a run records, failures, and W&B never breaking training.

Offline runs are read back with wandb's own protobuf schema (tests/wandb_records.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import wandb
from helpers import Interrupted, compose, http_server
from helpers.wandb_records import OfflineRun, offline_runs

from detector.errors import DetectorError
from detector.tracking import settings as tracking_setup
from detector.tracking import tracker as tracking
from detector.train.run import run as train_run


def _only_run(root: Path) -> OfflineRun:
    """The one offline run under ``root``, read once wandb has flushed and closed it."""
    wandb.teardown()  # finish() returns before wandb-core has closed the file; in a CLI run, exit does this
    (folder,) = offline_runs(root)
    return OfflineRun.load(folder)


def _tracking_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "detector.tracking.tracker" and r.levelno >= logging.WARNING
    ]


def test_logger_group_defaults_to_none_and_wandb_composes():
    assert compose().logger.backend == "none"
    lg = compose("logger=wandb", "logger.init.tags=[a,b]", "logger.init.entity=team").logger
    assert (lg.backend, lg.init.project, list(lg.init.tags), lg.init.entity) == (
        "wandb",
        "detector",
        ["a", "b"],
        "team",
    )


def test_mode_is_offline_unless_online_was_asked_for_and_the_server_answers(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # wandb's own .netrc lookup reads this file
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert tracking_setup.resolve_mode(None) == "offline"
    (tmp_path / "netrc").write_text(f"machine api.wandb.ai\n  login user\n  password {'a' * 40}\n")
    assert tracking_setup.has_api_key()  # logged in with `wandb login`
    (tmp_path / "netrc").unlink()
    monkeypatch.setenv("WANDB_API_KEY", "a" * 40)
    with http_server({}) as url:  # a W&B server that answers, on 127.0.0.1
        monkeypatch.setenv("WANDB_BASE_URL", url)
        assert tracking_setup.resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens: wandb.init would wait 90 s
    t0 = time.monotonic()
    assert tracking_setup.resolve_mode(None) == "offline" and time.monotonic() - t0 < 5
    assert "cannot be reached: this run is recorded offline" in caplog.text
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert tracking_setup.resolve_mode(None) == "offline"  # the user's WANDB_MODE beats the key
    assert tracking_setup.resolve_mode("online") == "online"  # and logger.mode beats both
    with pytest.raises(DetectorError, match=r"logger\.init\.mode='onlin'"):
        tracking_setup.resolve_mode("onlin")


def test_missing_wandb_package_warns_once_and_tracks_nothing(monkeypatch, caplog, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    cfg = compose("logger=wandb", f"paths.runs_dir={tmp_path}")
    with tracking.session(cfg, tmp_path / "run") as tracker:
        assert tracker.callbacks == {} and not tracker.active
        tracker.record_training({})  # every call is a no-op; none raises or warns again
        assert tracker.log_artifact(tmp_path, name="x", type="model") is None
    (msg,) = _tracking_warnings(caplog)
    assert "wandb is not installed" in msg and "Training goes on" in msg


def test_artifacts_logged_after_training_join_the_same_run(offline):
    """The hook for later steps (exports): files and folders become artifacts of this run."""
    run_dir = offline / "run"
    (run_dir / "export" / "model_openvino").mkdir(parents=True)
    (run_dir / "export" / "model.onnx").write_bytes(b"onnx")
    (run_dir / "export" / "model_openvino" / "model.xml").write_text("<xml/>")
    cfg = compose("logger=wandb", f"paths.runs_dir={offline}")
    with tracking.session(cfg, run_dir) as tracker:
        art = tracker.log_artifact(
            [run_dir / "export" / "model.onnx", run_dir / "export" / "model_openvino"],
            name="sample yolo26n/export",
            type="exported-model",
            metadata={"format": "onnx"},
        )
        assert art is not None
    rec = _only_run(offline)
    exported = rec.artifact("exported-model")
    assert exported.name == "sample-yolo26n-export"
    assert sorted(e.path for e in exported.manifest.contents) == ["model.onnx", "model_openvino/model.xml"]
    assert json.loads(exported.metadata) == {"format": "onnx"} and rec.exit_code == 0


@pytest.mark.slow
def test_wandb_run_records_the_whole_run(smoke):
    """The session's real CLI run (the ``smoke`` fixture: the wheel's detector-train, offline, as a
    user would start it, with logger=wandb and export=onnx); Ultralytics' own W&B switch is even on."""
    run_dir, runs, home = smoke.run, smoke.empty / "runs", smoke.home
    assert "W&B tracking is off" not in smoke.output
    summary = json.loads((run_dir / "summary.json").read_text())

    # Exactly one W&B run, ours, inside the run folder; Ultralytics' callback did not open a second.
    (folder,) = offline_runs(smoke.empty)
    assert folder.parent == run_dir / "wandb" and "wandb" not in smoke.listing
    assert json.loads(smoke.settings.read_text())["wandb"] is False
    assert not [p for p in home.rglob("*") if "ultralytics" in p.name.lower()], "Ultralytics wrote into ~"

    rec = OfflineRun.load(folder)
    assert rec.exit_code == 0
    assert rec.run.display_name == str(run_dir.relative_to(runs)) and list(rec.run.tags) == ["smoke"]
    # The config, nested as Hydra composed it, plus the resolved facts.
    assert rec.config["train"] == {"epochs": 2, "imgsz": 64, "plots": True}
    assert rec.config["model"]["arch"] == "yolo11n.yaml" and rec.config["logger"]["backend"] == "wandb"
    facts = rec.config["resolved"]
    assert facts["pretrained_source"] == summary["pretrained_source"]
    assert facts["freeze"] == summary["freeze"] and "trainable_params" in facts["freeze"]
    assert facts["data"]["fingerprint"] == summary["data"]["fingerprint"] is not None
    assert facts["data"]["counts"] == summary["data"]["counts"]
    # One history row per epoch, the epoch as the step, with train losses and val metrics.
    rows = [h for h in rec.history if "epoch" in h]
    assert [(h["_step"], h["epoch"]) for h in rows] == [(1, 1), (2, 2)]
    assert all(
        {"metrics/mAP50-95(B)", "metrics/mAP50(B)", "train/box_loss", "val/box_loss"} <= set(h) for h in rows
    )
    # Final metrics (those of best.pt) in the summary.
    for k, v in summary["metrics"].items():
        assert rec.summary[f"final/{k}"] == pytest.approx(v)
    assert rec.summary["trainable_params"] == summary["freeze"]["trainable_params"]
    # Ultralytics' validation plots.
    assert {"plots/BoxPR_curve/_type", "plots/confusion_matrix/_type"} <= set(rec.summary)
    # The predictions table: 16 val images with ground-truth and predicted boxes as W&B overlays.
    assert rec.summary["val/predictions/_type"] == "table-file" and rec.summary["val/predictions/nrows"] == 16
    (entry,) = [
        e for e in rec.artifact("run_table").manifest.contents if e.path.endswith("predictions.table.json")
    ]
    assert Path(entry.local_path).is_relative_to(run_dir / "wandb"), "staged outside the run folder"
    table = json.loads(Path(entry.local_path).read_text())
    assert table["columns"] == ["file", "image", "ground_truth", "predicted"] and len(table["data"]) == 16
    boxes = [row[1]["boxes"] for row in table["data"]]
    assert sum(row[2] for row in table["data"]) == sum(len(b["ground_truth"]) for b in boxes) > 0
    gt = boxes[0]["ground_truth"][0]
    assert set(gt["position"]) == {"middle", "width", "height"} and gt["class_id"] == 0
    preds = [p for b in boxes for p in b["predictions"]]
    assert preds and all(0.001 <= p["scores"]["conf"] <= 1 for p in preds)
    # The best weights as a model artifact, referenced in place, with the facts as metadata.
    model = rec.artifact("model", "smoke_sample_yolo11n-model")
    assert [(e.path, e.local_path) for e in model.manifest.contents] == [
        ("best.pt", summary["weights"]["best"])
    ]
    assert json.loads(model.metadata)["metrics"] == summary["metrics"]
    # The published version (export=onnx) joins the same run, under its name and number.
    version = rec.artifact("model", "smoke_sample_yolo11n")
    assert set(version.aliases) == {"v1", "latest"}
    files = ("manifest.json", "MODEL_CARD.md", "weights/best.pt", "weights/best.onnx")
    assert {e.path for e in version.manifest.contents} == {f"v1/{f}" for f in files}


class _Boom(RuntimeError):
    pass


def _raise(trainer):
    raise _Boom("injected failure after the first batch")


def _sigterm(trainer):
    os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid>` or a scheduler's time limit would


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "callback", "error", "code"), [("raise", _raise, _Boom, 1), ("kill", _sigterm, SystemExit, 143)]
)
def test_a_run_that_dies_mid_training_is_marked_failed(offline, how, callback, error, code):
    cfg = compose("debug=smoke", "logger=wandb", f"paths.runs_dir={offline}", "logger.table_images=0")
    run_dir = offline / "run"
    with pytest.raises(error), tracking.session(cfg, run_dir) as tracker:
        train_run(cfg, run_dir, callbacks=[tracker.callbacks, {"on_train_batch_end": callback}])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the session put the default back
    rec = _only_run(offline)
    assert rec.exit_code == code  # W&B shows a non-zero exit code as "failed"
    assert rec.summary["error"].startswith(error.__name__)
    assert not (run_dir / "summary.json").exists()


@pytest.mark.slow
def test_logger_none_creates_no_wandb_folder(offline):
    before = sorted(Path.cwd().glob("wandb"))
    cfg = compose("debug=smoke", f"paths.runs_dir={offline}")
    run_dir = offline / "run"

    def trained_one_epoch(trainer) -> None:  # a W&B run would have started and logged by now
        raise Interrupted

    with pytest.raises(Interrupted), tracking.session(cfg, run_dir) as tracker:
        assert tracker.callbacks == {}
        train_run(cfg, run_dir, callbacks=[tracker.callbacks, {"on_fit_epoch_end": trained_one_epoch}])
    assert (run_dir / "weights" / "last.pt").exists()
    assert not [p for p in offline.rglob("*wandb*") if p.name != "wandb-home"]
    assert sorted(Path.cwd().glob("wandb")) == before


@pytest.mark.slow
def test_unwritable_wandb_dir_lets_training_finish_with_one_warning(offline, caplog):
    (offline / "a_file").write_text("W&B cannot make a folder inside a file, not even as root")
    cfg = compose(
        "debug=smoke", "logger=wandb", f"paths.runs_dir={offline}", f"logger.init.dir={offline}/a_file/wb"
    )
    run_dir = offline / "run"
    with tracking.session(cfg, run_dir) as tracker:
        summary = train_run(cfg, run_dir, callbacks=[tracker.callbacks])
        tracker.record_training(summary)
    assert summary["status"] == "complete" and (run_dir / "weights" / "best.pt").exists()
    (msg,) = _tracking_warnings(caplog)
    assert "cannot write W&B files under" in msg and "a_file/wb" in msg and "logger.init.dir" in msg
    assert offline_runs(offline, Path("/tmp/wandb")) == [], "wandb fell back to another folder"
