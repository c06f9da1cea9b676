"""Fast checks of the export config, the versions store and detector-artifacts (no model is exported here)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli, compose, files_under

from detector.artifacts import integrity, target
from detector.artifacts import store as artifacts
from detector.errors import DetectorError
from detector.train import rundir


def compose_export(*overrides: str):
    """Compose configs/export.yaml the way detector-export does."""
    return compose(*overrides, config="export")


def card(doc: dict) -> str:
    return f"# {doc['name']} v{doc['version']}\n"


EXPORTS = {"onnx": {"path": "weights/best.onnx", "runtime": "ONNX Runtime"}}


def publish_dummy(store: artifacts.Store, payload: bytes = b"weights", on_stage=None) -> artifacts.Version:
    """Commit a version holding one small file, the way export.publish does."""
    with store.staging() as (stage, _):
        (stage / "weights").mkdir()
        (stage / "weights" / "best.onnx").write_bytes(payload)
        return store.commit(stage, {"format": "onnx", "exports": EXPORTS}, card, on_stage)


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
        ("export.opset=x", "export.opset: 'opset=x' is of invalid type str"),
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
    assert (tmp_path / "m" / "latest").read_text() == f"v2 sha256:{v2.manifest_sha256}\n"
    assert store.get().number == 2 and store.get("v1").path == v1.path
    m = v2.manifest()
    assert (m["name"], m["version"], m["format"]) == ("m", 2, "onnx")
    assert set(m["files"]) == {"weights/best.onnx", "MODEL_CARD.md"}
    assert (v2.path / "MODEL_CARD.md").read_text() == "# m v2\n"
    assert not (v2.path / "weights" / "best.onnx").stat().st_mode & stat.S_IWUSR  # read-only
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp")] == []
    assert integrity.verify(v1) == integrity.verify(v2) == []


def test_verify_names_changed_missing_and_added_files(tmp_path):
    v = publish_dummy(artifacts.Store(tmp_path, "m"), b"0123456789")
    f = v.path / "weights" / "best.onnx"
    f.chmod(0o644)
    f.write_bytes(b"0123456780")  # same size, one byte changed
    (v.path / "MODEL_CARD.md").chmod(0o644)
    (v.path / "MODEL_CARD.md").unlink()
    v.path.chmod(0o755)
    (v.path / "extra.txt").write_text("x")
    problems = integrity.verify(v)
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


# --- a version is what it says (no model needed: the checks are the store's) -------------------------


def _writable(v: artifacts.Version) -> None:
    for p in [v.path, *v.path.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _rewrite_manifest(v: artifacts.Version, **changes) -> None:
    """Tamper with a version's manifest the way an attacker would: edit it, keep it valid JSON."""
    _writable(v)
    doc = v.manifest()
    for dotted, value in changes.items():
        *head, last = dotted.split("__")
        node = doc
        for k in head:
            node = node[k]
        node[last] = value
    (v.path / "manifest.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/etc/passwd", "leaves the version folder"), ("../../x.onnx", "leaves the version folder"),
     ("weights/best.pt", "a pickled PyTorch file is not an export")],
)  # fmt: skip
def test_an_export_path_that_leaves_the_version_or_is_a_pt_is_refused(path, problem, tmp_path):
    v = publish_dummy(artifacts.Store(tmp_path, "m"))
    (v.path / "weights").chmod(0o755)
    (v.path / "weights" / "best.pt").write_bytes(b"pickle")
    _rewrite_manifest(v, exports__onnx__path=path)
    with pytest.raises(DetectorError, match=problem):
        integrity.export_file(v, "onnx")
    assert any(problem in p for p in integrity.verify(v))


