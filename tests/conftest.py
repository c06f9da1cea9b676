"""Fixtures shared by every test. Helpers live in tests/helpers; nothing here imports Ultralytics early.

Every test writes under pytest's tmp_path only: Ultralytics' settings folder is a session temporary
folder, and the project's own runs/, artifacts/ and weights/ are never touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import SAMPLE, compose


@pytest.fixture(scope="session", autouse=True)
def _ultralytics_settings(tmp_path_factory):
    """Ultralytics' settings.json (and fonts) in a session temporary folder, configured offline."""
    os.environ["YOLO_CONFIG_DIR"] = str(tmp_path_factory.mktemp("ultralytics"))
    from detector import runtime

    runtime.configure()


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if Ultralytics starts training: bad input must be refused before that."""
    from ultralytics.engine.trainer import BaseTrainer

    def refuse(self, *args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(BaseTrainer, "train", refuse)


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled sample dataset; returns its data.yaml."""
    dst = tmp_path / "sample"
    shutil.copytree(SAMPLE, dst)
    return dst / "data.yaml"


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A real Ultralytics checkpoint: yolo26n.yaml trained for one epoch at 64 px on the sample."""
    from ultralytics import YOLO

    work = tmp_path_factory.mktemp("ckpt")
    data = work / "sample"
    shutil.copytree(SAMPLE, data)
    model = YOLO("yolo26n.yaml")
    model.train(
        data=str(data / "data.yaml"),
        epochs=1,
        imgsz=64,
        batch=16,
        project=str(work),
        name="t",
        plots=False,
        val=False,
    )
    return work / "t" / "weights" / "last.pt"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SimpleNamespace:
    """One finished ``debug=smoke`` run (64 px, one epoch, random init), trained in-process once per session."""
    from detector.train.run import run

    root = tmp_path_factory.mktemp("smoke")
    cfg = compose("debug=smoke", "model.weights=null", f"paths.runs_dir={root / 'runs'}")
    run_dir = root / "runs" / "smoke_sample_yolo26n" / "run"
    summary = run(cfg, run_dir)
    return SimpleNamespace(dir=run_dir, summary=summary, root=root)


@pytest.fixture(scope="session")
def tiled_version(tmp_path_factory) -> SimpleNamespace:
    """A run trained on 256 px tiles of a sample subset (``tile=default``, 64 px, one epoch), published as ONNX."""
    from helpers import sample_subset

    from detector.artifacts import export, target
    from detector.train.run import run

    root = tmp_path_factory.mktemp("tiled")
    data = sample_subset(root / "data", {"train": 16, "val": 4})
    cfg = compose(
        "debug=smoke",
        "model.weights=null",
        "data=custom",
        f"data.yaml={data}",
        "tile=default",
        "data.tile.size=256",
        f"paths.tiles_dir={root / 'cache'}",
    )
    summary = run(cfg, root / "run")
    t = target.target(compose("export=onnx", "export.publish.latency_runs=1", config="export").export)
    version = export.publish(root / "run", t, root / "artifacts")
    return SimpleNamespace(summary=summary, version=version.path, data=data, root=root)
