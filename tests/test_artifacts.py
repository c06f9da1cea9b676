"""Fast checks of the export config, the versions store and detector-artifacts (no model is exported here)."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli, compose, files_under

from detector.artifacts import store as artifacts
from detector.artifacts import target
from detector.errors import DetectorError
from detector.train import rundir


def compose_export(*overrides: str):
    """Compose configs/export.yaml the way detector-export does."""
    return compose(*overrides, config="export")


def card(doc: dict) -> str:
    return f"# {doc['name']} v{doc['version']}\n"


def publish_dummy(store: artifacts.Store, payload: bytes = b"weights") -> artifacts.Version:
    """Commit a version holding one small file, the way export.publish does."""
    with store.staging() as (stage, _):
        (stage / "weights").mkdir()
        (stage / "weights" / "best.onnx").write_bytes(payload)
        return store.commit(stage, {"format": "onnx"}, card)


# --- config ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "fmt", "tolerance"),
    [("onnx", "onnx", 0.5), ("torchscript", "torchscript", 0.5), ("openvino_int8", "openvino", 1.5)],
)
def test_export_options_compose_to_ultralytics_keys_plus_ours(option, fmt, tolerance):
    if fmt == "openvino" and importlib.util.find_spec("nncf") is None:
        pytest.skip("openvino extra not installed")
    extra = ["export.opset=17"] if fmt == "onnx" else []
    t = target.target(compose_export(f"export={option}", *extra).export)
    assert (t.format, t.tolerance, t.name) == (fmt, tolerance, None)
    assert "publish" not in t.kwargs and t.kwargs["format"] == fmt
    if fmt == "onnx":
        assert t.kwargs["opset"] == 17  # passed straight through, no `+` needed
    if option == "openvino_int8":
        assert t.int8 and t.kwargs["split"] == "train"


def test_export_none_selects_nothing_and_train_defaults_to_it():
    assert target.target(compose_export("export=none").export) is None
    assert target.target(compose("debug=smoke").export) is None
    assert target.target(compose("debug=smoke", "export=onnx").export).format == "onnx"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("export.format=onxx", "Did you mean onnx"),
        ("export.opsett=12", "did you mean export.opset"),
        ("export.data=x.yaml", "use the run's own data"),
        ("export.int8=true", "export.quantize=8"),
        ("export.name=x", "export.publish.name"),
    ],
)
def test_bad_export_keys_fail_with_the_fix(override, message):
    with pytest.raises(DetectorError, match=message):
        target.target(compose_export(override).export)


@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is not None, reason="LiteRT extra is installed")
def test_missing_runtime_names_the_extra_and_installs_nothing():
    with pytest.raises(DetectorError, match=r'pip install -e "\.\[tflite\]".*never installs'):
        target.target(compose_export("export=tflite").export)
    assert importlib.util.find_spec("litert_torch") is None


# --- run folders -------------------------------------------------------------------------------------


def fake_run(root: Path, name: str, status: str = "complete", weights: bool = True) -> Path:
    d = root / name / "2026-01-01_00-00-00-000000"
    (d / "weights").mkdir(parents=True)
    (d / "data").mkdir()
    (d / "data" / "data.yaml").write_text("names: [a]\n")
    (d / "summary.json").write_text(json.dumps({"status": status, "config": {"name": name}}))
    if weights:
        (d / "weights" / "best.pt").write_bytes(b"x")
    return d


def test_run_latest_is_the_newest_finished_run(tmp_path):
    old = fake_run(tmp_path, "a")
    new = fake_run(tmp_path, "b")
    os.utime(old / "summary.json", (1, 1))
    fake_run(tmp_path, "c", status="running")
    assert rundir.find_run("latest", tmp_path) == new.resolve()
    assert rundir.inspect_run(new).name == "b"
    with pytest.raises(DetectorError, match="no finished run"):
        rundir.find_run("latest", tmp_path / "empty")


def test_bad_run_folders_are_refused(tmp_path):
    with pytest.raises(DetectorError, match="Run folder not found"):
        rundir.inspect_run(tmp_path / "nope")
    with pytest.raises(DetectorError, match="did not finish"):
        rundir.inspect_run(fake_run(tmp_path, "r", status="running"))
    with pytest.raises(DetectorError, match=r"no weights/best\.pt"):
        rundir.inspect_run(fake_run(tmp_path, "w", weights=False))


def test_detector_export_bad_run_exits_2_and_leaves_nothing(tmp_path):
    res = cli(
        "detector-export",
        f"run={tmp_path / 'missing'}",
        f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.artifacts_dir={tmp_path / 'artifacts'}",
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Run folder not found" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "artifacts").exists()
    assert files_under(tmp_path / "runs") == []  # the command's own log folder is removed on bad input


# --- the store -----------------------------------------------------------------------------------------


def test_versions_are_numbered_sealed_and_aliased(tmp_path):
    store = artifacts.Store(tmp_path, "m")
    v1, v2 = publish_dummy(store), publish_dummy(store, b"other")
    assert (v1.number, v2.number) == (1, 2)
    assert (tmp_path / "m" / "latest").read_text() == "v2\n"
    assert store.get().number == 2 and store.get("v1").path == v1.path
    m = v2.manifest()
    assert (m["name"], m["version"], m["format"]) == ("m", 2, "onnx")
    assert set(m["files"]) == {"weights/best.onnx", "MODEL_CARD.md"}
    assert (v2.path / "MODEL_CARD.md").read_text() == "# m v2\n"
    assert not (v2.path / "weights" / "best.onnx").stat().st_mode & stat.S_IWUSR  # read-only
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp")] == []
    assert artifacts.verify(v1) == artifacts.verify(v2) == []


def test_verify_names_changed_missing_and_added_files(tmp_path):
    v = publish_dummy(artifacts.Store(tmp_path, "m"), b"0123456789")
    f = v.path / "weights" / "best.onnx"
    f.chmod(0o644)
    f.write_bytes(b"0123456780")  # same size, one byte changed
    (v.path / "MODEL_CARD.md").chmod(0o644)
    (v.path / "MODEL_CARD.md").unlink()
    v.path.chmod(0o755)
    (v.path / "extra.txt").write_text("x")
    problems = artifacts.verify(v)
    assert problems == [
        "MODEL_CARD.md: missing",
        "weights/best.onnx: sha256 differs from the manifest",
        "extra.txt: not in the manifest (added after publishing)",
    ]


def test_a_dead_exports_staging_folder_is_removed_and_its_number_reused(tmp_path):
    store = artifacts.Store(tmp_path, "m")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = store.root / f".tmp-{dead.stdout.strip()}-deadbeef"
    (stale / "weights").mkdir(parents=True)
    (stale / "manifest.json").write_text("{}")
    assert artifacts.names(tmp_path) == []  # a staging folder is not a version
    assert publish_dummy(store).number == 1
    assert not stale.exists()


def test_resolve_by_name_version_and_path(tmp_path):
    store = artifacts.Store(tmp_path, "m")
    publish_dummy(store)
    publish_dummy(store)
    assert artifacts.resolve("m", tmp_path).number == 2
    assert artifacts.resolve("m/v1", tmp_path).number == 1
    assert artifacts.resolve(str(store.root / "v1"), tmp_path).number == 1
    with pytest.raises(DetectorError, match=r"has v1, v2"):
        artifacts.resolve("m/v9", tmp_path)
    with pytest.raises(DetectorError, match=r"known: m"):
        artifacts.resolve("x", tmp_path)
    with pytest.raises(DetectorError, match="one folder name"):
        artifacts.Store(tmp_path, "../escape")


def test_artifacts_cli_verify_exit_codes(tmp_path):
    v = publish_dummy(artifacts.Store(tmp_path, "m"))
    ok = cli("detector-artifacts", "--dir", str(tmp_path), "verify", "m")
    assert ok.returncode == 0 and "m/v1: OK" in ok.stdout
    f = v.path / "weights" / "best.onnx"
    f.chmod(0o644)
    f.write_bytes(b"weightz")
    bad = cli("detector-artifacts", "--dir", str(tmp_path), "verify", "m/v1")
    assert bad.returncode == 1 and "weights/best.onnx: sha256 differs" in bad.stderr
    unknown = cli("detector-artifacts", "--dir", str(tmp_path), "verify", "nope")
    assert unknown.returncode == 2 and "No artifact 'nope'" in unknown.stderr
    listed = cli("detector-artifacts", "--dir", str(tmp_path), "list")
    assert listed.returncode == 0 and "v1 (latest)" in listed.stdout
