"""Run a plan through Ultralytics and write the run's ``summary.json``."""

from __future__ import annotations

import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detector import augment, ema, layer_lr, runtime
from detector import plan as planning
from detector.data.stage import stage as stage_data
from detector.errors import DetectorError
from detector.files import write_json

log = logging.getLogger(__name__)

# Ultralytics' metric names -> ours.
METRICS = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
}


def _model_facts(trainer, source_state: dict | None) -> dict[str, Any]:
    """Facts read off the built trainer just before its first epoch (after loading and freezing)."""
    from ultralytics.utils.torch_utils import unwrap_model

    model = unwrap_model(trainer.model)
    params = list(model.parameters())
    state = model.state_dict()
    facts = {
        "frozen_params": sum(p.numel() for p in params if not p.requires_grad),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "tensors_total": len(state),
        "optimizer": type(trainer.optimizer).__name__,
        "lr0": trainer.args.lr0,  # optimizer=auto writes its choice here; finetune.layer_lr scales groups from it
    }
    if source_state is not None:  # Ultralytics copies tensors whose name and shape match
        facts["tensors_transferred"] = sum(
            1 for k, v in state.items() if k in source_state and source_state[k].shape == v.shape
        )
    return facts


def _source_state(path: Path | None) -> dict | None:
    if path is None:
        return None
    from detector.weights import load_checkpoint

    return load_checkpoint(path).state_dict()


def _applied_pipeline(trainer) -> dict | None:
    """albumentations' serialisation of the pipeline the training dataloader really runs."""
    import albumentations as A

    pipe = augment.applied(trainer.train_loader.dataset)
    return A.to_dict(pipe) if pipe is not None else None


def _fit(
    stage: planning.Stage, arch: str, data_yaml: Path, callbacks: dict, resume_from: Path | None = None
) -> tuple[dict, dict]:
    """Train one stage, or resume it from ``resume_from`` (its last.pt); returns (final metrics, model facts)."""
    from ultralytics import YOLO

    facts: dict[str, Any] = {}
    source = _source_state(stage.init)

    def collect(trainer) -> None:
        facts.update(_model_facts(trainer, source), augment_applied=_applied_pipeline(trainer))

    model = YOLO(str(resume_from) if resume_from else arch, task="detect")
    model.add_callback("on_pretrain_routine_end", collect)
    ours = [*ema.callbacks(stage.ema).items(), *layer_lr.callbacks(stage.lr_multiples).items()]
    for event, fn in [*callbacks.items(), *ours]:
        model.add_callback(event, fn)
    if resume_from:
        # Ultralytics rebuilds everything from the checkpoint's train_args. 8.4.190 stores the pipeline
        # there as A.to_dict dicts; passing the one rebuilt from the run's config (an allowed resume
        # override) keeps our config the source of truth, also for checkpoints that lack it.
        aug = {"augmentations": stage.train["augmentations"]} if "augmentations" in stage.train else {}
        result = model.train(resume=True, data=str(data_yaml), save_dir=str(stage.save_dir), **aug)
    else:
        result = model.train(
            data=str(data_yaml),
            project=str(stage.save_dir.parent),
            name=stage.save_dir.name,
            exist_ok=True,
            pretrained=str(stage.init) if stage.init else False,
            freeze=stage.freeze,
            **stage.train,
        )
    rd = getattr(result, "results_dict", {}) or {}
    return {ours: float(rd[k]) for k, ours in METRICS.items() if k in rd}, facts


def _checkpoint(stage: planning.Stage) -> dict | None:
    """The stage's ``weights/last.pt`` as a dict, or None when the stage never saved one."""
    last = stage.save_dir / "weights" / "last.pt"
    if not last.is_file():
        return None
    from ultralytics.utils.patches import torch_load

    return torch_load(last, map_location="cpu")


def _finished_stage(ckpt: dict) -> tuple[dict, dict]:
    """Metrics and optimizer facts of a stage that completed before the run was interrupted."""
    tm, args = ckpt.get("train_metrics") or {}, ckpt.get("train_args") or {}
    metrics = {ours: float(tm[k]) for k, ours in METRICS.items() if k in tm}
    return metrics, {
        "optimizer": args.get("optimizer"),
        "lr0": args.get("lr0"),
        "finished_before_resume": True,
    }


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The config an interrupted run was started with (its ``.hydra/config.yaml``), for resuming it.

    Raises:
        DetectorError: Not a run folder, the run already finished, or it saved no checkpoint yet.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    cfg_file = run_dir / ".hydra" / "config.yaml"
    if not cfg_file.is_file():
        raise DetectorError(
            f"resume={run_dir}: not a run folder (no .hydra/config.yaml). Pass the folder that "
            "detector-train printed, e.g. resume=runs/<name>/<timestamp>."
        )
    if (run_dir / "summary.json").exists():
        raise DetectorError(
            f"resume={run_dir}: that run finished (it has summary.json), so there is nothing to resume. "
            f"To train on from its weights, start a new run with model.weights={run_dir}/weights/best.pt."
        )
    if not any((run_dir / sub / "weights" / "last.pt").is_file() for sub in (".", "stage1")):
        raise DetectorError(
            f"resume={run_dir}: the run stopped before it saved a checkpoint (no weights/last.pt); "
            f"start it again with the overrides in {run_dir}/.hydra/overrides.yaml."
        )
    cfg = OmegaConf.load(cfg_file)
    OmegaConf.update(cfg, "resume", str(run_dir), force_add=True)
    return cfg