def test_a_file_added_under_an_export_folder_is_refused_and_named(tmp_path):
    store = artifacts.Store(tmp_path, "m")
    with store.staging() as (stage, _):
        (stage / "weights" / "best_openvino_model").mkdir(parents=True)
        (stage / "weights" / "best_openvino_model" / "best.xml").write_text("<xml/>")
        exports = {"openvino": {"path": "weights/best_openvino_model", "runtime": "OpenVINO"}}
        v = store.commit(stage, {"format": "openvino", "exports": exports}, card)
    assert integrity.export_file(v, "openvino") == v.path / "weights" / "best_openvino_model"
    folder = v.path / "weights" / "best_openvino_model"
    folder.chmod(0o755)
    (folder / "s.xml").write_text("<xml>another model</xml>")  # Ultralytics would load the first *.xml
    with pytest.raises(DetectorError, match=r"weights/best_openvino_model/s\.xml is not in the manifest"):
        integrity.export_file(v, "openvino")


def test_the_manifest_sha256_is_recorded_shown_and_checked(tmp_path):
    v = publish_dummy(artifacts.Store(tmp_path, "m"), b"0123456789")
    digest = v.manifest_sha256
    assert (tmp_path / "m" / "latest").read_text().split() == ["v1", f"sha256:{digest}"]
    assert integrity.verify(v, digest) == []
    ok = cli("detector-artifacts", "--dir", str(tmp_path), "verify", "m", "--sha256", digest)
    assert ok.returncode == 0 and digest in ok.stdout
    listed = cli("detector-artifacts", "--dir", str(tmp_path), "list")
    assert digest[:16] in listed.stdout
    # Change a file and rewrite the manifest to match it: every file agrees, but the manifest is not the published one.
    f = v.path / "weights" / "best.onnx"
    _writable(v)
    f.write_bytes(b"0123456780")
    doc = v.manifest()
    doc["files"]["weights/best.onnx"] = integrity.entry(f)
    (v.path / "manifest.json").write_text(json.dumps(doc))
    (problem,) = integrity.verify(v)
    assert problem.startswith("manifest.json: sha256") and "differs from the one in latest" in problem
    bad = cli("detector-artifacts", "--dir", str(tmp_path), "verify", "m/v1", "--sha256", digest)
    assert bad.returncode == 1 and "differs from the one in --sha256" in bad.stderr


def test_list_reports_a_damaged_manifest_and_lists_the_rest(tmp_path):
    good = publish_dummy(artifacts.Store(tmp_path, "good"))
    broken = publish_dummy(artifacts.Store(tmp_path, "broken"))
    _writable(broken)
    (broken.path / "manifest.json").write_text("{not json")
    res = cli("detector-artifacts", "--dir", str(tmp_path), "list")
    assert res.returncode == 1 and "broken/v1" in res.stderr and "unreadable" in res.stderr
    assert "good" in res.stdout and good.manifest_sha256[:16] in res.stdout


def test_verify_takes_a_copied_version_folder_and_names_must_match_in_full(tmp_path):
    v = publish_dummy(artifacts.Store(tmp_path / "a", "m"))
    copy = tmp_path / "somewhere" / "copy-of-a-version"
    shutil.copytree(v.path, copy)
    res = cli("detector-artifacts", "--dir", str(tmp_path / "a"), "verify", str(copy))
    assert res.returncode == 0 and "m/v1: OK" in res.stdout
    for bad in ("m\n", "m/x", "../m"):
        with pytest.raises(DetectorError, match="must be one folder name"):
            artifacts.Store(tmp_path, bad)


_LINE_UP = """
import sys, time
from pathlib import Path
from detector.artifacts import store
art, gate = sys.argv[1], Path(sys.argv[2])
s = store.Store(art, "m")
with s.staging() as (stage, _):
    (stage / "weights").mkdir()
    (stage / "weights" / "best.onnx").write_bytes(sys.argv[3].encode())
    (gate / f"ready-{sys.argv[3]}").touch()  # every process waits here, then all race for the lock at once
    while not (gate / "go").exists():
        time.sleep(0.01)
    exports = {"onnx": {"path": "weights/best.onnx", "runtime": "ONNX Runtime"}}
    print(s.commit(stage, {"format": "onnx", "exports": exports}, lambda d: "card").path)
"""


