"""Every config group option composes, and train keys are checked against Ultralytics' schema."""

from __future__ import annotations

import pytest
from helpers import ROOT, cli, compose
from omegaconf import OmegaConf

from detector import config
from detector.errors import DetectorError

GROUPS = ["model", "data", "train", "finetune", "augment", "paths", "experiment", "debug"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "configs" / group).glob("*.yaml"))


@pytest.mark.parametrize(
    ("group", "option"), [(g, o) for g in GROUPS for o in _options(g)], ids=lambda x: str(x)
)
def test_every_option_composes(group, option):
    extra = ["data.yaml=/tmp/x/data.yaml"] if (group, option) == ("data", "custom") else []
    cfg = compose(f"{group}={option}", *extra)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["model"]["arch"].endswith(".yaml")
    assert set(resolved["finetune"]) >= {"freeze", "two_stage"}


def test_defaults_are_the_bundled_coco_checkpoint_on_the_sample():
    cfg = compose()
    assert (cfg.model.arch, cfg.model.weights) == ("yolo11n.yaml", "yolo11n-seg.pt")
    assert cfg.data.yaml == str(ROOT / "datasets" / "sample" / "data.yaml")
    assert cfg.name == "sample_yolo11n"


@pytest.mark.parametrize(
    ("overrides", "name"),
    [(["model=yolo26s"], "sample_yolo26s"), (["model.arch=yolo11s.yaml"], "sample_yolo11s"),
     (["model.arch=/my/models/roof-net.yaml", "debug=smoke"], "smoke_sample_roof-net")],
)  # fmt: skip
def test_the_run_is_named_after_the_architecture_used(overrides, name):
    assert compose(*overrides).name == name


def test_outputs_go_under_the_working_directory_unless_told_otherwise(tmp_path, monkeypatch):
    paths = compose().paths  # the tests run in their own tmp_path
    assert (paths.runs_dir, paths.artifacts_dir, paths.weights_dir) == (
        str(tmp_path / "runs"), str(tmp_path / "artifacts"), str(tmp_path / "weights")
    )  # fmt: skip
    monkeypatch.setenv("DETECTOR_ROOT", str(tmp_path / "elsewhere"))
    assert compose().paths.runs_dir == str(tmp_path / "elsewhere" / "runs")
    assert compose("paths.root=/srv/det").paths.artifacts_dir == "/srv/det/artifacts"


def test_own_config_groups_in_the_working_directory_are_found(tmp_path, sample_copy):
    (tmp_path / "configs" / "data").mkdir(parents=True)
    (tmp_path / "configs" / "data" / "roofs.yaml").write_text(
        f"name: roofs\nyaml: {sample_copy}\nallow: []\n"
    )
    cfg = compose("data=roofs")
    assert (cfg.data.name, cfg.data.yaml, cfg.name) == ("roofs", str(sample_copy), "roofs_yolo11n")
    res = cli("detector-train", "data=roofs", "--cfg", "job", "--resolve")  # the console script sees it too
    assert res.returncode == 0 and "name: roofs_yolo11n" in res.stdout


def test_model_keys_override_independently():
    cfg = compose("model=yolo26s", "model.weights=/some/where.pt")
    assert (cfg.model.arch, cfg.model.weights) == ("yolo26s.yaml", "/some/where.pt")


def test_undeclared_ultralytics_key_needs_no_plus():
    cfg = compose("train.lr0=0.003", "train.epochs=2")
    assert cfg.train.lr0 == 0.003 and cfg.train.epochs == 2


def test_valid_keys_pass():
    config.validate("train", ["epochs", "imgsz", "lr0", "mosaic", "close_mosaic", "optimizer"])


def test_typo_gets_close_match():
    with pytest.raises(DetectorError, match=r"train\.lr00: not an Ultralytics key \(did you mean train\.lr0"):
        config.validate("train", ["epochs", "lr00"])


def test_reserved_key_points_to_the_right_group():
    with pytest.raises(DetectorError, match=r"train\.freeze: not set here; use finetune\.freeze"):
        config.validate("train", ["freeze"])


def test_cli_typo_fails_fast_without_a_run_folder(tmp_path):
    res = cli("detector-train", "train.imgsze=64", f"paths.runs_dir={tmp_path}")
    assert res.returncode == 2
    assert "train.imgsze" in res.stderr and "did you mean train.imgsz" in res.stderr
    assert not any(tmp_path.iterdir()), "a failed run must not leave a folder that looks like a run"


def test_unknown_model_option_is_refused(tmp_path):
    res = cli("detector-train", "model=yolo99", f"paths.runs_dir={tmp_path}")
    assert res.returncode != 0
    assert "model/yolo99" in res.stderr and "yolo26n" in res.stderr  # Hydra lists the options


def test_recipe_keys_yield_to_train_keys():
    from detector.train.plan import check_inputs

    cfg = compose("finetune.train.lr0=0.005", "finetune.train.warmup_epochs=1", "train.lr0=0.001")
    kwargs, _, _ = check_inputs(cfg)
    assert kwargs["lr0"] == 0.001 and kwargs["warmup_epochs"] == 1


def test_recipe_typo_is_caught():
    from detector.train.plan import check_inputs

    with pytest.raises(DetectorError, match=r"finetune\.train\.warmup_epoch: not an Ultralytics key"):
        check_inputs(compose("finetune.train.warmup_epoch=1"))
