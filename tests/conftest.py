"""Fixtures shared by every test. Helpers live in tests/helpers; nothing here imports Ultralytics early.

Every test writes under pytest's tmp_path only: each test runs in its own tmp_path as the working
directory (where outputs land by default), Ultralytics' settings folder is a session temporary
folder, and the checkout's own runs/, artifacts/ and weights/ are never touched.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import SAMPLE, SHARED, compose

if os.environ.get(
    "PYTEST_XDIST_WORKER"
):  # workers share the machine's cores: one thread each (torch, subprocesses)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _ultralytics_settings(tmp_path_factory):
    """Ultralytics' settings.json (and fonts) in a session temporary folder, configured offline; the
    shared datasets found wherever the tests run from; detector's own downloads off unless a test
    turns them on (it serves its own files on 127.0.0.1)."""
    os.environ["YOLO_CONFIG_DIR"] = str(tmp_path_factory.mktemp("ultralytics"))
    os.environ["DETECTOR_SHARED_DATA"] = str(SHARED)
    os.environ["DETECTOR_OFFLINE"] = "1"
    from detector import runtime

    runtime.configure()


@pytest.fixture(autouse=True)
def _work_in_tmp_path(tmp_path, monkeypatch):
    """Each test runs in its own tmp_path: default outputs (runs/, artifacts/, weights/) land there."""
    monkeypatch.chdir(tmp_path)


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
    run_dir = root / "runs" / str(cfg.name) / "run"
    summary = run(cfg, run_dir)
    return SimpleNamespace(dir=run_dir, summary=summary, root=root)


@pytest.fixture
def postgres_url():
    """A fresh database on the local PostgreSQL server (started here if it is installed but stopped)."""
    if not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters"):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does this)")
    if os.geteuid() != 0:
        pytest.skip("needs root to start the cluster and create a database as the postgres user")
    ver, name, port, status = subprocess.run(
        ["pg_lsclusters", "-h"], capture_output=True, text=True
    ).stdout.split()[:4]
    if status != "online":
        subprocess.run(["pg_ctlcluster", ver, name, "start"], check=True)
    db, role, password = f"detector_{uuid.uuid4().hex[:8]}", "detector_test", f"pw{uuid.uuid4().hex[:12]}"

    def psql(sql: str) -> None:
        subprocess.run(["su", "postgres", "-c", f"psql -X -q -p {port} -c {shlex.quote(sql)}"], check=True)

    psql(f"DO $$BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;")
    psql(f"ALTER ROLE {role} PASSWORD '{password}'")  # a fresh password each time: tests grep for it
    psql(f"CREATE DATABASE {db} OWNER {role}")
    yield f"postgresql://{role}:{password}@127.0.0.1:{port}/{db}"
    psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


# --- exported and trained models, shared by test_export and test_eval ------------------------------------


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> SimpleNamespace:
    """``detector-train debug=smoke export=onnx``: 64 px, 1 epoch, then export and publish v1, in one
    command; the one real process of both detector-train's export step and detector-artifacts' verify."""
    from helpers import run_cli

    root = tmp_path_factory.mktemp("smoke")
    res = run_cli(
        "detector-train",
        "debug=smoke",
        "export=onnx",
        "export.publish.latency_runs=3",  # latency is recorded, not asserted: 3 timed calls are enough here
        f"paths.runs_dir={root / 'runs'}",
        f"paths.artifacts_dir={root / 'a'}",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    *_, version, run = res.stdout.strip().splitlines()
    return SimpleNamespace(run=Path(run), version=Path(version), artifacts=root / "a")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A run with a measurable mAP: the bundled COCO YOLO11n-seg weights fine-tuned 3 epochs at 128 px."""
    from detector.train.run import run as train_run

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    train_run(compose("debug=smoke", "train.imgsz=128", "train.epochs=3"), run_dir)
    return run_dir


@pytest.fixture
def rare_sample(tmp_path: Path) -> Path:
    """The sample's 64 train / 16 val images with five classes, box k of an image given class k % 5:
    class 'e' is in 9 of the 64 train images, 'a' in all (7.1x); returns its data.yaml."""
    from helpers import sample_subset

    return sample_subset(tmp_path / "rare", {"train": 64, "val": 16}, step=1, classes=list("abcde"))


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
