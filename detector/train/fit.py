"""One stage of a plan through Ultralytics' ``YOLO.train``, and what the trainer reveals while it runs.

The facts a run summary records about the model (tensors transferred, frozen and trainable
parameters, the optimizer ``optimizer=auto`` picked, the augmentation pipeline the dataloader
really runs) are read off the built trainer just before its first epoch, not from our config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from detector import runtime
from detector.errors import DetectorError
from detector.safeload import CheckpointError
from detector.train import augment, balance, ema, layer_lr, rundir
from detector.train.plan import Stage
from detector.train.weights import load_checkpoint

log = logging.getLogger(__name__)

Callbacks = Sequence[dict[str, Callable]]  # Ultralytics callbacks, event -> function, from each source


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


def _applied_pipeline(trainer) -> dict | None:
    """albumentations' serialisation of the pipeline the training dataloader really runs."""
    pipe = augment.applied(trainer.train_loader.dataset)
    return runtime.albumentations().to_dict(pipe) if pipe is not None else None


def _train_kwargs(stage: Stage, data_yaml: Path, resume_from: Path | None) -> dict[str, Any]:
    """What ``YOLO.train`` is called with: the stage's keys, or a resume of its last.pt."""
    if resume_from:
        # Ultralytics rebuilds everything from the checkpoint's train_args. 8.4.190 stores the pipeline
        # there as A.to_dict dicts; passing the one rebuilt from the run's config (an allowed resume
        # override) keeps our config the source of truth, also for checkpoints that lack it.
        aug = {"augmentations": stage.train["augmentations"]} if "augmentations" in stage.train else {}
        return {"resume": True, "data": str(data_yaml), "save_dir": str(stage.save_dir), **aug}
    return {
        "data": str(data_yaml),
        "project": str(stage.save_dir.parent),
        "name": stage.save_dir.name,
        "exist_ok": True,
        "pretrained": str(stage.init) if stage.init else False,
        "freeze": stage.freeze,
        **stage.train,
    }


def fit(
    stage: Stage, arch: str, data_yaml: Path, callbacks: Callbacks = (), resume_from: Path | None = None
) -> tuple[dict, dict]:
    """Train one stage, or resume it from ``resume_from`` (its last.pt).

    Args:
        stage: The stage to train.
        arch: The model YAML (ignored when resuming: the checkpoint holds the model).
        data_yaml: The staged dataset.
        callbacks: Extra Ultralytics callbacks; every event of each dict is added, in order.
        resume_from: The stage's interrupted ``weights/last.pt``.

    Returns:
        (final metrics of the stage's best weights, model facts).
    """
    from ultralytics import YOLO

    facts: dict[str, Any] = {}
    source = load_checkpoint(stage.init).state_dict() if stage.init else None

    def collect(trainer) -> None:
        facts.update(_model_facts(trainer, source), augment_applied=_applied_pipeline(trainer))
        if source is not None and (warning := rundir.transfer_warning(facts)):
            log.warning(warning)
        facts["balance"] = balance.record(trainer, stage.balance)  # the sampler the loader really holds

    model = YOLO(str(resume_from) if resume_from else arch, task="detect")
    model.add_callback("on_pretrain_routine_end", collect)
    own = [ema.callbacks(stage.ema), layer_lr.callbacks(stage.lr_multiples), balance.callbacks(stage.balance)]
    for group in [*callbacks, *own]:
        for event, fn in group.items():
            model.add_callback(event, fn)
    result = model.train(**_train_kwargs(stage, data_yaml, resume_from))
    return rundir.metrics(getattr(result, "results_dict", None)), facts


def last_checkpoint(stage: Stage) -> dict | None:
    """The stage's ``weights/last.pt`` as a dict, or None when the stage never saved one.

    Raises:
        DetectorError: The file cannot be loaded (truncated by a crash, say), naming it and the way on.
    """
    last = stage.save_dir / "weights" / "last.pt"
    if not last.is_file():
        return None
    from ultralytics.utils.patches import torch_load

    try:
        return torch_load(last, map_location="cpu")
    except CheckpointError as e:
        best = stage.save_dir / "weights" / "best.pt"
        raise DetectorError(
            f"Cannot resume from {last}: {e} Start a new run from the weights it saved before, e.g. "
            f"model.weights={best if best.is_file() else stage.save_dir / 'weights' / '<a .pt that loads>'}."
        ) from e


def finished_stage(ckpt: dict) -> tuple[dict, dict]:
    """Metrics and optimizer facts of a stage that completed before the run was interrupted."""
    args = ckpt.get("train_args") or {}
    return rundir.metrics(ckpt.get("train_metrics")), {
        "optimizer": args.get("optimizer"),
        "lr0": args.get("lr0"),
        "finished_before_resume": True,
    }
