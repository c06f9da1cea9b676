"""Run a plan through Ultralytics and write the run's ``summary.json``."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detector import plan as planning
from detector import runtime
from detector.data.stage import stage as stage_data

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
        "lr0": trainer.optimizer.param_groups[0].get("initial_lr", trainer.optimizer.param_groups[0]["lr"]),
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


def _fit(stage: planning.Stage, arch: str, data_yaml: Path, callbacks: dict) -> tuple[dict, dict]:
    """Train one stage; returns (final metrics, model facts)."""
    from ultralytics import YOLO

    facts: dict[str, Any] = {}
    source = _source_state(stage.init)
    model = YOLO(arch, task="detect")
    model.add_callback("on_pretrain_routine_end", lambda tr: facts.update(_model_facts(tr, source)))
    for event, fn in callbacks.items():
        model.add_callback(event, fn)
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


def write_json(path: Path, doc: dict) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def run(cfg: DictConfig, run_dir: str | Path, callbacks: dict | None = None) -> dict[str, Any]:
    """Fine-tune as ``cfg`` says, in ``run_dir``; returns the summary (also saved as summary.json).

    Args:
        cfg: The composed config (see ``configs/train.yaml``).
        run_dir: The run folder (Hydra's output folder).
        callbacks: Extra Ultralytics callbacks, event -> function, added to every stage.

    Raises:
        DetectorError: On bad input, before training starts.
    """
    t0 = time.time()
    run_dir = Path(run_dir).resolve()
    planning.check_inputs(cfg)  # typos and broken datasets fail here, before torch is imported
    runtime.configure(weights_dir=cfg.paths.weights_dir)
    plan = planning.build(cfg, run_dir)
    for w in plan.warnings:
        log.warning(w)
    data_yaml = stage_data(plan.data, run_dir / "data")
    stages, facts, metrics = [], {}, {}
    for i, stage in enumerate(plan.stages):
        if i and plan.lr_scale is not None:  # continue with stage 1's optimizer, at a lower lr
            stage.train = {
                **stage.train,
                "optimizer": facts["optimizer"],
                "lr0": facts["lr0"] * plan.lr_scale,
            }
        metrics, facts = _fit(stage, plan.arch, data_yaml, callbacks or {})
        stages.append(
            {
                "name": stage.name,
                "dir": str(stage.save_dir),
                "freeze": stage.freeze,
                "train": stage.train,
                "metrics": metrics,
                **facts,
            }
        )
    first = stages[0]
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
            "frozen_params": first["frozen_params"],
            "trainable_params": first["trainable_params"],
        },
        "model": {"arch": plan.arch, "backbone_layers": plan.layout.backbone, "layers": plan.layout.total},
        "data": {
            "yaml": str(plan.data.yaml_path),
            "names": plan.data.names,
            "counts": plan.data_report.counts,
            "fingerprint": plan.data_report.fingerprint,  # content hash: detector-data fingerprint
        },
        "stages": stages,
        "warnings": plan.warnings,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "versions": _versions(),
        "command": " ".join(sys.argv),
        "wall_time_s": round(time.time() - t0, 2),
    }
    write_json(run_dir / "summary.json", summary)
    return summary
