"""detector-eval on real models: agreement with Ultralytics' val, a paired comparison through two
runtimes in a real process, report.html in a real browser, stored thresholds in predict, test metrics."""

from __future__ import annotations

import itertools
import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import ROOT, cli, compose, run_cli
from helpers.browser import render

from detector.eval.bootstrap import bootstrap
from detector.eval.run import evaluate_weights, pass_stats
from detector.eval.stats import from_predictions
from detector.tracking.tracker import held_out_keys
from detector.train import rundir
from detector.train.run import score_test_split

pytestmark = pytest.mark.slow
BOOT = {"resamples": 1000, "seed": 0, "level": 0.95}


def test_point_metrics_agree_with_ultralytics_val(trained, tmp_path):
    from ultralytics import YOLO

    run = rundir.inspect_run(trained)
    ours = evaluate_weights(run.best, run.data_yaml, "val", run.imgsz, BOOT, work=tmp_path)
    ref = YOLO(str(run.best)).val(
        data=str(run.data_yaml), split="val", imgsz=run.imgsz, plots=False, project=str(tmp_path), name="v"
    )
    ov = ours["overall"]
    assert ov["mAP50-95"]["value"] > 0.001  # a real score, not the trivial 0 = 0
    assert (
        abs(ov["mAP50-95"]["value"] - ref.box.map) <= 0.002
        and abs(ov["mAP50"]["value"] - ref.box.map50) <= 0.002
    )
    assert ov["mAP50-95"]["low"] <= ov["mAP50-95"]["value"] <= ov["mAP50-95"]["high"]
    assert ours["images"] == 16 and ours["per_class"]["solar-pv-panel"]["boxes"] == ours["boxes"] > 0
    # The same figures from plain arrays in image pixels (the API sliced inference uses).
    st = pass_stats(run.best, run.data_yaml, "val", run.imgsz, work=tmp_path)
    rows = [np.flatnonzero(st.pred_img == i) for i in range(st.n_images)]
    gts = [np.flatnonzero(st.target_img == i) for i in range(st.n_images)]
    again = from_predictions(
        st.im_files,
        [(st.pred_box[r], st.conf[r], st.pred_cls[r]) for r in rows],
        [(st.target_box[g], st.target_cls[g]) for g in gts],
        st.names,
    )
    point = lambda s: bootstrap(s, **{**BOOT, "resamples": 1}).point.map[0]  # noqa: E731
    assert abs(point(again) - ref.box.map) <= 0.002


def test_paired_eval_through_two_runtimes_in_a_real_process_and_the_report_renders(trained, smoke, tmp_path):
    res = run_cli(  # the one real detector-eval process: a run (PyTorch) against a version (ONNX Runtime)
        "detector-eval", str(trained), str(smoke.version), f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.artifacts_dir={smoke.artifacts}",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    out = Path(res.last_line)
    doc = json.loads((out / "metrics.json").read_text())
    a, b = doc["models"]
    assert (doc["split"], doc["split_chose_weights"]) == ("val", True) and "chose the weights" in res.stderr
    assert (a["model"]["runtime"], b["model"]["runtime"]) == ("PyTorch", "ONNX Runtime")
    assert b["thresholds"]["source"] == f"stored in {b['model']['label']}" and a["thresholds"]["rule"] == "f1"
    cmp = doc["comparison"]
    assert cmp["verdict"] in ("A is better", "B is better", "no detectable difference at 95%")
    d = cmp["overall"]["mAP50-95"]
    assert d["value"] == pytest.approx(b["overall"]["mAP50-95"]["value"] - a["overall"]["mAP50-95"]["value"])
    assert "paired comparison on the same 16 images" in res.stdout and "mAP50-95 (all)" in res.stdout

    page = out / "report.html"
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    shot, dom = render(page, tmp_path)
    from PIL import Image

    with Image.open(shot) as im:
        colours = len(set(im.convert("RGB").resize((200, 400)).getdata()))
    assert colours > 100  # drawn tables, plots and photos, not a blank page
    assert dom.count('class="worst"') == 2 * 12  # eval.gallery worst images per model
    assert dom.count("<table>") == 5 and "confusion matrix" in dom


def test_predict_applies_the_stored_thresholds(smoke, tmp_path):
    m = json.loads((smoke.version / "manifest.json").read_text())
    assert m["thresholds"]["rule"] == "f1" and m["thresholds"]["runtime"] == "ONNX Runtime"
    assert "## Operating thresholds" in (smoke.version / "MODEL_CARD.md").read_text()
    version = tmp_path / "a" / "smoke" / "v1"  # a writable copy, whose thresholds we set
    shutil.copytree(smoke.version, version)
    for p in [version, *version.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    images = str(ROOT / "datasets" / "sample" / "images" / "val")

    def predict(*extra: str) -> dict:
        res = cli("detector-artifacts", "predict", str(version), images, "--out", str(tmp_path / "p"), *extra)
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads((tmp_path / "p" / "boxes.json").read_text())

    confs = sorted(b["confidence"] for i in predict("--conf", "0.001")["images"] for b in i["boxes"])
    assert len(confs) > 10
    # halfway between two distinct confidences near the median (boxes.json rounds them to 4 decimals)
    gaps = [(b - a, (a + b) / 2) for a, b in itertools.pairwise(confs) if b - a >= 2e-4]
    thr = min(gaps, key=lambda g: abs(g[1] - confs[len(confs) // 2]))[1]
    m["thresholds"]["per_class"]["solar-pv-panel"]["threshold"] = thr
    (version / "manifest.json").write_text(json.dumps(m))
    doc = predict()
    assert doc["thresholds"] == "manifest (f1 on val)" and doc["conf"] == {"solar-pv-panel": thr}
    kept = [b["confidence"] for i in doc["images"] for b in i["boxes"]]
    assert len(kept) == sum(c >= thr for c in confs) < len(confs) and min(kept) >= thr


def test_a_run_with_a_test_split_records_test_metrics_apart_from_val(trained, tmp_path):
    staged = yaml.safe_load((trained / "data" / "data.yaml").read_text())
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({**staged, "test": staged["val"]}))
    cfg = compose("debug=smoke")
    test = score_test_split(cfg, trained / "weights" / "best.pt", data, trained / "args.yaml")
    assert test["split"] == "test" and test["images"] == 16 and test["overall"]["mAP50-95"]["value"] > 0
    keys = held_out_keys({"test": test})
    assert keys["test/mAP50-95"] == test["overall"]["mAP50-95"]["value"] and "test/mAP50-95_low" in keys
    assert (
        score_test_split(
            compose("debug=smoke", "eval.test_after_train=false"),
            trained / "weights" / "best.pt",
            data,
            trained / "args.yaml",
        )
        is None
    )
    assert not list(trained.glob(".eval-*"))  # the pass's scratch folder is gone
