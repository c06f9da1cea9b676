"""Resolve a composed config into a training plan, validating everything before heavy work.

Order matters: the cheap checks (config keys, data.yaml, labels) run first, so a typo or a
broken dataset fails in seconds; the checkpoint is loaded last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detector import config, safeload
from detector.data import check, spec
from detector.data import tile as tiles
from detector.errors import DetectorError
from detector.train import augment, balance, devices, ema, freeze, layer_lr, weights

log = logging.getLogger(__name__)

TWO_STAGE = ("epochs", "lr_scale", "freeze", "train")  # finetune.two_stage keys
ULTRALYTICS_EPOCHS = 100  # Ultralytics' own default for train.epochs (cfg/default.yaml)


@dataclass
class Stage:
    """One call to ``YOLO.train``."""

    name: str
    save_dir: Path
    train: dict[str, Any]  # Ultralytics keys
    freeze: list[int]
    init: Path | None  # checkpoint to transfer from; None = random init
    ema: dict[str, float] | None = None  # finetune.ema; None = Ultralytics' own EMA schedule
    lr_multiples: list[float] | None = None  # finetune.layer_lr, per layer index; None = one lr everywhere
    balance: balance.Balance | None = None  # finetune.balance: what runs and why; None = not asked about


@dataclass
class Plan:
    """Everything a run needs, resolved and validated."""

    run_dir: Path
    arch: str
    layout: freeze.Layout
    pretrained: weights.Pretrained
    data: spec.DataSpec
    data_report: check.Report
    stages: list[Stage]
    freeze_setting: Any
    lr_scale: float | None = None  # two-stage: stage-2 lr = stage-1 lr x this
    warnings: list[str] = field(default_factory=list)
    tile: dict[str, Any] | None = None  # data.tile, checked; None: train on whole images


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def train_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """The recipe's Ultralytics keys (``finetune.train``) overridden by the ``train`` group, keys validated."""
    recipe = _container(cfg.finetune.get("train")) or {}
    config.validate("finetune.train", recipe)
    kwargs = _container(cfg.train) or {}
    config.validate("train", kwargs)
    return {**recipe, **kwargs}


def check_train_values(cfg: DictConfig) -> None:
    """The values of those keys, by Ultralytics' own ``check_cfg`` (it imports Ultralytics: run it last)."""
    train = _container(cfg.train) or {}
    recipe = _container(cfg.finetune.get("train")) or {}
    config.check_values("finetune.train", {k: v for k, v in recipe.items() if k not in train})
    config.check_values("train", train)


def _stages(
    cfg: DictConfig,
    run_dir: Path,
    kwargs: dict,
    frozen: list[int],
    layout: freeze.Layout,
    init: Path | None,
    average: dict[str, float] | None,
    multiples: list[float] | None,
    balanced: balance.Balance,
) -> tuple[list[Stage], float | None]:
    """One stage, or two for ``finetune.two_stage``; also returns stage 2's lr scale."""
    two = _container(cfg.finetune.get("two_stage"))
    if not two:
        return [Stage("train", run_dir, kwargs, frozen, init, average, multiples, balanced)], None
    unknown = set(two) - set(TWO_STAGE)
    if unknown:
        raise DetectorError(
            f"finetune.two_stage has unknown keys {sorted(unknown)}; use {', '.join(TWO_STAGE)}."
        )
    two = config.require(two, TWO_STAGE, "finetune.two_stage")
    total, k = int(kwargs.get("epochs", ULTRALYTICS_EPOCHS)), int(two["epochs"])
    if not 0 < k < total:
        raise DetectorError(
            f"finetune.two_stage.epochs={k} must be between 1 and train.epochs-1 ({total - 1})."
        )
    extra = two["train"] or {}
    config.validate("finetune.two_stage.train", extra)
    config.check_values("finetune.two_stage.train", extra)
    devices.require_one(extra, "finetune.two_stage.train")
    stage1 = Stage(
        "stage1", run_dir / "stage1", {**kwargs, "epochs": k}, frozen, init, average, multiples, balanced
    )
    stage2 = Stage(
        "stage2",
        run_dir,
        {**kwargs, **extra, "epochs": total - k},
        freeze.resolve(two["freeze"], layout),
        run_dir / "stage1" / "weights" / "best.pt",
        average,
        multiples,
        balanced,
    )
    return [stage1, stage2], float(two["lr_scale"])