def _versions() -> dict[str, str]:
    import torch
    import ultralytics

    from detector import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "detector": __version__,
    }


def run(
    cfg: DictConfig, run_dir: str | Path, callbacks: dict | None = None, resume: bool = False
) -> dict[str, Any]:
    """Fine-tune as ``cfg`` says, in ``run_dir``; returns the summary (also saved as summary.json).

    Args:
        cfg: The composed config (see ``configs/train.yaml``).
        run_dir: The run folder (Hydra's output folder).
        callbacks: Extra Ultralytics callbacks, event -> function, added to every stage.
        resume: Continue the interrupted run in ``run_dir`` (``cfg`` from :func:`load_run_config`):
            finished stages are kept, the interrupted one resumes from its last.pt with the same
            augmentations, later ones start as planned.

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
    staged = run_dir / "data" / "data.yaml"
    data_yaml = staged if resume and staged.is_file() else stage_data(plan.data, run_dir / "data")
    stages, facts, metrics, resumed = [], {}, {}, []
    for i, stage in enumerate(plan.stages):
        ckpt = _checkpoint(stage) if resume else None
        partial = ckpt is not None and ckpt.get("optimizer") is not None and ckpt.get("epoch", -1) >= 0
        if ckpt is not None and not partial:  # this stage had finished before the interruption
            metrics, facts = _finished_stage(ckpt)
        else:
            if i and plan.lr_scale is not None:  # continue with stage 1's optimizer, at a lower lr
                stage.train = {
                    **stage.train,
                    "optimizer": facts["optimizer"],
                    "lr0": facts["lr0"] * plan.lr_scale,
                }
            if partial:
                resumed.append({"stage": stage.name, "from_epoch": ckpt["epoch"] + 2})  # 1-based, as logged
            last = stage.save_dir / "weights" / "last.pt" if partial else None
            metrics, facts = _fit(stage, plan.arch, data_yaml, callbacks or {}, resume_from=last)
        stages.append(
            {
                "name": stage.name,
                "dir": str(stage.save_dir),
                "freeze": stage.freeze,
                "ema": stage.ema,
                "layer_lr": stage.lr_multiples,
                "train": {k: v for k, v in stage.train.items() if k != "augmentations"},  # recorded below
                "metrics": metrics,
                **facts,
            }
        )
    first = stages[0]
    configured = plan.stages[0].train.get("augmentations")
    summary = {
        "status": "complete",
        "run_dir": str(run_dir),
        "metrics": metrics,
        "weights": {
            "best": str(run_dir / "weights" / "best.pt"),
            "last": str(run_dir / "weights" / "last.pt"),
        },
        "pretrained": plan.pretrained.found,
        "pretrained_source": {
            "requested": plan.pretrained.requested,
            "path": str(plan.pretrained.path) if plan.pretrained.path else None,
            "source": plan.pretrained.source,
            "sha256": plan.pretrained.sha256,
            "tensors_transferred": first.get("tensors_transferred", 0),
            "tensors_total": first.get("tensors_total"),
        },
        "freeze": {
            "setting": plan.freeze_setting,
            "layers": first["freeze"],
            "frozen_params": first.get("frozen_params"),
            "trainable_params": first.get("trainable_params"),
        },
        "model": {"arch": plan.arch, "backbone_layers": plan.layout.backbone, "layers": plan.layout.total},
        "data": {
            "yaml": str(plan.data.yaml_path),
            "names": plan.data.names,
            "counts": plan.data_report.counts,
            "fingerprint": plan.data_report.fingerprint,  # content hash: detector-data fingerprint
        },
        "augment": {  # albumentations' own A.to_dict; null = Ultralytics' default pipeline
            "configured": augment.to_dict(configured),
            "applied": stages[-1].get("augment_applied"),  # read off the last stage's training dataloader
        },
        "stages": stages,
        **({"resumed": resumed} if resume else {}),
        "warnings": plan.warnings,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "versions": _versions(),
        "command": " ".join(sys.argv),
        "wall_time_s": round(time.time() - t0, 2),
    }
    write_json(run_dir / "summary.json", summary)
    return summary
