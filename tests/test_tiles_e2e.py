"""Tiles, for real: tile the sample, train one epoch on the tiles, export, sliced predict on a stitched frame."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cli
from helpers.tiles import stitch

from detector.artifacts import runtimes, slicing

pytestmark = pytest.mark.slow
EXACT = slicing.Slicing(416, 0.0, 4, False, merge_iou=1.0, edge_margin=0)  # tiles = the sources; no merging


def test_a_tiled_run_records_its_tiles_and_exports_a_batchable_version(tiled_version):
    tile = tiled_version.summary["tile"]
    assert (tile["size"], tile["reused"]) == (256, False)
    assert tile["counts"]["train"]["images"] == 16 and tile["counts"]["train"]["tiles"] > 16
    m = json.loads((tiled_version.version / "manifest.json").read_text())
    assert m["tile"]["size"] == 256 and m["tile"]["batch"] == "dynamic" and m["tile"]["imgsz"] == 64
    assert m["exports"]["onnx"]["args"]["dynamic"] is True
    assert m["tile"]["source_fingerprint"] == tiled_version.summary["data"]["fingerprint"]


def test_sliced_predict_on_a_stitched_frame_gives_frame_pixels(tiled_version, tmp_path):
    sources = sorted((tiled_version.data.parent / "images" / "val").iterdir())[:4]
    frame = stitch(sources, 2, tmp_path / "frame.png")  # 832 x 832, lossless
    res = cli(
        "detector-artifacts",
        "predict",
        str(tiled_version.version),
        str(frame),
        "--out",
        str(tmp_path / "p"),
        "--conf",
        "0.001",
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "p" / "boxes.json").read_text())
    assert doc["tile"]["size"] == 256 and doc["backend"] == "onnxruntime"  # the version's own settings
    xyxy = np.array([b["xyxy"] for b in doc["images"][0]["boxes"]]).reshape(-1, 4)
    assert len(xyxy) and (xyxy >= 0).all() and (xyxy <= 832).all() and xyxy[:, 2].max() > 416
    # exact: the frame's tiles are the four sources, so their boxes, shifted by the offsets, are the frame's
    model = runtimes.open_model(tiled_version.version / "weights" / "best.onnx", "onnx")
    whole = slicing.predict_frame(slicing.read(frame), model, EXACT, 0.001)
    parts = []
    for k, src in enumerate(sources):
        d = slicing.predict_frame(slicing.read(src), model, EXACT, 0.001)
        d[:, :4] += np.array([k % 2, k // 2, k % 2, k // 2], np.float32) * 416
        parts.append(d)
    parts = np.concatenate(parts)
    order = lambda d: d[np.lexsort(d[:, :5].T)]  # noqa: E731
    assert len(whole) == len(parts) and np.allclose(order(whole), order(parts), atol=1e-3)


def test_our_decode_matches_ultralytics_predict_on_one_tile(tiled_version):
    from ultralytics import YOLO

    onnx = tiled_version.version / "weights" / "best.onnx"
    src = sorted((tiled_version.data.parent / "images" / "val").iterdir())[0]  # 416 px: one tile of 416
    ours = slicing.predict_frame(slicing.read(src), runtimes.open_model(onnx, "onnx"), EXACT, 0.001)
    r = YOLO(str(onnx), task="detect").predict(str(src), imgsz=64, conf=0.001, verbose=False)[0]
    theirs = np.concatenate([r.boxes.xyxy.numpy(), r.boxes.conf.numpy()[:, None]], 1)[:10]
    assert len(theirs)
    for box in theirs:  # each of Ultralytics' best boxes is one of ours, same place, same score
        near = np.abs(ours[:, :5] - box).max(1)
        assert near.min() < 1e-2, box


def test_detector_eval_slices_a_tiled_version_as_it_was_trained(tiled_version, tmp_path):
    from pathlib import Path

    from detector.review import app, resolve
    from detector.review.sliced import sliced_stats

    m = resolve.model(str(tiled_version.version), tmp_path, tiled_version.root / "artifacts")
    m.tile = app.slicing_for(m, {})  # the version's own slicing
    stats = sliced_stats(m, tiled_version.data, "val", 0.001)
    assert stats.n_images == 4 and len(stats.target_cls) > 0
    assert stats.target_box.max() > 1  # pixels of the frame, not normalised
    runs = f"paths.runs_dir={tmp_path / 'runs'}"
    res = cli("detector-eval", str(tiled_version.version), f"data={tiled_version.data}", "split=val", runs)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    (ev,) = doc["models"]
    assert ev["model"]["tile"]["size"] == 256 and ev["images"] == 4  # the version's own slicing, by default
    assert 0 <= ev["overall"]["mAP50-95"]["value"] <= ev["overall"]["mAP50"]["value"] <= 1
    whole = cli(
        "detector-eval", str(tiled_version.version), f"data={tiled_version.data}", "tile.size=0", runs
    )
    assert whole.returncode == 0, whole.stderr[-2000:]
    doc = json.loads((Path(whole.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    assert doc["models"][0]["model"]["tile"] is None  # tile.size=0: whole frames through Ultralytics
    bad = cli(
        "detector-eval", str(tiled_version.version), f"data={tiled_version.data}", "tile.size=100", runs
    )
    assert bad.returncode == 2 and "multiple of 32" in bad.stderr
