"""Turn ``finetune.freeze`` into the exact list of layer indices Ultralytics freezes.

Presets come from the model's own YAML, not hard-coded numbers: ``backbone`` is every layer
of the YAML's ``backbone:`` section (0-10 for YOLO11 and YOLO26, where Ultralytics' common
``freeze=10`` leaves C2PSA at index 10 trainable), and ``neck`` is every layer but the head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detector.errors import DetectorError


@dataclass(frozen=True)
class Layout:
    """Layer counts of a model YAML."""

    backbone: int  # layers 0..backbone-1
    total: int  # backbone + head sections; the last layer is the detection head

    @classmethod
    def from_yaml(cls, arch: str) -> Layout:
        """Read the ``backbone:``/``head:`` sections of an Ultralytics model YAML (name or path)."""
        from ultralytics.nn.tasks import yaml_model_load

        try:
            d = yaml_model_load(arch)
        except (FileNotFoundError, OSError) as e:
            raise DetectorError(
                f"Unknown model architecture {arch!r}: {e}. Use an Ultralytics model YAML such as "
                "yolo26n.yaml or yolo11s.yaml, or a path to your own."
            ) from e
        if "backbone" not in d or "head" not in d:
            raise DetectorError(f"{arch} is not a model YAML: it needs `backbone:` and `head:` sections.")
        return cls(backbone=len(d["backbone"]), total=len(d["backbone"]) + len(d["head"]))


def resolve(freeze: str | int | Sequence[int] | None, layout: Layout) -> list[int]:
    """Resolve a freeze setting to sorted layer indices.

    Args:
        freeze: ``none``/None, ``backbone``, ``neck``, an int N (layers 0..N-1), or indices.
        layout: The model's layer counts.

    Raises:
        DetectorError: Unknown preset, or an index outside the model (or one that would
            freeze the detection head, leaving nothing to train).
    """
    head = layout.total - 1
    if freeze is None or freeze == "none" or freeze is False:
        return []
    if freeze == "backbone":
        return list(range(layout.backbone))
    if freeze == "neck":
        return list(range(head))
    if isinstance(freeze, str):
        raise DetectorError(
            f"finetune.freeze={freeze!r}: use none, backbone, neck, an int N, or [i, j, ...]."
        )
    if isinstance(freeze, int):
        if not 0 <= freeze <= head:
            raise DetectorError(
                f"finetune.freeze={freeze} but the model has {layout.total} layers (head is {head}); "
                f"use 0..{head} (backbone={layout.backbone}, neck={head})."
            )
        return list(range(freeze))
    indices = sorted({int(i) for i in freeze})
    bad = [i for i in indices if not 0 <= i < head]
    if bad:
        raise DetectorError(
            f"finetune.freeze lists layer(s) {bad} outside 0..{head - 1}: the model has {layout.total} "
            f"layers and the detection head ({head}) must stay trainable."
        )
    return indices
