"""data.yaml parsing, label checks and read-only staging."""

from __future__ import annotations

import os

import pytest
import yaml
from helpers import SAMPLE, tree_hash

from detector.data import check, spec, stage
from detector.errors import DetectorError


def test_sample_parses():
    s = spec.load(SAMPLE / "data.yaml")
    assert s.names == {0: "solar-pv-panel"}
    assert (len(s.splits["train"]), len(s.splits["val"])) == (64, 16)
    report = check.check_dataset(s)
    assert not report.errors
    assert report.counts["train"]["boxes"] == 176 and report.counts["val"]["boxes"] == 52


def test_missing_yaml(tmp_path):
    with pytest.raises(DetectorError, match=r"data\.yaml not found"):
        spec.load(tmp_path / "data.yaml")


def test_split_without_images(sample_copy):
    for f in (sample_copy.parent / "images" / "val").iterdir():
        f.unlink()
    with pytest.raises(DetectorError, match=r"the val split .* holds no images"):
        spec.load(sample_copy)


def test_not_yaml(tmp_path):
    p = tmp_path / "data.yaml"
    p.write_text("train: [unclosed\n")
    with pytest.raises(DetectorError, match="not valid YAML"):
        spec.load(p)


def test_class_id_beyond_names_names_file_and_line(sample_copy):
    lab = sorted((sample_copy.parent / "labels" / "train").iterdir())[0]
    lines = lab.read_text().splitlines()
    lines.insert(1, "3 0.5 0.5 0.1 0.1")
    lab.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DetectorError, match=rf"class-out-of-range: {lab}:2: class id 3 but data.yaml names only 1"
    ):
        check.require_clean(spec.load(sample_copy))


def test_bad_line_and_allow(sample_copy):
    lab = sorted((sample_copy.parent / "labels" / "val").iterdir())[0]
    lab.write_text(lab.read_text() + "0 0.5 0.5 0.0 0.1\n")
    s = spec.load(sample_copy)
    with pytest.raises(DetectorError, match="zero-area"):
        check.require_clean(s)
    report = check.require_clean(s, allow=["zero-area"])
    assert [p.code for p in report.problems] == ["zero-area"] and report.problems[0].severity == "warning"


def test_stage_is_symlinks_and_mirrors_labels(sample_copy, tmp_path):
    before = tree_hash(sample_copy.parent)
    staged = stage.stage(spec.load(sample_copy), tmp_path / "run" / "data")
    doc = yaml.safe_load(staged.read_text())
    assert doc["names"] == {0: "solar-pv-panel"} and doc["train"] == "images/train"
    imgs = list((staged.parent / "images" / "train").iterdir())
    assert len(imgs) == 64 and all(os.path.islink(p) for p in imgs)
    labels = list((staged.parent / "labels" / "train").iterdir())
    assert len(labels) == 64 and all(
        p.resolve().parent == sample_copy.parent / "labels" / "train" for p in labels
    )
    assert tree_hash(sample_copy.parent) == before
