"""Shared fixtures. Ultralytics is configured (offline, project config dir) before anything imports it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detector import runtime

runtime.configure()

ROOT = runtime.PROJECT_ROOT
SAMPLE = ROOT / "datasets" / "sample"
SHARED = Path(os.environ.get("DETECTOR_SHARED_DATA", ROOT.parent / "shared" / "data"))
SHARED_WEIGHTS = SHARED.parent / "weights"


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def tree_hash(root: Path) -> str:
    """sha256 over every file's relative path and bytes: changes if anything is added or modified."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def compose(*overrides: str):
    """Compose configs/train.yaml the way detector-train does (including the ++ pass-through)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from detector.cli import CONFIG_DIR, passthrough_overrides

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose("train", overrides=passthrough_overrides(list(overrides)))


def run_cli(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``detector-train`` in a fresh interpreter, as a user would. An ``env`` value of None unsets it."""
    code = "import sys; from detector.cli import train; sys.argv[0] = 'detector-train'; train()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None},
        cwd=ROOT,
    )


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