def tile_settings(cfg: DictConfig) -> dict[str, Any] | None:
    """``data.tile`` checked (dataset and predict settings), or None when the run trains on whole images."""
    node = _container(config.require(cfg.data, ["tile"], "data")["tile"])
    if node is None:
        return None
    predict = tiles.predict_settings(config.require(node, ["predict"], "data.tile")["predict"])
    return {**tiles.settings(node), "predict": predict}


def check_inputs(cfg: DictConfig) -> tuple[dict[str, Any], spec.DataSpec, check.Report]:
    """Every check before training, cheapest first: train keys, one device, augmentations, tile settings,
    data.yaml and labels (no Ultralytics import so far), then the train values with Ultralytics' own ``check_cfg``.

    Returns:
        The train kwargs (with ``augmentations``, the built albumentations transforms, unless the
        ``augment`` option leaves Ultralytics' default), the parsed dataset and its label report.
    """
    kwargs = train_kwargs(cfg)  # keys first: a typo fails in about a second
    devices.require_one(kwargs)
    tile_settings(cfg)
    transforms = augment.build(cfg.get("augment"))
    if transforms is not None:  # config.RESERVED refuses this key from the train group: it comes from augment
        kwargs["augmentations"] = transforms
    data = spec.load(cfg.data.yaml)
    report = check.require_clean(data, allow=list(cfg.data.get("allow") or []))
    check_train_values(cfg)  # then the values, through Ultralytics' own check
    return kwargs, data, report


def build(
    cfg: DictConfig,
    run_dir: str | Path,
    inputs: tuple[dict[str, Any], spec.DataSpec, check.Report] | None = None,
) -> Plan:
    """Validate ``cfg`` and resolve it into a :class:`Plan`. Nothing is written.

    Args:
        cfg: The composed config.
        run_dir: The run folder the plan's stages write into.
        inputs: What :func:`check_inputs` returned, when the caller ran it first (it fails fast,
            before torch is imported); computed here otherwise.

    Raises:
        DetectorError: On any bad input, naming the problem and the fix.
    """
    run_dir = Path(run_dir)
    kwargs, data, report = inputs or check_inputs(cfg)
    average = ema.resolve(_container(cfg.finetune.get("ema")))  # fails before the checkpoint loads
    scales = layer_lr.resolve(_container(cfg.finetune.get("layer_lr")))
    balanced, notes = balance.resolve(cfg.finetune, kwargs, report, data.names)
    layout = freeze.Layout.from_yaml(cfg.model.arch)
    multiples = layer_lr.per_layer(scales, layout) if scales else None
    setting = _container(cfg.finetune.freeze)
    frozen = freeze.resolve(setting, layout)
    pre = weights.resolve(cfg.model.weights, cfg.paths.weights_dir)
    warnings = [f"data: {w}" for w in report.summary_lines("warning")] + notes
    if pre.found:
        if cfg.model.get("trust_checkpoint") is True:  # the user's explicit, loud opt-in for this one file
            safeload.trust(pre.path)
        weights.load_checkpoint(pre.path)  # fails now, clearly, if the file is not a checkpoint or not safe
    elif frozen:  # model.weights=null: random initialisation, asked for
        warnings.append(
            f"finetune.freeze={setting} ignored: freezing randomly initialised layers cannot help."
        )
        frozen = []
    stages, lr_scale = _stages(cfg, run_dir, kwargs, frozen, layout, pre.path, average, multiples, balanced)
    plan = Plan(run_dir, str(cfg.model.arch), layout, pre, data, report, stages, setting, lr_scale, warnings)
    plan.tile = tile_settings(cfg)
    return plan
