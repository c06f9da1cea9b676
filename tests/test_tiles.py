"""Tiles, fast: geometry, clipping, the coordinates round trip, seams, splits, bad input (no model trained)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import SAMPLE, cli, compose, sample_subset
from helpers.tiles import frame, oracle, write_images, yolo_line

from detector.artifacts import boxes, slicing
from detector.data import grid
from detector.data import tile as tiles
from detector.errors import DetectorError
from detector.train.plan import check_inputs

SETTINGS = {"size": 256, "overlap": 0.2, "min_visibility": 0.1, "empty_fraction": 0.1, "seed": 0}


def slicer(size: int, overlap: float = 0.2, batch: int = 4, **kw) -> slicing.Slicing:
    return slicing.Slicing(
        size, overlap, batch, **{"full_frame": False, "merge_iou": 0.5, "edge_margin": 4, **kw}
    )


def test_grid_is_sahis_with_one_padded_tile_for_small_frames():
    g = grid.tile_grid(1664, 1664, 640, 0.2)  # stride 512; the last tile flush with the border
    assert sorted({int(x) for x in g[:, 0]}) == [0, 512, 1024] and len(g) == 9
    assert (g[:, 2] - g[:, 0] == 640).all() and g[:, 2].max() == 1664
    assert grid.tile_grid(300, 500, 640, 0.2).tolist() == [[0, 0, 640, 640]]  # padded, never upscaled
    assert grid.tile_grid(700, 300, 640, 0.0).tolist() == [[0, 0, 640, 640], [0, 60, 640, 700]]


def test_clipping_keeps_boxes_by_visible_share():
    tile = (100, 100, 356, 356)
    px = np.array(
        [
            [0, 150, 150, 200, 200],  # wholly inside
            [0, 50, 150, 150, 250],  # half inside (x 100..150 of 50..150)
            [0, 92, 150, 108, 250],  # half inside too, but cut to 8 px: kept (>= 2 px)
            [0, 99, 150, 101, 250],  # 1 px sliver inside: dropped (thinner than 2 px)
            [0, 0, 150, 110, 250],  # 9% inside: dropped at 0.1, kept at 0.05
        ],
        float,
    )
    labels, vis = grid.clip_to_tile(px, tile, 0.1)
    assert vis.round(3).tolist() == [1.0, 0.5, 0.5]
    x1 = (labels[:, 1] - labels[:, 3] / 2) * 256 + 100
    assert np.allclose(x1, [150, 100, 100]) and np.allclose(labels[1, 3] * 256, 50)
    assert len(grid.clip_to_tile(px, tile, 0.05)[0]) == 4


def test_tiles_round_trip_to_frame_pixels_and_small_images_are_padded(tmp_path):
    rects = [(40, 50, 90, 80), (500, 300, 560, 390)]  # the second lies in several overlapping tiles
    big = frame(600, 700, rects)
    small = frame(200, 150, [(10, 20, 60, 90)])
    data = write_images(
        tmp_path / "src",
        {
            "train": [("big.png", big, [yolo_line(r, 600, 700) for r in rects])],
            "val": [("small.png", small, [yolo_line((10, 20, 60, 90), 200, 150)])],
        },
    )
    out, report = tiles.tile_dataset(data, tmp_path / "tiles", {**SETTINGS, "empty_fraction": 0.0})
    seen = set()
    for label in (out.parent / "labels" / "train").glob("*.txt"):
        x, y = (int(v[1:]) for v in label.stem.split("__")[1].split("_"))  # the name carries the offset
        for row in label.read_text().splitlines():
            _, cx, cy, w, h = map(float, row.split())
            box = (
                (cx - w / 2) * 256 + x,
                (cy - h / 2) * 256 + y,
                (cx + w / 2) * 256 + x,
                (cy + h / 2) * 256 + y,
            )
            whole = (w * 256, h * 256) == pytest.approx((60, 90), abs=1e-3)  # not cut by this tile
            if whole and abs(box[0] - 500) < 1:
                seen.add(tuple(round(v, 2) for v in box))
    assert seen == {tuple(float(v) for v in rects[1])}  # every tile that holds it whole maps it back exactly
    padded = cv2.imread(str(next((out.parent / "images" / "val").iterdir())))
    assert padded.shape == (256, 256, 3) and (padded[200:, :] == grid.PAD_VALUE).all()
    assert report.counts["val"].tiles == 1 and report.counts["train"].empty_kept == 0


def test_tiles_of_one_image_stay_in_its_split_and_settings_are_recorded(tmp_path):
    data = sample_subset(tmp_path / "src", {"train": 4, "val": 2})
    out, report = tiles.tile_dataset(data, tmp_path / "tiles", SETTINGS)
    for split in ("train", "val"):
        sources = {p.stem for p in (data.parent / "images" / split).iterdir()}
        made = {p.name.split("__")[0] for p in (out.parent / "images" / split).iterdir()}
        assert made == sources  # 416 px images in 256 px tiles: 4 tiles each, all in the image's split
    doc = json.loads((out.parent / "tiles.json").read_text())
    assert doc["settings"] == SETTINGS and doc["source_fingerprint"] == report.source_fingerprint
    assert report.source_fingerprint in out.read_text()  # data.yaml's comments say it too


def test_a_folder_mixing_sizes_works_and_a_broken_image_is_skipped(tmp_path):
    data = write_images(
        tmp_path / "src",
        {
            "train": [
                ("a.png", frame(300, 500, [(10, 10, 50, 50)]), [yolo_line((10, 10, 50, 50), 300, 500)]),
                (
                    "b.jpg",
                    frame(900, 700, [(600, 800, 650, 850)]),
                    [yolo_line((600, 800, 650, 850), 900, 700)],
                ),
                ("broken.jpg", b"\xff\xd8 not a jpeg", ["0 0.5 0.5 0.1 0.1"]),
            ],
            "val": [("c.png", frame(256, 256, []), [])],
        },
    )
    res = cli("detector-data", "tile", str(data), "--out", str(tmp_path / "t"), "--size", "256")
    assert res.returncode == 0, res.stderr
    assert "broken.jpg" in res.stdout and "1 undecodable image(s) skipped" in res.stderr
    doc = json.loads((tmp_path / "t" / "tiles.json").read_text())
    assert doc["counts"]["train"]["images"] == 2 and [Path(s["image"]).name for s in doc["skipped"]] == [
        "broken.jpg"
    ]
    assert (
        len(list((tmp_path / "t" / "images" / "train").glob("b__*.jpg"))) >= 1
    )  # JPEG sources give JPEG tiles


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "100"], "not a positive multiple of 32"),
        (["--overlap", "0.9"], "must be a fraction of the tile in [0, 0.9)"),
        (["--overlap", "-0.1"], "[0, 0.9)"),
        (["--min-visibility", "0"], "must be in (0, 1]"),
        (["--min-visibility", "1.5"], "must be in (0, 1]"),
        (["--empty-fraction", "2"], "in [0, 1]"),
    ],
)
def test_bad_tile_settings_exit_2_with_the_fix(args, message, tmp_path):
    res = cli("detector-data", "tile", str(SAMPLE), "--out", str(tmp_path / "t"), *args)
    assert res.returncode == 2 and message in res.stderr and not (tmp_path / "t").exists()


def test_bad_tile_config_fails_before_training(tmp_path, no_training):
    res = cli("detector-train", "tile=default", "data.tile.size=100", f"paths.runs_dir={tmp_path}")
    assert res.returncode == 2 and "multiple of 32" in res.stderr
    with pytest.raises(DetectorError, match="integer >= 1"):
        check_inputs(compose("tile=default", "data.tile.predict.batch=0"))


def test_tile_config_trains_at_native_scale_unless_told():
    cfg = compose("tile=default", "data.tile.size=416")
    assert cfg.train.imgsz == 416 and tiles.defaults() == {**cfg.data.tile, "size": 640}  # the one copy
    assert compose("tile=default", "debug=smoke").train.imgsz == 64  # a later group still wins


def test_cache_is_keyed_by_content_and_settings(tmp_path):
    data = sample_subset(tmp_path / "src", {"train": 2, "val": 1})
    spec = tiles.specs.load(data)
    fp = tiles.fingerprint.fingerprint(spec)
    first = tiles.cached(spec, SETTINGS, tmp_path / "cache", fp)
    again = tiles.cached(spec, SETTINGS, tmp_path / "cache", fp)
    other = tiles.cached(spec, {**SETTINGS, "overlap": 0.0}, tmp_path / "cache", fp)
    assert (first["reused"], again["reused"], other["reused"]) == (False, True, False)
    assert first["cache_key"] == again["cache_key"] != other["cache_key"]


def test_sliced_boxes_come_back_in_frame_pixels_once_across_seams():
    # tiles of 512 at overlap 0.2 on a 900 px wide frame: x 0..512 and 388..900 (overlap 388..512)
    rects = [
        (400, 100, 500, 160),  # whole in both tiles: one box
        (490, 300, 600, 340),  # a sliver in the first tile, whole in the second: one box, the whole one
        (100, 400, 300, 480),  # a big panel with a small one inside it (nested): both stay
    ]
    image = frame(500, 900, rects)
    image[420:450, 150:180] = 0  # a dark ring round the small panel, so that it is a region of its own
    image[423:447, 153:177] = 255
    dets = slicing.predict_frame(image, oracle(512), slicer(512), conf=0.1)
    got = sorted(tuple(int(v) for v in d[:4]) for d in dets)
    assert got == sorted([rects[0], rects[1], rects[2], (153, 423, 177, 447)])
    tile_dets = np.array([[490, 300, 512, 340, 0.5, 0], [490, 300, 600, 340, 0.6, 0]], np.float32)
    assert len(boxes.nms(tile_dets, 0.5)) == 2  # plain IoU keeps the fragment: hybrid is what merges it


def test_static_batch_exports_get_padded_batches_and_grey_frames_work():
    rects = [(30, 40, 90, 70), (600, 200, 700, 260)]
    dynamic = slicing.predict_frame(frame(400, 800, rects), oracle(256), slicer(256, batch=4), 0.1)
    static = slicing.predict_frame(
        frame(400, 800, rects, grey=True), oracle(256, batch=3), slicer(256, batch=4), 0.1
    )
    assert sorted(dynamic[:, :4].tolist()) == sorted(static[:, :4].tolist()) == sorted(map(list, rects))


def test_a_10000_px_grey_frame_streams_in_batches():
    rects = [(120, 130, 420, 380), (9600, 9700, 9990, 9995)]  # the second in the flush last tile
    image = frame(10_000, 10_000, rects, grey=True)  # 100 MB; 25 tiles of 2560 px, resized to 256
    dets = slicing.predict_frame(image, oracle(256), slicer(2560, batch=2), conf=0.1)
    assert len(dets) == 2
    assert np.abs(np.sort(dets[:, :4], 0) - np.sort(np.array(rects, np.float32), 0)).max() <= 10  # 1 input px


def test_predict_settings_come_from_the_version_and_flags():
    tiled = {"tile": {"size": 416, "overlap": 0.1, "predict": {**tiles.defaults()["predict"], "batch": 8}}}
    assert slicing.resolve({}, {}) is None and slicing.resolve(tiled, {"size": 0}) is None
    assert slicing.resolve(tiled, {}).as_dict() == {**tiled["tile"]["predict"], "size": 416, "overlap": 0.1}
    assert slicing.resolve(tiled, {"batch": 2, "full_frame": True}).batch == 2
    assert slicing.resolve({}, {"size": 640}).overlap == tiles.defaults()["overlap"]
    with pytest.raises(DetectorError, match="also pass --tile SIZE"):
        slicing.resolve({}, {"overlap": 0.3})
    with pytest.raises(DetectorError, match="multiple of 32"):
        slicing.resolve(tiled, {"size": 500})
