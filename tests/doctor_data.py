"""Small writable copies of the real shared datasets, for the dataset-doctor tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import SHARED

SOLAR = SHARED / "solar_pv_gray416" / "data.yaml"
PCB = SHARED / "deeppcb" / "data.yaml"


def require(data_yaml: Path) -> Path:
    """``data_yaml``, or skip the calling test when that shared dataset is absent (no ``../shared``)."""
    if not data_yaml.is_file():
        pytest.skip(f"shared dataset absent: {data_yaml}")
    return data_yaml


def mini(src_yaml: Path, dst: Path, n: dict[str, int], step: int = 7) -> Path:
    """Copy every ``step``-th image (and its label) of each split, up to ``n[split]``; returns data.yaml."""
    require(src_yaml)
    for split, count in n.items():
        images = sorted((src_yaml.parent / "images" / split).iterdir())[::step][:count]
        for sub in ("images", "labels"):
            (dst / sub / split).mkdir(parents=True, exist_ok=True)
        for im in images:
            shutil.copy(im, dst / "images" / split / im.name)
            lab = src_yaml.parent / "labels" / split / f"{im.stem}.txt"
            shutil.copy(lab, dst / "labels" / split / lab.name)
    names = yaml.safe_load(src_yaml.read_text())["names"]
    doc = {**{s: f"images/{s}" for s in n}, "names": names}
    (dst / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst / "data.yaml"


def boxes(label: Path) -> list[list[float]]:
    """The rows of a YOLO label file as floats, sorted."""
    return sorted([float(v) for v in line.split()] for line in label.read_text().splitlines() if line.strip())
