"""``finetune.ema``: validated before any work. The schedule Ultralytics' EMA really follows is
checked on a real two-stage run in test_train."""

from __future__ import annotations

import pytest
from helpers import compose

from detector.errors import DetectorError
from detector.train import plan


@pytest.mark.parametrize(
    "setting, message",
    [
        ("{decay:0.9}", "give both keys"),
        ("{decay:0.9,tau:5,beta:1}", "give both keys"),
        ("{decay:1.5,tau:5}", "decay must be in"),
        ("{decay:0.9,tau:0}", "tau \\(optimizer steps\\) above 0"),
        ("{decay:fast,tau:5}", "must be numbers"),
        ("0.9", "give both keys"),
    ],
)
def test_bad_setting_names_the_fix(setting, message, tmp_path):
    with pytest.raises(DetectorError, match=message):
        plan.build(compose(f"finetune.ema={setting}"), tmp_path)


def test_null_keeps_ultralytics_schedule(tmp_path):
    built = plan.build(compose(), tmp_path)
    assert all(s.ema is None for s in built.stages)


def test_every_stage_gets_the_schedule(tmp_path):
    built = plan.build(compose("finetune=two_stage", "finetune.ema={decay:0.95,tau:20}"), tmp_path)
    assert [s.ema for s in built.stages] == [{"decay": 0.95, "tau": 20.0}] * 2
