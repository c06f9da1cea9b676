"""Fixtures shared by every test. Helpers live in tests/helpers; nothing here imports Ultralytics early.

Every test writes under pytest's tmp_path only: each test runs in its own tmp_path as the working
directory (where outputs land by default), Ultralytics' settings folder is a session temporary
folder, and the checkout's own runs/, artifacts/ and weights/ are never touched.
"""

from __future__ import annotations

import itertools
import os
import pickle
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import SAMPLE, SHARED, compose

if os.environ.get(
    "PYTEST_XDIST_WORKER"
):  # workers share the machine's cores: one thread each (torch, subprocesses)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


SESSION_RUNS = ("smoke", "trained", "tiled_version", "tiny_ckpt")  # session fixtures that train


def pytest_collection_modifyitems(items):
    """Lay the tests out so that each xdist worker starts on slow tests of its own.

    ``--dist worksteal`` gives worker k the k-th contiguous share of this list, then lets an idle
    worker take the tail of a busy one's queue. So each share starts with its slow tests and ends
    with fast ones. The slow tests that use one session run (the ``smoke`` user session, the
    ``trained`` run...) share a worker, which builds it once while the other workers train
    something else instead of waiting on its lock. The order is the same in every worker, as xdist
    needs (it depends only on the collected items and the worker count).
    """
    n = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    slow = [i for i in items if i.get_closest_marker("slow")]
    fast = [i for i in items if not i.get_closest_marker("slow")]
    if n < 2:
        items[:] = slow + fast
        return
    groups: dict[str, list] = {}
    for item in slow:
        home = next((f for f in SESSION_RUNS if f in item.fixturenames), item.nodeid)
        groups.setdefault(home, []).append(item)
    lanes: list[list] = [[] for _ in range(n)]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(lanes, key=len).extend(group)  # the largest groups first, each to the lightest lane
    rank = {id(i): k for k, i in enumerate(slow)}
    layout, rest = [], iter(fast)
    for k, lane in enumerate(lanes):
        lane.sort(key=lambda i: rank[id(i)])  # collection order within a lane
        share = (k + 1) * len(items) // n - k * len(items) // n
        layout += lane + list(itertools.islice(rest, max(share - len(lane), 0)))
    items[:] = layout + list(rest)


def _once(tmp_path_factory, name: str, make: Callable[[Path], object]):
    """A session fixture's value made once per test session, however many xdist workers ask for it.

    Without workers it is ``make(folder)``. With them, the first worker to ask makes it in a folder
    that all of the session's workers share (under a file lock), and the others wait and read its
    pickled value: a training run is not repeated once per worker. Tests copy what they change.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # the session's folder, above each worker's own
    value = shared / f"{name}.pickle"
    with FileLock(str(shared / f"{name}.lock")):
        if not value.is_file():
            folder = shared / name
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half-way left this
            folder.mkdir()
            value.write_bytes(pickle.dumps(make(folder)))
        return pickle.loads(value.read_bytes())


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
def offline(monkeypatch, tmp_path):
    """W&B offline, with its own caches in the test's tmp_path (returned): nothing of it lands in ~."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    monkeypatch.delenv("WANDB_DATA_DIR", raising=False)
    return tmp_path


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

    def make(work: Path) -> Path:
        from ultralytics import YOLO

        data = work / "sample"
        shutil.copytree(SAMPLE, data)
        YOLO("yolo26n.yaml").train(
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

    return _once(tmp_path_factory, "ckpt", make)


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
    """A user's first session, for real, once: detector's wheel built from this checkout and
    installed in a fresh virtual environment; then, in an empty folder, its ``detector-train
    debug=smoke export=onnx logger=wandb`` (64 px, 2 epochs, plots on). It fine-tunes the bundled COCO
    checkpoint with detector's downloads left on (their default) and no network, records the run
    with W&B (offline, Ultralytics' own W&B switch on, HOME elsewhere) and publishes v1 as ONNX.

    The one real process of detector-train (its W&B run and its export step) and of
    detector-artifacts' verify: test_wheel, test_tracking and test_export each check their part.
    """

    def make(root: Path) -> SimpleNamespace:
        import json

        from helpers import install_wheel, run_ok

        from detector import runtime

        bin_dir, wheel_files = install_wheel(root)
        empty, home, yolo = root / "empty", root / "home", root / "yolo"
        settings = yolo / "Ultralytics" / "settings.json"
        for d in (empty, home, settings.parent):
            d.mkdir(parents=True)
        ours = json.loads((runtime.yolo_config_dir() / "Ultralytics" / "settings.json").read_text())
        settings.write_text(json.dumps({**ours, "wandb": True}))  # as after `yolo settings wandb=True`
        where = run_ok([bin_dir / "python", "-c", "import detector; print(detector.__file__)"], empty)
        gone = {
            "DETECTOR_OFFLINE",
            "PYTEST_CURRENT_TEST",
            "WANDB_DATA_DIR",
            "WANDB_CACHE_DIR",
            "WANDB_CONFIG_DIR",
        }
        # PYTEST_CURRENT_TEST: Ultralytics skips its W&B callback under pytest; behave as for a user
        env = {k: v for k, v in os.environ.items() if k not in gone}
        env |= {
            "YOLO_OFFLINE": "true",
            "WANDB_MODE": "offline",
            "HOME": str(home),
            "YOLO_CONFIG_DIR": str(yolo),
        }
        cmd = [
            bin_dir / "detector-train", "debug=smoke", "export=onnx", "export.publish.latency_runs=3",
            "logger=wandb", "train.epochs=2", "train.plots=true", "logger.table_conf=0.001",
            "logger.init.tags=[smoke]",
        ]  # fmt: skip
        res = run_ok(cmd, empty, env)
        *_, version, run = res.stdout.strip().splitlines()
        return SimpleNamespace(
            run=Path(run), version=Path(version), artifacts=empty / "artifacts", empty=empty, home=home,
            settings=settings, venv=bin_dir.parent, wheel_files=wheel_files, detector_file=Path(where.stdout.strip()),
            listing=sorted(p.name for p in empty.iterdir()), output=res.stdout + res.stderr,
        )  # fmt: skip

    return _once(tmp_path_factory, "smoke", make)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A run with a measurable mAP: the bundled COCO YOLO11n-seg weights fine-tuned 3 epochs at 128 px."""

    def make(root: Path) -> Path:
        from detector.train.run import run as train_run

        train_run(compose("debug=smoke", "train.imgsz=128", "train.epochs=3"), root / "run")
        return root / "run"

    return _once(tmp_path_factory, "trained", make)


@pytest.fixture
def rare_sample(tmp_path: Path) -> Path:
    """The sample's 64 train / 16 val images with five classes, box k of an image given class k % 5:
    class 'e' is in 9 of the 64 train images, 'a' in all (7.1x); returns its data.yaml."""
    from helpers import sample_subset

    return sample_subset(tmp_path / "rare", {"train": 64, "val": 16}, step=1, classes=list("abcde"))


@pytest.fixture(scope="session")
def tiled_version(tmp_path_factory) -> SimpleNamespace:
    """A run trained on 256 px tiles of a sample subset (``tile=default``, 64 px, one epoch), published as ONNX."""

    def make(root: Path) -> SimpleNamespace:
        from helpers import sample_subset

        from detector.artifacts import export, target
        from detector.train.run import run

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

    return _once(tmp_path_factory, "tiled", make)
