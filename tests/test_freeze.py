"""Freeze presets resolve from the model YAML to exact layer sets."""

from __future__ import annotations

import pytest

from detector.errors import DetectorError
from detector.train import freeze


@pytest.mark.parametrize(
    ("arch", "backbone", "total"),
    [("yolo26n.yaml", 11, 24), ("yolo11n.yaml", 11, 24), ("yolo26s.yaml", 11, 24)],
)
def test_layout_from_yaml(arch, backbone, total):
    assert freeze.Layout.from_yaml(arch) == freeze.Layout(backbone, total)


@pytest.mark.parametrize("arch", ["yolo26n.yaml", "yolo11n.yaml"])
def test_presets(arch):
    lay = freeze.Layout.from_yaml(arch)
    assert freeze.resolve("none", lay) == []
    assert freeze.resolve(None, lay) == []
    # The YAML's backbone section is 0-10: C2PSA at 10 is frozen too (Ultralytics' freeze=10 leaves it).
    assert freeze.resolve("backbone", lay) == list(range(11))
    assert freeze.resolve("neck", lay) == list(range(lay.total - 1))
    assert lay.total - 1 not in freeze.resolve("neck", lay)
    assert freeze.resolve(10, lay) == list(range(10))
    assert freeze.resolve([3, 1, 1], lay) == [1, 3]


def test_index_beyond_depth():
    lay = freeze.Layout.from_yaml("yolo26n.yaml")
    with pytest.raises(DetectorError, match="has 24 layers"):
        freeze.resolve(30, lay)
    with pytest.raises(DetectorError, match=r"layer\(s\) \[23, 40\]"):
        freeze.resolve([0, 23, 40], lay)
    with pytest.raises(DetectorError, match="use none, backbone, neck"):
        freeze.resolve("head", lay)


def test_unknown_arch():
    with pytest.raises(DetectorError, match=r"Unknown model architecture 'yolo99z\.yaml'"):
        freeze.Layout.from_yaml("yolo99z.yaml")
