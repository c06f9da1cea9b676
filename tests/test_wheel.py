"""A wheel works from any folder: built from the source, installed non-editable, run in an empty folder.

The wheel carries the configs, the sample dataset and the bundled COCO checkpoint as package data;
outputs land under the working directory. The session's ``smoke`` fixture (tests/conftest.py) builds
and installs it and runs its detector-train there, the offline quickstart; this test checks what
that user session left. The fresh virtual environment reuses the installed dependencies
(``--system-site-packages``); detector itself comes from the wheel.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_the_wheel_trains_and_exports_in_an_empty_folder(smoke):
    assert {
        "detector/_configs/train.yaml",
        "detector/_datasets/sample/data.yaml",
        "detector/bundled/yolo11n-seg.pt",
    } <= set(smoke.wheel_files)
    assert smoke.detector_file.is_relative_to(smoke.venv), "detector did not come from the wheel"

    # The quickstart as a user runs it, with detector's downloads left on (their default) and no
    # network: it fine-tunes from the bundled COCO checkpoint, and trains and publishes in one command
    # (detector-export's own process is tested in test_export).
    assert smoke.run.parent == smoke.empty / "runs" / "smoke_sample_yolo11n"
    summary = json.loads((smoke.run / "summary.json").read_text())
    pre = summary["pretrained_source"]
    assert summary["pretrained"] is True and (pre["source"], pre["requested"]) == (
        "bundled",
        "yolo11n-seg.pt",
    )
    assert pre["sha256"] == "55ed65c56c91713d23e8402371c6c49a6fd84f257f7dce452e8d70e41dcbe152"
    # 499 detector tensors; the 6 that differ are the class-score convs sized for COCO's 80 classes
    # (Ultralytics logs "Transferred 493/499 items" for the same case).
    assert (pre["tensors_transferred"], pre["tensors_total"], pre["low_transfer"]) == (493, 499, False)
    assert summary["warnings"] == [] and summary["data"]["counts"]["train"]["images"] == 64
    assert (smoke.run / ".hydra" / "config.yaml").exists() and (smoke.run / "results.csv").exists()
    assert smoke.version == smoke.empty / "artifacts" / "smoke_sample_yolo11n" / "v1"
    assert (smoke.version / "manifest.json").is_file()
    # nothing else: no wandb/ either (.cache holds the libraries' caches and W&B's own logs: runtime.cache_dir)
    assert set(smoke.listing) - {".ultralytics"} == {"artifacts", "runs", ".cache"}
