"""Refuse multi-device (DDP) training before any work: ``detector-train`` trains on one device.

Ultralytics runs ``device=0,1`` training in worker processes it launches itself (its trainer's
``generate_ddp_command``). What this project does in its own process does not come back from them:
the run summary's metrics and model facts, the W&B run, and callbacks that only Ultralytics' rank 0
runs (``finetune.layer_lr`` would give the GPUs different param groups). Rather than train on
silently without them, we stop and say how to use several GPUs instead.
"""

from __future__ import annotations

from typing import Any

from detector.errors import DetectorError


def names(device: Any) -> list[str]:
    """The devices a ``device`` value asks for, spelled the way Ultralytics' ``parse_device`` reads them.

    ``0``, ``'cuda:1'``, ``'cpu'`` -> one; ``'0,1'``, ``[0, 1]``, ``'-1,-1'`` (two idle GPUs),
    ``'npu:0,1'`` -> several; ``None`` or ``''`` (Ultralytics picks) -> none.
    """
    text = str(device).lower() if device is not None else ""
    for noise in ("cuda:", "npu:", "xpu:", "(", ")", "[", "]", "'", '"', " "):
        text = text.replace(noise, "")
    return [d for d in text.split(",") if d]


def require_one(kwargs: dict[str, Any], where: str = "train") -> None:
    """Raise unless the Ultralytics ``device`` in ``kwargs`` (the ``where`` keys) names at most one device.

    Raises:
        DetectorError: Several devices, naming the one-device and sweep alternatives.
    """
    asked = names(kwargs.get("device"))
    if len(asked) > 1:
        raise DetectorError(
            f"{where}.device={kwargs['device']!r} asks for {len(asked)} devices (multi-GPU DDP training), "
            "but detector-train runs on one device: Ultralytics would train in worker processes that "
            "this run's summary and W&B logging do not reach, and set up finetune.layer_lr on one GPU only. "
            f"Train on one device (train.device={asked[0]}), or use several GPUs at once with a sweep, "
            'one worker per GPU (CUDA_VISIBLE_DEVICES=N detector-sweep ..., see the README\'s "One device per run").'
        )
