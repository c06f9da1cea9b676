"""``finetune.layer_lr``: discriminative learning rates, a multiple of lr0 per section of the model.

``{backbone: 0.3}`` trains the YAML's ``backbone:`` layers at 0.3 x lr0 and the rest at lr0; ``neck``
is every later layer but the detection head, ``head`` the last layer. A section left out keeps 1.

Ultralytics builds one optimizer with three parameter groups (weights with decay, norm weights,
biases), each tagged ``param_group``. Each is split by section here, keeping its tag and settings,
inside ``build_optimizer`` itself: the lr scheduler, which Ultralytics builds next, then takes each
group's own lr as its base, warm-up ramps every group to it (biases by their tag, as before), and a
resumed run's saved optimizer state matches the groups it is loaded into.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detector.errors import DetectorError
from detector.train.freeze import Layout

SECTIONS = ("backbone", "neck", "head")


def resolve(setting: Any) -> dict[str, float] | None:
    """Validate ``finetune.layer_lr`` (``null`` or ``{section: multiple}``); returns it as floats."""
    if setting is None:
        return None
    if not isinstance(setting, dict) or not setting or set(setting) - set(SECTIONS):
        raise DetectorError(
            f"finetune.layer_lr={setting!r}: give lr multiples for any of {', '.join(SECTIONS)}, e.g. "
            "finetune.layer_lr={backbone:0.3}, or null for one lr everywhere."
        )
    try:
        scales = {k: float(v) for k, v in setting.items()}
    except (TypeError, ValueError) as e:
        raise DetectorError(f"finetune.layer_lr={setting!r}: the multiples must be numbers.") from e
    if not all(v > 0 for v in scales.values()):
        raise DetectorError(
            f"finetune.layer_lr={setting!r}: multiples must be above 0; to stop a section training, "
            "freeze it (finetune.freeze) instead."
        )
    return scales


def per_layer(scales: dict[str, float], layout: Layout) -> list[float]:
    """The lr multiple of each layer index of the model."""
    head = layout.total - 1
    section = ["backbone"] * layout.backbone + ["neck"] * (head - layout.backbone) + ["head"]
    return [scales.get(s, 1.0) for s in section]


def split(optimizer, model, multiples: list[float]) -> None:
    """Split ``optimizer``'s parameter groups in place so each layer's parameters get lr x its multiple.

    ``model`` is the Ultralytics model (``model.model`` is its layer list). A group is split only
    where its parameters' multiples differ; each part keeps the group's settings and tag.
    """
    multiple = {id(p): multiples[i] for i, layer in enumerate(model.model) for p in layer.parameters()}
    groups = []
    for group in optimizer.param_groups:
        parts: dict[float, list] = {}
        for p in group["params"]:
            parts.setdefault(multiple.get(id(p), 1.0), []).append(p)
        settings = {k: v for k, v in group.items() if k != "params"}
        groups += [{**settings, "params": ps, "lr": group["lr"] * m} for m, ps in parts.items()]
    optimizer.param_groups.clear()
    for group in groups:
        optimizer.add_param_group(group)


def callbacks(multiples: list[float] | None) -> dict[str, Callable[[Any], None]]:
    """Ultralytics callbacks, event -> function, that give the trainer's optimizer these per-layer lr multiples.

    Ultralytics runs ``on_pretrain_routine_start`` on one process only, so under DDP the GPUs would get
    different groups; :mod:`detector.train.devices` refuses multi-device runs before that can happen.
    """
    if multiples is None:
        return {}

    def install(trainer) -> None:
        build = trainer.build_optimizer

        def build_split(model, *args, **kwargs):
            from ultralytics.utils.torch_utils import unwrap_model

            optimizer = build(model, *args, **kwargs)
            split(optimizer, unwrap_model(model), multiples)
            return optimizer

        trainer.build_optimizer = build_split

    return {"on_pretrain_routine_start": install}