def test_four_concurrent_publishes_get_four_distinct_versions(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _LINE_UP, str(tmp_path), str(gate), str(i)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    while len(list(gate.glob("ready-*"))) < 4:
        assert all(p.poll() is None for p in procs), "a publish died before the lock"
    (gate / "go").touch()
    paths = sorted(Path(p.communicate(timeout=60)[0].strip()).name for p in procs)
    assert paths == ["v1", "v2", "v3", "v4"]
    store = artifacts.Store(tmp_path, "m")
    assert {store.get(n).manifest()["version"] for n in range(1, 5)} == {1, 2, 3, 4}
    assert all(integrity.verify(store.get(n)) == [] for n in range(1, 5)) and store.get().number == 4
    assert sorted(p.name for p in store.root.iterdir()) == [".lock", "latest", "v1", "v2", "v3", "v4"]


_KILLED = """
import sys, time
from pathlib import Path
from detector.artifacts import store
art, gate = sys.argv[1], Path(sys.argv[2])
def hold(stage, path):  # sealed, manifest written, lock held: the worst moment to die
    (gate / "locking").write_text(str(path))
    (gate / "locking").rename(gate / "locked")  # whole when it appears: the test reads it at once
    time.sleep(600)
s = store.Store(art, "m")
with s.staging() as (stage, _):
    (stage / "weights").mkdir()
    (stage / "weights" / "best.onnx").write_bytes(b"x")
    s.commit(stage, {"format": "onnx", "exports": {"onnx": {"path": "weights/best.onnx", "runtime": "x"}}}, lambda d: "", hold)
"""


def test_sigkill_mid_publish_leaves_no_version_and_the_next_gets_the_next_number(tmp_path):
    art, gate = tmp_path / "a", tmp_path / "gate"
    publish_dummy(artifacts.Store(art, "m"))
    gate.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(art), str(gate)])
    try:
        while not (gate / "locked").exists():
            assert proc.poll() is None, "the publish died before the lock"
            time.sleep(0.05)
        staged = Path((gate / "locked").read_text())
        assert (staged / "manifest.json").is_file()  # complete but for the rename
    finally:  # killed here, or left sleeping for 10 minutes after a failed assertion
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    store = artifacts.Store(art, "m")
    assert store.numbers() == [1] and store.get().number == 1 and staged.name.startswith(".tmp-")
    listed = cli("detector-artifacts", "--dir", str(art), "list")
    assert "v1 (latest)" in listed.stdout and "v2" not in listed.stdout
    v = publish_dummy(store)  # the lock died with its holder
    assert v.number == 2 and integrity.verify(v) == [] and not staged.exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (needs root, as in CI); yields (its folder, a function that fills it to the last byte)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")

    def fill(*_) -> None:  # usable as an on_stage hook
        for name, chunk in (("filler", b"\0" * 4096), ("filler-small", b"\0")):
            with contextlib.suppress(OSError), open(disk / name, "ab", buffering=0) as f:
                while True:
                    f.write(chunk)

    yield disk, fill
    subprocess.run(["umount", "-l", str(disk)])


def test_a_full_disk_before_the_rename_leaves_the_old_state_and_a_retry_publishes_once(small_disk):
    disk, fill = small_disk
    store = artifacts.Store(disk / "a", "m")
    publish_dummy(store)
    with store.staging() as (stage, _):
        (stage / "weights").mkdir()
        (stage / "weights" / "best.onnx").write_bytes(b"new")
        fill()
        with pytest.raises(OSError):
            store.commit(stage, {"format": "onnx", "exports": EXPORTS}, lambda d: "a card " * 1000)
    assert store.numbers() == [1] and not [p for p in store.root.iterdir() if p.name.startswith(".tmp")]
    (disk / "filler").unlink()
    assert publish_dummy(store).number == 2 and store.numbers() == [1, 2]


def test_a_full_disk_after_the_rename_still_publishes_completely(small_disk, caplog):
    disk, fill = small_disk
    store = artifacts.Store(disk / "a", "m")
    first = publish_dummy(store)
    v = publish_dummy(store, b"second", on_stage=fill)  # the disk fills just before the rename
    assert v.number == 2 and integrity.verify(v) == [] and store.get().number == 2  # latest cannot lag
    assert "could not record it in" in caplog.text and v.manifest_sha256 in caplog.text
    assert (store.root / "latest").read_text().split()[0] == "v1" and first.number == 1
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == [".lock"]  # no temporary file
