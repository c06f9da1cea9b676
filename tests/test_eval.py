"""detector-eval's pure logic and bad input (fast): exact metrics of weighted resamples, bootstrap and
paired intervals with known answers, operating thresholds, matching, and every refusal before inference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import SAMPLE, cli
from helpers.eval_stats import image, perfect, reference, synthetic

from detector.artifacts import store
from detector.errors import DetectorError
from detector.eval import thresholds
from detector.eval.bootstrap import bootstrap, paired_bootstrap, pooled_difference, resample_counts
from detector.eval.metrics import ResampleEvaluator
from detector.eval.stats import N_IOU, from_images, from_predictions

BOOT = {"resamples": 1000, "seed": 0, "level": 0.95}
QUICK = {**BOOT, "resamples": 200}  # where only a verdict or a point value is checked

# --- the engine -------------------------------------------------------------------------------------


def test_weighted_resamples_equal_ultralytics_on_the_literal_concatenation():
    worst = 0.0
    for seed in range(3):
        st = synthetic(25 + 10 * seed, seed)
        w = resample_counts(st.n_images, 12, seed)
        m = ResampleEvaluator(st).evaluate(w)
        for b in range(len(w)):
            ref = reference(st, np.repeat(np.arange(st.n_images), w[b]))
            c = ref["cls"]
            got = {
                "mAP50-95": m.map[b],
                "mAP50": m.map50[b],
                "precision": m.precision[b],
                "recall": m.recall[b],
                "f1": m.f1[b],
            }
            worst = max([worst, *(abs(ref[k] - v) for k, v in got.items())])
            worst = max(worst, np.abs(ref["ap"] - m.ap[b, c]).max(), np.abs(ref["p"] - m.p[b, c]).max())
    assert worst < 1e-12  # the same figures as ap_per_class, to rounding


def test_identical_models_differ_by_nothing_and_exchangeable_ones_by_noise():
    a = synthetic(60, 1)
    same = paired_bootstrap(a, a, **BOOT)
    d = same.diff["mAP50-95"]
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0) and same.verdict == "no detectable difference at 95%"
    # Two draws from one generator on the same images: equally good, so the interval holds 0, and it
    # sits about evenly around the observed difference (the paired draws cancel shared noise).
    b = synthetic(60, 2, gt_seed=1)
    cmp = paired_bootstrap(a, b, **BOOT)
    d = cmp.diff["mAP50-95"]
    assert d.low < 0 < d.high and cmp.verdict == "no detectable difference at 95%"
    assert abs((d.high - d.value) - (d.value - d.low)) < 0.3 * d.width
    assert (
        d.width
        < bootstrap(a, **BOOT).overall()["mAP50-95"].width + bootstrap(b, **BOOT).overall()["mAP50-95"].width
    )


def test_a_model_without_boxes_scores_zero_with_a_zero_width_interval():
    st = synthetic(30, 3)
    empty = from_images(
        [
            image(f, np.zeros((0, N_IOU)), [], [], st.target_cls[st.target_img == i])
            for i, f in enumerate(st.im_files)
        ],
        st.names,
    )
    for iv in bootstrap(empty, **BOOT).overall().values():
        assert (iv.value, iv.low, iv.high) == (0.0, 0.0, 0.0)


def test_a_perfect_model_scores_0_995_the_most_ultralytics_ap_can_give():
    # Ultralytics' PR curve ends at (recall 1, precision 0) and AP integrates it on 101 points with the
    # trapezoid rule, so the last 0.01 of recall adds half its width: a perfect model has AP 0.995, not 1.
    res = bootstrap(perfect(synthetic(30, 4)), **BOOT)
    ov = res.overall()
    assert ov["mAP50"].value == pytest.approx(0.995, abs=1e-12)
    assert ov["mAP50-95"].value == pytest.approx(0.995, abs=1e-12)
    assert (ov["mAP50-95"].low, ov["mAP50-95"].high) == pytest.approx((0.995, 0.995), abs=1e-12)
    assert ov["precision"].value == ov["recall"].value == pytest.approx(1.0)


def test_paired_verdicts_name_the_better_model():
    a = synthetic(80, 5, skill=0.3)
    b = synthetic(80, 6, skill=1.2, gt_seed=5)
    assert paired_bootstrap(a, b, **QUICK).verdict == "B is better"
    assert paired_bootstrap(b, a, **QUICK).verdict == "A is better"
    pooled = pooled_difference([(a, b), (a, b)], **QUICK)
    assert pooled["verdict"] == "B is better" and pooled["low"] > 0
    with pytest.raises(ValueError, match="not on the same images"):
        paired_bootstrap(a, synthetic(81, 6), **QUICK)


def test_bootstrap_is_seeded():
    st = synthetic(40, 7)
    one, two = bootstrap(st, **QUICK).as_dict(), bootstrap(st, **QUICK).as_dict()
    assert one["overall"] == two["overall"] and one["resamples"] == 200


# --- thresholds ----------------------------------------------------------------------------------------

# confidences .9 .8 .7 .6 .5 .4 of one class, correct (TP at IoU 0.5) or not, and 4 true boxes
KNOWN = from_images(
    [
        image(
            "a.jpg",
            [[t] * N_IOU for t in (1, 1, 0, 1, 0, 0)],
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            [0] * 6,
            [0] * 4,
        )
    ],
    {0: "panel"},
)


@pytest.mark.parametrize(
    ("rule", "threshold", "p", "r"),
    [
        ("f1", 0.6, 0.75, 0.75),  # 3 of 4 kept boxes right, 3 of 4 boxes found: F1 0.75, the best
        ("precision:0.9", 0.8, 1.0, 0.5),  # the lowest threshold at precision >= 0.9
        ("precision:0.7", 0.6, 0.75, 0.75),  # 0.7 keeps precision 2/3, yet 0.6 is back above the target
        ("recall:0.7", 0.6, 0.75, 0.75),  # the highest threshold at recall >= 0.7
        ("recall:0.5", 0.8, 1.0, 0.5),
    ],
)
def test_thresholds_on_known_scores(rule, threshold, p, r):
    ch = thresholds.choose(KNOWN, rule, 0.25)[0]
    assert (ch.threshold, ch.precision, ch.recall, ch.chosen) == (pytest.approx(threshold), p, r, True)
    at = thresholds.at_thresholds(KNOWN, {0: ch.threshold}, **QUICK)["per_class"]["panel"]
    assert (at["precision"]["value"], at["recall"]["value"]) == (p, r)


def test_a_target_no_threshold_meets_is_a_message():
    choices = thresholds.choose(KNOWN, "recall:0.8", 0.25)
    assert not choices[0].chosen and choices[0].threshold == 0.25
    assert thresholds.unmet(choices, "recall:0.8") == [
        "class 'panel': no threshold reaches recall 0.8 (at most 0.750 on this split)"
    ]
    for bad in ("precison:0.9", "precision:1.5", "recall:", "f2"):
        with pytest.raises(DetectorError, match="not a threshold rule"):
            thresholds.parse_rule(bad)


# --- matching ------------------------------------------------------------------------------------------


def test_from_predictions_matches_like_ultralytics():
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import box_iou

    rng = np.random.default_rng(0)
    iouv = torch.linspace(0.5, 0.95, 10)
    for _ in range(20):
        gt = rng.uniform(0, 50, (6, 2)).repeat(2, 1) + np.c_[np.zeros((6, 2)), rng.uniform(5, 30, (6, 2))]
        pb = gt[rng.integers(0, 6, 15)] + rng.normal(0, 3, (15, 4))
        pc, gc, conf = rng.integers(0, 2, 15), rng.integers(0, 2, 6), rng.random(15)
        st = from_predictions(["x.jpg"], [(pb, conf, pc)], [(gt, gc)], {0: "a", 1: "b"})
        o = np.argsort(-conf.astype(np.float32), kind="stable")
        iou = box_iou(torch.tensor(gt, dtype=torch.float32), torch.tensor(pb[o], dtype=torch.float32))
        want = DetectionValidator.match_predictions(
            type("V", (), {"iouv": iouv})(), torch.tensor(pc[o]), torch.tensor(gc), iou
        )
        assert np.array_equal(st.tp, want.numpy())
    exact = from_predictions(
        ["y.jpg"],
        [([[0, 0, 10, 10], [0, 0, 10, 9]], [0.9, 0.8], [0, 0])],
        [([[0, 0, 10, 10]], [0])],
        {0: "a"},
    )
    assert exact.tp[0].all() and not exact.tp[1].any()  # the second box finds the true one taken


# --- bad input: exit 2 with the cause, before any inference, nothing left behind ----------------------


@pytest.fixture
def no_inference(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("inference started")

    monkeypatch.setattr("detector.eval.run.collect", refuse)


def _data(root: Path, names: dict, **splits: str) -> Path:
    doc = {"path": str(SAMPLE), "train": "images/train", "val": "images/val", **splits, "names": names}
    (root / "d.yaml").write_text(yaml.safe_dump(doc))
    return root / "d.yaml"


@pytest.fixture
def fake(tmp_path) -> Path:
    """A finished run folder on the bundled sample (weights that are never loaded)."""
    run = tmp_path / "runs" / "r" / "t"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "best.pt").write_bytes(b"not loaded")
    (run / "data").mkdir()
    shutil.copy(_data(tmp_path, {0: "solar-pv-panel"}), run / "data" / "data.yaml")
    summary = {"status": "complete", "data": {"names": {"0": "solar-pv-panel"}}, "config": {"name": "r"}}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def _version(root: Path) -> store.Version:
    s = store.Store(root, "panels")
    with s.staging() as (stage, _):
        (stage / "weights").mkdir()
        (stage / "weights" / "best.onnx").write_bytes(b"onnx")
        doc = {
            "format": "onnx",
            "exports": {"onnx": {"path": "weights/best.onnx", "runtime": "ONNX Runtime"}},
        }
        doc |= {
            "model": {"names": {0: "solar-pv-panel"}, "imgsz": 64},
            "data": {"yaml": str(SAMPLE / "data.yaml")},
        }
        return s.commit(stage, doc, lambda m: "# card\n")


def _tampered(tmp_path: Path) -> str:
    v = _version(tmp_path / "a")
    f = v.path / "weights" / "best.onnx"
    f.chmod(0o644)
    f.write_bytes(b"changed")
    return "panels/v1"


CASES = [
    (lambda t, r: [str(r), "split=test"], "has no `test:` split (it has train, val)"),
    (lambda t, r: [str(r), f"data={_data(t, {0: 'car', 1: 'bus'})}"], "predicts classes"),
    (lambda t, r: [_tampered(t)], "weights/best.onnx differs from the manifest; refusing"),
    (
        lambda t, r: [str(r), f"data={_data(t, {0: 'solar-pv-panel'}, test=str(t / 'gone'))}", "split=test"],
        "split path does not exist",
    ),
    (
        lambda t, r: [str(r), f"data={_data(t, {0: 'solar-pv-panel'}, test=str(t / 'empty'))}", "split=test"],
        "holds no images",
    ),
    (lambda t, r: [str(r), "eval.threshold=precison:0.9"], "not a threshold rule"),
    (lambda t, r: [str(r), "eval.val.ioux=0.6"], "did you mean eval.val.iou"),
    (lambda t, r: [str(r), "eval.val.split=test"], "use split=test|val"),
    (lambda t, r: [str(r), "eval.bootstrap.resamples=100"], "resamples must be a whole number >= 1000"),
    (lambda t, r: [], "takes one MODEL, or two"),
    (lambda t, r: [str(t / "nope")], "no such folder"),
    (lambda t, r: ["nosuch/v1"], "No artifact 'nosuch'"),
]


@pytest.mark.parametrize(
    ("args", "message"), CASES, ids=[m.split()[0] + str(i) for i, (_, m) in enumerate(CASES)]
)
def test_bad_input_exits_2_before_any_inference(args, message, fake, tmp_path, no_inference):
    (tmp_path / "empty").mkdir()
    paths = [f"paths.runs_dir={tmp_path / 'runs'}", f"paths.artifacts_dir={tmp_path / 'a'}"]
    res = cli("detector-eval", *args(tmp_path, fake), *paths)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert not (tmp_path / "runs" / "evals").exists()  # Hydra's eval folder went with the error


def test_a_split_without_boxes_is_refused(fake, tmp_path, no_inference):
    (tmp_path / "bg" / "images").mkdir(parents=True)
    shutil.copy(next((SAMPLE / "images" / "val").iterdir()), tmp_path / "bg" / "images")
    data = _data(tmp_path, {0: "solar-pv-panel"}, test=str(tmp_path / "bg" / "images"))
    res = cli("detector-eval", str(fake), f"data={data}", "split=test", f"paths.runs_dir={tmp_path / 'runs'}")
    assert res.returncode == 2 and "no labelled box, so there is nothing to score" in res.stderr


def test_a_target_no_threshold_meets_exits_2_naming_the_class_and_writes_nothing(fake, tmp_path, monkeypatch):
    monkeypatch.setattr("detector.eval.run.pass_stats", lambda *a, **k: KNOWN)
    monkeypatch.setattr(
        "detector.review.resolve.data",
        lambda m, override: type(
            "S",
            (),
            {
                "yaml_path": Path("d.yaml"),
                "names": {0: "panel"},
                "raw": {"val": 1},
                "splits": {"val": [1]},
                "problems": [],
            },
        )(),
    )
    monkeypatch.setattr("detector.eval.splits.split", lambda spec, name: ("val", []))
    res = cli("detector-eval", str(fake), "eval.threshold=recall:0.9", f"paths.runs_dir={tmp_path / 'runs'}")
    assert res.returncode == 2, res.stderr
    assert (
        "eval.threshold=recall:0.9: class 'panel': no threshold reaches recall 0.9 (at most 0.750"
        in res.stderr
    )
    assert not list(tmp_path.rglob("metrics.json")) and not (tmp_path / "runs" / "evals").exists()


def test_positional_models_become_one_override():
    from detector.cli import _positional

    assert _positional(["runs/a", "panels/v2", "split=test", "--cfg", "job"]) == [
        "models=['runs/a','panels/v2']", "split=test", "--cfg", "job",
    ]  # fmt: skip
    assert _positional(["it's"]) == ["models=['it\\'s']"]
