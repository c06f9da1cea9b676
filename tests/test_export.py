"""Real exports of tiny trained models: publish, verify, predict, tamper, concurrency, SIGKILL, refusal."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from helpers import ROOT, cli, compose, run_cli, run_script

from detector.artifacts import export, integrity, target
from detector.artifacts import store as artifacts
from detector.errors import DetectorError

pytestmark = pytest.mark.slow
FAST = "export.publish.latency_runs=3"  # latency is recorded, not asserted: 3 timed calls are enough here


def onnx(**publish) -> target.Target:
    """The ``export=onnx`` option as composed, one latency run, ``publish`` keys changed."""
    t = target.target(compose("export=onnx", "export.publish.latency_runs=1", config="export").export)
    return dataclasses.replace(t, **publish)


def artifacts_cli(*args: str):
    return cli("detector-artifacts", *args)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_then_export_in_one_command_publishes_a_complete_version(smoke):
    assert smoke.version == smoke.artifacts.resolve() / "smoke_sample_yolo11n" / "v1"
    assert (smoke.run / "summary.json").is_file()  # the run's folder is still the last line printed
    m = json.loads((smoke.version / "manifest.json").read_text())
    summary = json.loads((smoke.run / "summary.json").read_text())
    assert (m["name"], m["version"], m["format"]) == ("smoke_sample_yolo11n", 1, "onnx")
    assert set(m["files"]) == {"weights/best.pt", "weights/best.onnx", "MODEL_CARD.md"}
    for rel, entry in m["files"].items():
        f = smoke.version / rel
        assert (entry["sha256"], entry["size"]) == (_sha(f), f.stat().st_size)
    assert m["files"]["weights/best.pt"]["sha256"] == _sha(smoke.run / "weights" / "best.pt")
    assert m["model"] == {"arch": "yolo11n.yaml", "names": {"0": "solar-pv-panel"}, "imgsz": 64}
    assert m["exports"]["onnx"]["runtime"] == "ONNX Runtime" and m["exports"]["onnx"]["args"]["imgsz"] == 64
    for fmt in ("pytorch", "onnx"):
        assert 0 <= m["metrics"][fmt]["mAP50-95"] <= m["metrics"][fmt]["mAP50"] <= 1
        assert m["metrics"][fmt]["latency_ms"] > 0
    assert m["metrics"]["onnx"]["passed"] and m["metrics"]["onnx"]["tolerance_points"] == 0.5
    assert m["pretrained_source"] == summary["pretrained_source"]
    assert m["data"]["yaml"] == summary["data"]["yaml"] and m["data"]["content"]["names"] == {
        "0": "solar-pv-panel"
    }
    assert m["data"]["fingerprint"]["sha256"] == summary["data"]["fingerprint"]  # the data the model saw
    assert m["config"]["train"] == summary["config"] and m["config"]["export"]["format"] == "onnx"
    assert {"python", "torch", "ultralytics", "onnxruntime", "onnx"} <= set(m["versions"])
    assert m["git"] is None or len(m["git"]["commit"]) == 40
    assert datetime.fromisoformat(m["created"]).tzinfo is not None
    card = (smoke.version / "MODEL_CARD.md").read_text()
    assert "## Metrics per format" in card and "| onnx | ONNX Runtime |" in card and "AGPL-3.0" in card
    res = run_cli("detector-artifacts", "--dir", str(smoke.artifacts), "verify", "smoke_sample_yolo11n")
    assert res.returncode == 0 and "smoke_sample_yolo11n/v1: OK, 3 files" in res.stdout


def test_torchscript_export_and_predict_with_each_runtime(smoke, tmp_path):
    res = cli(  # in-process: bench_export's test below publishes through a real detector-export process
        "detector-export",
        f"run={smoke.run}",
        "export=torchscript",
        FAST,
        f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.artifacts_dir={tmp_path / 'a'}",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    version = Path(res.last_line)
    m = json.loads((version / "manifest.json").read_text())
    assert m["format"] == "torchscript" and m["exports"]["torchscript"]["path"] == "weights/best.torchscript"
    assert integrity.verify(artifacts.resolve(str(version), tmp_path / "a")) == []

    images = ROOT / "datasets" / "sample" / "images" / "val"
    for ref, root, backend in (
        (str(version), tmp_path / "a", "torchscript"),
        ("smoke_sample_yolo11n", smoke.artifacts, "onnx"),
    ):
        out = tmp_path / backend
        res = artifacts_cli(
            "--dir", str(root), "predict", ref, str(images), "--out", str(out), "--conf", "0.001"
        )
        assert res.returncode == 0, res.stderr[-3000:]
        doc = json.loads((out / "boxes.json").read_text())
        assert doc["backend"] == backend  # Ultralytics ran the exported file, not the PyTorch weights
        assert len(doc["images"]) == 16 and sum(len(i["boxes"]) for i in doc["images"]) > 0
        box = next(b for i in doc["images"] for b in i["boxes"])
        assert box["name"] == "solar-pv-panel" and len(box["xyxy"]) == 4
        assert all((out / i["annotated"]).is_file() for i in doc["images"])


def test_one_changed_byte_fails_verify_naming_the_file(smoke, tmp_path):
    root = tmp_path / "a"
    shutil.copytree(smoke.artifacts, root)
    f = root / "smoke_sample_yolo11n" / "v1" / "weights" / "best.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.chmod(0o644)
    f.write_bytes(bytes(data))
    res = artifacts_cli("--dir", str(root), "verify", "smoke_sample_yolo11n/v1")
    assert res.returncode == 1
    assert "weights/best.onnx: sha256 differs from the manifest" in res.stderr and "best.pt" not in res.stderr
    res = artifacts_cli(
        "--dir",
        str(root),
        "predict",
        "smoke_sample_yolo11n",
        str(ROOT / "datasets" / "sample" / "images" / "val"),
    )
    assert res.returncode == 2 and "weights/best.onnx differs from the manifest; refusing" in res.stderr


def test_predict_reports_a_bad_image_processes_the_rest_and_never_overwrites_an_output(smoke, tmp_path):
    sample = sorted((ROOT / "datasets" / "sample" / "images" / "val").iterdir())
    for folder, name, src in (
        ("d1", "a.jpg", sample[0]),
        ("d2", "a.jpg", sample[1]),
        ("d3", "a_2.jpg", sample[2]),
    ):
        (tmp_path / folder).mkdir()
        shutil.copy(src, tmp_path / folder / name)
    (tmp_path / "d3" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    args = ["--dir", str(smoke.artifacts), "predict", "smoke_sample_yolo11n", "--out", str(out)]
    res = artifacts_cli(*args, *(str(tmp_path / d) for d in ("d1", "d2", "d3")))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "skipped" in res.stderr and "broken.jpg" in res.stderr
    doc = json.loads((out / "boxes.json").read_text())
    assert [s["image"] for s in doc["skipped"]] == [str(tmp_path / "d3" / "broken.jpg")]
    names = [i["annotated"] for i in doc["images"]]
    assert len(names) == 3 and len(set(names)) == 3 and all((out / n).is_file() for n in names)
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "boxes.json"])


def _scramble_onnx_weights(stage: str, path: Path) -> None:
    """A deliberately broken export: shuffle every weight tensor of the exported ONNX file in place."""
    if stage != "exported":
        return
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model, rng = onnx.load(path), np.random.default_rng(0)
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 16:
            init.CopyFrom(numpy_helper.from_array(rng.permutation(a.ravel()).reshape(a.shape), init.name))
    onnx.save(model, path)


def test_accuracy_check_refuses_a_broken_export(trained, tmp_path):
    art = tmp_path / "a"
    strict = onnx(tolerance=0.2)
    good = export.publish(trained, strict, art)  # intact: FP32 ONNX matches PyTorch, so even 0.2 points pass
    metrics = good.manifest()["metrics"]
    assert metrics["pytorch"]["mAP50-95"] * 100 > 0.5, "the model must detect something for the check to bite"
    assert abs(metrics["onnx"]["drop_points"]) <= 0.2

    with pytest.raises(
        DetectorError, match=r"Refused to publish the onnx export: .* beyond the tolerance of 0\.2"
    ):
        export.publish(trained, strict, art, on_stage=_scramble_onnx_weights)
    store = artifacts.Store(art, good.name)
    assert store.numbers() == [1] and store.get().number == 1
    assert sorted(p.name for p in store.root.iterdir()) == [".lock", "latest", "v1"]  # no staging left


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason='needs pip install -e ".[openvino]"')
def test_openvino_export_is_checked_through_openvino(smoke, tmp_path):
    t = target.target(compose("export=openvino", "export.publish.latency_runs=1", config="export").export)
    v = export.publish(smoke.run, t, tmp_path)
    m = v.manifest()
    assert m["exports"]["openvino"]["path"] == "weights/best_openvino_model"
    assert {"weights/best_openvino_model/best.xml", "weights/best_openvino_model/best.bin"} <= set(m["files"])
    assert m["exports"]["openvino"]["runtime"] == "OpenVINO" and "openvino" in m["versions"]
    assert integrity.verify(v) == []


def test_bench_export_runs_and_compares_ours_with_plain_ultralytics(smoke, tmp_path):
    out = tmp_path / "export.json"
    tiny = ["--run", str(smoke.run), "--imgsz", "64", "--repeats", "1", "--formats", "onnx"]  # one pass
    run_script("bench_export.py", *tiny, "--out", str(out), "--work", str(tmp_path))
    rows = json.loads(out.read_text())["rows"]
    assert [r["runtime"] for r in rows] == ["PyTorch", "ONNX Runtime"]
    assert (
        rows[1]["published"]
        and rows[1]["latency_ms"] > 0
        and rows[1]["plain_ms"] > 0
        and rows[1]["ours_over_plain"] > 0
    )
    assert "| ONNX Runtime |" in out.with_suffix(".md").read_text()
