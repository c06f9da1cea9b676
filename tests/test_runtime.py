"""The process-wide settings of detector/runtime.py: nothing written into ~, Ultralytics kept offline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import files_under

CODE = """
from detector import runtime
runtime.configure()
import onnxruntime, matplotlib.pyplot, wandb
import openvino.tools.ovc.telemetry_utils as t
assert t.tm.__name__.endswith("telemetry_stub"), t.tm   # OpenVINO's converter sends nothing
import os; print(os.environ["YOLO_OFFLINE"], os.environ["DETECTOR_SET_YOLO_OFFLINE"])
"""


@pytest.mark.slow
def test_libraries_keep_their_caches_and_telemetry_out_of_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    unset = (
        "XDG_CACHE_HOME",
        "MPLCONFIGDIR",
        "WANDB_CACHE_DIR",
        "YOLO_CONFIG_DIR",
        "YOLO_OFFLINE",
        "DETECTOR_SET_YOLO_OFFLINE",
    )
    env = {k: v for k, v in os.environ.items() if k not in unset} | {"HOME": str(home)}
    res = subprocess.run(
        [sys.executable, "-c", CODE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-2:] == ["true", "true"]  # Ultralytics offline, and detector knows it set that
    assert files_under(home) == []  # no ~/.cache/Microsoft device id, no ~/.config/Ultralytics, no ~/intel
    assert (tmp_path / ".ultralytics" / "Ultralytics" / "settings.json").is_file()
