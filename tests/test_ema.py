"""``finetune.ema``: validated before any work, and the schedule Ultralytics' EMA really follows."""

from __future__ import annotations

import math

import pytest
from helpers import compose

from detector.errors import DetectorError
from detector.train import ema, plan
from detector.train.run import run


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


@pytest.mark.slow
def test_trainer_ema_follows_the_schedule(tiny_ckpt, sample_copy, tmp_path):
    seen = {}

    def record(trainer) -> None:
        seen.update(updates=trainer.ema.updates, decay=trainer.ema.decay(trainer.ema.updates))

    cfg = compose(
        "debug=smoke", "data=custom", f"data.yaml={sample_copy}", "model.arch=yolo26n.yaml", f"model.weights={tiny_ckpt}",
        "train.epochs=2", "finetune.ema={decay:0.9,tau:2}",
    )  # fmt: skip
    summary = run(cfg, tmp_path / "run", callbacks=[{"on_train_end": record}])
    assert seen["updates"] > 0
    assert seen["decay"] == pytest.approx(0.9 * (1 - math.exp(-seen["updates"] / 2)))
    assert seen["decay"] > 0.5  # Ultralytics' own schedule would still be near 0 here
    assert summary["stages"][0]["ema"] == {"decay": 0.9, "tau": 2.0}
    assert ema.schedule(0.9999, 2000)(seen["updates"]) < 0.01
