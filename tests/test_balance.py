"""``finetune.balance``: repeat factors, the sampler's long-run draw, the plan's checks, the doctor's
imbalance report. A real balanced run, interrupted and resumed, is in test_resume."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from helpers import cli, compose, files_under, sample_subset

from detector.data import balance as factors
from detector.train import balance, plan
from detector.train.sampler import RepeatFactorSampler

# 100 images, 3 classes: class 0 in 80 images (80 boxes), class 1 in 20 (30), class 2 in 1; 10 backgrounds.
LABELS = [[0]] * 60 + [[0, 1]] * 10 + [[1, 1]] * 10 + [[0, 2]] + [[0]] * 9 + [[]] * 10


def test_repeat_factors_on_known_counts():
    per_class, per_image = factors.repeat_factors(LABELS, 3, t=0.3)
    want = [1.0, math.sqrt(0.3 / 0.2), math.sqrt(0.3 / 0.01)]  # f = 0.8, 0.2, 0.01
    assert per_class == pytest.approx(want)
    assert per_image == pytest.approx([1.0] * 60 + [want[1]] * 20 + [want[2]] + [1.0] * 19)
    assert factors.repeat_factors([[0], [0]], 2, t=1.0)[0] == [1.0, None]  # no image holds class 1
    for t in (0, 1.5, -1):
        with pytest.raises(ValueError, match="must be in \\(0, 1\\]"):
            factors.repeat_factors(LABELS, 3, t)
    imb = factors.imbalance("train", LABELS, {0: "a", 1: "b", 2: "c"})
    assert (imb.ratio_images, imb.ratio_boxes, imb.most, imb.least) == (80.0, 80.0, "a", "c")
    assert imb.suggest and "finetune.balance=repeat_factor" in factors.suggestion(imb)


@pytest.mark.parametrize("length", [None, 100])
def test_sampler_long_run_frequencies_match_the_factors(length):
    _, r = factors.repeat_factors(LABELS, 3, t=0.3)
    sampler = RepeatFactorSampler(r, seed=7, epoch_length=length)
    epochs = 400
    drawn = Counter()
    for e in range(epochs):
        sampler.set_epoch(e)
        idx = list(sampler)
        assert len(idx) == len(sampler) and (length is None or len(idx) == length)
        drawn.update(idx)
    rate = np.array([drawn[i] for i in range(len(r))]) / epochs
    expected = np.array(r) * (length / sum(r) if length else 1.0)  # a fixed length scales every image alike
    assert rate == pytest.approx(expected, rel=0.06)
    shares = factors.class_shares(LABELS, 3, rate.tolist())
    assert shares == pytest.approx(factors.class_shares(LABELS, 3, r), abs=0.01)
    assert shares[2] > 4 * factors.class_shares(LABELS, 3, [1.0] * len(r))[2]  # the rare class, ~5.5x
    again = RepeatFactorSampler(r, seed=7, epoch_length=length)
    assert np.array_equal(again.indices(3), sampler.indices(3)) and again.digest() == sampler.digest()
    assert not np.array_equal(sampler.indices(3), sampler.indices(4))


def _ids(data_yaml, split: str = "train") -> list[list[int]]:
    root = data_yaml.parent / "labels" / split
    return [[int(line.split()[0]) for line in f.read_text().splitlines()] for f in sorted(root.iterdir())]


def _decide(data_yaml, *overrides: str) -> tuple[balance.Balance, list[str]]:
    """What the plan decides for ``finetune.balance`` on this dataset (the cheap checks only)."""
    cfg = compose("data=custom", f"data.yaml={data_yaml}", *overrides)
    kwargs, data, report = plan.check_inputs(cfg)
    return balance.resolve(cfg.finetune, kwargs, report, data.names)


def test_plan_decides_and_says_why(rare_sample, sample_copy, tmp_path):
    cfg = compose("data=custom", f"data.yaml={rare_sample}", "finetune=two_stage", "finetune.balance=auto")
    on = plan.build(cfg, tmp_path)
    assert [s.balance.method for s in on.stages] == ["repeat_factor"] * 2  # both stages, freezing or not
    assert on.stages[0].balance.reason == "auto: on, train images' most/least frequent class ratio 7.1x >= 5x"
    three = sample_subset(tmp_path / "three", {"train": 64, "val": 16}, step=1, classes=list("abc"))
    off, notes = _decide(three, "finetune.balance=auto")
    assert not off.on and off.reason.endswith("2.7x < 5x") and notes == []
    one, notes = _decide(sample_copy, "finetune.balance=repeat_factor")
    assert not one.on and "changes nothing here (one class)" in notes[0]
    quiet, notes = _decide(
        sample_copy, "finetune.balance=auto"
    )  # the recipe's auto: quiet where it cannot help
    assert quiet.reason == "auto: off: one class, nothing to balance" and notes == []
    _, notes = _decide(rare_sample, "finetune.balance=repeat_factor", "finetune.balance_threshold=0.1")
    assert "nothing is repeated" in notes[0]


def test_a_sweep_can_search_balance():
    from detector.sweep import space as search_space

    params = search_space.parse(
        {
            "finetune.balance": ["none", "repeat_factor"],
            "finetune.balance_threshold": {"type": "float", "low": 0.1, "high": 1.0},
        }
    )
    kept, notes = search_space.resolve(params, compose())
    assert [p.key for p in kept] == ["finetune.balance", "finetune.balance_threshold"] and not notes
    assert kept[0].override("repeat_factor") == "finetune.balance=repeat_factor" and not kept[0].group
    assert compose(kept[0].override("repeat_factor")).finetune.balance == "repeat_factor"


def _first_without(data_yaml, name: str) -> int:
    """How many sorted train images come before the first that holds class ``name``."""
    cid = "abcde".index(name)
    return next(k for k, ids in enumerate(_ids(data_yaml)) if cid in ids)


BAD = {
    "unknown option": (["finetune.balance=repeat_factors"], "Did you mean finetune.balance=repeat_factor?"),
    "threshold 1.5": (["finetune.balance=repeat_factor", "finetune.balance_threshold=1.5"], "must be a number in (0, 1]"),
    "unknown epoch": (["finetune.balance=auto", "finetune.balance_epoch=dataset_"], "Did you mean finetune.balance_epoch=dataset?"),
    "rect batches": (["finetune.balance=repeat_factor", "train.rect=true"], "train.rect=true keeps them"),
    "fraction drops a class": (["finetune.balance=repeat_factor", "train.fraction={k}"], "every box of ['e']"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_balance_fails_before_training(case, rare_sample, tmp_path, no_training):
    args, message = BAD[case]
    runs = tmp_path / "runs"
    args = [a.format(k=_first_without(rare_sample, "e")) for a in args]
    res = cli("detector-train", "data=custom", f"data.yaml={rare_sample}", f"paths.runs_dir={runs}", *args)
    assert res.returncode == 2, res.stdout[-1500:] + res.stderr[-1500:]
    assert message in res.stderr
    assert files_under(runs) == [], "a failed run left a folder"


def test_doctor_reports_the_imbalance(rare_sample):
    res = cli("detector-data", "check", str(rare_sample))
    assert res.returncode == 0
    assert "most/least frequent class 7.1x in images, 7.2x in boxes ('a' vs 'e')" in res.stdout
    assert "try detector-train finetune.balance=repeat_factor" in res.stdout
    doc = json.loads(cli("detector-data", "check", str(rare_sample), "--json").stdout)
    assert doc["class_balance"] == {
        "split": "train", "ratio_boxes": 7.2, "ratio_images": 7.11, "most": "a", "least": "e",
        "absent": [], "suggest_balance": True, "suggest_at": factors.SUGGEST_RATIO,
    }  # fmt: skip


@pytest.mark.slow
def test_unbalanced_run_says_so(smoke):  # the session's real smoke run: no extra training
    summary = json.loads((smoke.run / "summary.json").read_text())
    assert summary["stages"][0]["balance"] == {
        "method": "none", "threshold": 0.5, "epoch": "dataset", "reason": "finetune.balance=none",
    }  # fmt: skip
