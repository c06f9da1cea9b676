"""``finetune.layer_lr``: validated before any work, and the lrs the trainer's optimizer really uses."""

from __future__ import annotations

import pytest
from helpers import compose, optimizer_groups

from detector.errors import DetectorError
from detector.train import freeze, layer_lr, plan
from detector.train.run import run


@pytest.mark.parametrize(
    "setting, message",
    [
        ("{trunk:0.1}", "give lr multiples for any of backbone, neck, head"),
        ("{}", "give lr multiples"),
        ("0.1", "give lr multiples"),
        ("{backbone:slow}", "must be numbers"),
        ("{backbone:0}", "to stop a section training, freeze it"),
    ],
)
def test_bad_setting_names_the_fix(setting, message, tmp_path):
    with pytest.raises(DetectorError, match=message):
        plan.build(compose(f"finetune.layer_lr={setting}"), tmp_path)


def test_sections_follow_the_model_yaml(tmp_path):
    layout = freeze.Layout.from_yaml("yolo26n.yaml")
    built = plan.build(compose("finetune=two_stage", "finetune.layer_lr={backbone:0.1,head:3}"), tmp_path)
    multiples = built.stages[0].lr_multiples
    assert len(multiples) == layout.total
    assert multiples[: layout.backbone] == [0.1] * layout.backbone
    assert multiples[layout.backbone : -1] == [1.0] * (layout.total - 1 - layout.backbone)
    assert multiples[-1] == 3.0
    assert built.stages[1].lr_multiples == multiples  # both stages
    assert plan.build(compose(), tmp_path).stages[0].lr_multiples is None


@pytest.mark.slow
def test_trainer_optimizer_uses_the_multiples(tmp_path):
    seen = {}

    def record(trainer) -> None:
        groups = trainer.optimizer.param_groups
        seen.update(
            groups=optimizer_groups(trainer),
            n=len(list(trainer.model.parameters())),
            counted=sum(len(g["params"]) for g in groups),
            lr=[g["lr"] for g in groups],
        )

    cfg = compose("debug=smoke", "finetune.layer_lr={backbone:0.1,head:3}")
    summary = run(cfg, tmp_path / "run", callbacks=[{"on_train_end": record}])
    multiples = summary["stages"][0]["layer_lr"]
    assert multiples[0] == 0.1 and multiples[-1] == 3.0
    assert seen["counted"] == seen["n"]  # every parameter is in exactly one group
    for g in seen["groups"]:
        assert len({multiples[i] for i in g["layers"]}) == 1  # one multiple per group
        assert g["initial_lr"] == pytest.approx(0.002 * multiples[min(g["layers"])])
    # Ultralytics' three groups (weights, norm weights, biases), each split into the three sections
    assert sorted(g["tag"] for g in seen["groups"]) == sorted(["weight", "bn", "bias"] * 3)
    # the scheduler decays every group from its own base: the lr ratios between sections survive
    by_tag = {
        (g["tag"], multiples[min(g["layers"])]): lr for g, lr in zip(seen["groups"], seen["lr"], strict=True)
    }
    assert by_tag[("weight", 3.0)] == pytest.approx(30 * by_tag[("weight", 0.1)])


def test_split_keeps_group_settings():
    import torch

    model = torch.nn.Module()
    model.model = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])
    weights = [m.weight for m in model.model]
    biases = [m.bias for m in model.model]
    opt = torch.optim.AdamW(
        [
            {"params": weights, "weight_decay": 0.01, "param_group": "weight"},
            {"params": biases, "weight_decay": 0.0, "param_group": "bias"},
        ],
        lr=0.01,
    )
    layer_lr.split(opt, model, [0.5, 1.0])
    got = [(g["param_group"], g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups]
    assert got == [
        ("weight", 0.005, 0.01, 1),
        ("weight", 0.01, 0.01, 1),
        ("bias", 0.005, 0.0, 1),
        ("bias", 0.01, 0.0, 1),
    ]
