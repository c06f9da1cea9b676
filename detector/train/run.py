"""A whole training run: check, plan, stage the data, train each stage (or resume), write the summary."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from detector import provenance, redact, runtime
from detector.data import spec as specs
from detector.data import tile as tiles
from detector.data.stage import stage as stage_data
from detector.errors import DetectorError
from detector.io import write_json
from detector.train import augment, rundir
from detector.train import plan as planning
from detector.train.fit import Callbacks, finished_stage, fit, last_checkpoint

log = logging.getLogger(__name__)


def stage_record(stage: planning.Stage, metrics: dict, facts: dict) -> dict[str, Any]:
    """One entry of the summary's ``stages``."""
    return {
        "name": stage.name,
        "dir": str(stage.save_dir),
        "freeze": stage.freeze,
        "ema": stage.ema,
        "layer_lr": stage.lr_multiples,
        "balance": stage.balance.to_dict() if stage.balance else None,  # facts' own, read off the loader, win
        "train": {k: v for k, v in stage.train.items() if k != "augmentations"},  # recorded apart
        "metrics": metrics,
        **facts,
    }


def _continued(stage: planning.Stage, plan: planning.Plan, previous: dict) -> planning.Stage:
    """Stage 2 of a two-stage run goes on with the optimizer stage 1 used, at ``lr_scale`` x its lr."""
    if plan.lr_scale is None or not previous:
        return stage
    lr = {"optimizer": previous["optimizer"], "lr0": previous["lr0"] * plan.lr_scale}
    return dataclasses.replace(stage, train={**stage.train, **lr})


def _train_stages(
    plan: planning.Plan, data_yaml: Path, callbacks: Callbacks, resume: bool
) -> tuple[list[dict], list[dict]]:
    """Train every stage in order; when resuming, keep finished stages and resume the interrupted one.

    Returns:
        (stage records, the stages resumed with the epoch they resumed from).
    """
    records: list[dict] = []
    resumed: list[dict] = []
    facts: dict = {}
    for stage in plan.stages:
        ckpt = last_checkpoint(stage) if resume else None
        partial = ckpt is not None and ckpt.get("optimizer") is not None and ckpt.get("epoch", -1) >= 0
        if ckpt is not None and not partial:  # this stage had finished before the interruption
            metrics, facts = finished_stage(ckpt)
        else:
            stage = _continued(stage, plan, facts)
            last = stage.save_dir / "weights" / "last.pt" if partial else None
            if partial:
                resumed.append({"stage": stage.name, "from_epoch": ckpt["epoch"] + 2})  # 1-based, as logged
            metrics, facts = fit(stage, plan.arch, data_yaml, callbacks, resume_from=last)
        records.append(stage_record(stage, metrics, facts))
    return records, resumed


def score_test_split(cfg: DictConfig, best: Path, data_yaml: Path, args_yaml: Path) -> dict[str, Any] | None:
    """``eval.test_after_train``: best.pt scored on the data's test split, with 95% intervals.

    None when it is off or the data has no test split; a test split that cannot be scored (no
    labelled box) is recorded as skipped, with why: training finished, and that stays so.
    """
    ev = cfg.get("eval")
    if (
        not ev
        or not ev.get("test_after_train")
        or "test" not in (yaml.safe_load(data_yaml.read_text()) or {})
    ):
        return None
    from detector.data.spec import load
    from detector.eval.run import evaluate_weights, operating_settings
    from detector.eval.splits import split

    try:
        split(load(data_yaml, strict=False), "test")
        boot = operating_settings(ev)["bootstrap"]
    except DetectorError as e:
        log.warning("test split not scored: %s", e)
        return {"split": "test", "skipped": str(e)}
    imgsz = yaml.safe_load(args_yaml.read_text())["imgsz"]  # what Ultralytics trained at
    doc = evaluate_weights(best, data_yaml, "test", imgsz, boot, work=best.parent.parent)
    return {"split": "test", "weights": str(best), **doc}


def training_data(cfg: DictConfig, plan: planning.Plan, resume: bool) -> tuple[Path, dict | None]:
    """Stage what the run trains on (the dataset, or its tiles from the cache) as a read-only view.

    Returns:
        (the staged data.yaml, the tile record for the summary; None when not tiling).
    """
    staged = plan.run_dir / "data" / "data.yaml"
    record = None
    data = plan.data
    if plan.tile is not None:  # the tiled copy is made once per source content and settings, then reused
        record = tiles.cached(plan.data, plan.tile, cfg.paths.tiles_dir, plan.data_report.fingerprint)
        record = {**record, "predict": plan.tile["predict"]}
        data = specs.load(record["data_yaml"])
        log.info(
            "training on %s tiles from %s", sum(c["tiles"] for c in record["counts"].values()), data.root
        )
    if resume and staged.is_file():
        return staged, record
    return stage_data(data, plan.run_dir / "data"), record


def run(
    cfg: DictConfig, run_dir: str | Path, callbacks: Callbacks = (), resume: bool = False
) -> dict[str, Any]:
    """Fine-tune as ``cfg`` says, in ``run_dir``; returns the summary (also saved as summary.json).

    Args:
        cfg: The composed config (see ``configs/train.yaml``).
        run_dir: The run folder (Hydra's output folder).
        callbacks: Extra Ultralytics callbacks, one event -> function dict per source, added to every stage.
        resume: Continue the interrupted run in ``run_dir`` (``cfg`` from
            :func:`detector.train.rundir.load_run_config`): finished stages are kept, the interrupted
            one resumes from its last.pt with the same augmentations, later ones start as planned.

    Raises:
        DetectorError: On bad input, before training starts.
    """
    t0 = time.time()
    run_dir = Path(run_dir).resolve()
    inputs = planning.check_inputs(cfg)  # typos and broken datasets fail here, before torch is imported
    runtime.configure(weights_dir=cfg.paths.weights_dir)
    plan = planning.build(cfg, run_dir, inputs)
    for w in plan.warnings:
        log.warning(w)
    data_yaml, tile = training_data(cfg, plan, resume)
    stages, resumed = _train_stages(plan, data_yaml, callbacks, resume)
    best = run_dir / "weights" / "best.pt"
    test = score_test_split(cfg, best, data_yaml, Path(stages[-1]["dir"]) / "args.yaml")
    summary = rundir.summary(
        plan,
        stages,
        {
            "augment": {  # albumentations' own A.to_dict; null = Ultralytics' default pipeline
                "configured": augment.to_dict(plan.stages[0].train.get("augmentations")),
                "applied": stages[-1].get("augment_applied"),  # read off the last stage's dataloader
            },
            **({"resumed": resumed} if resume else {}),
            **({"test": test} if test else {}),  # apart from "metrics" (val, which chose best.pt)
            "tile": tile,  # null: trained on whole images
            "config": OmegaConf.to_container(cfg, resolve=True),
            "versions": provenance.versions(),
            "command": " ".join(sys.argv),
            "wall_time_s": round(time.time() - t0, 2),
        },
    )
    summary = redact.value(summary)  # no password or API key is written, nor handed on
    write_json(run_dir / rundir.SUMMARY, summary)
    return summary
