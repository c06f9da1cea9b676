"""Multi-device (DDP) training is refused before any work; one device, or none named, passes."""

from __future__ import annotations

import pytest
from helpers import compose

from detector.errors import DetectorError
from detector.train import devices, plan


@pytest.mark.parametrize(
    "override, count",
    [
        ("train.device=[0,1]", 2),
        ("train.device='0,1'", 2),
        ("train.device='cuda:0,1,2'", 3),
        ("train.device='-1,-1'", 2),  # Ultralytics: two idle GPUs
        ("train.device='npu:0,1'", 2),
        ("finetune.train.device=[2,3]", 2),  # the recipe's keys are checked too
    ],
)
def test_several_devices_are_refused_naming_the_fix(override, count):
    with pytest.raises(DetectorError) as err:
        plan.check_inputs(compose(override))
    message = str(err.value)
    assert f"asks for {count} devices" in message
    assert "detector-train runs on one device" in message
    assert "CUDA_VISIBLE_DEVICES=N detector-sweep" in message


@pytest.mark.parametrize(
    "override",
    ["train.device=0", "train.device=cpu", "train.device='cuda:1'", "train.device=[0]", "train.device=null"],
)
def test_one_device_passes(override):
    kwargs, _, _ = plan.check_inputs(compose(override))
    assert len(devices.names(kwargs.get("device"))) <= 1


def test_the_fix_names_the_first_device_asked_for():
    with pytest.raises(DetectorError, match=r"Train on one device \(train.device=2\)"):
        plan.check_inputs(compose("train.device='cuda:2,3'"))


def test_stage_two_keys_are_checked_too(tmp_path):
    with pytest.raises(DetectorError, match=r"finetune.two_stage.train.device=\[0, 1\] asks for 2 devices"):
        plan.build(compose("finetune=two_stage", "finetune.two_stage.train.device=[0,1]"), tmp_path)
