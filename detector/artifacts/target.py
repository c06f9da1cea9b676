"""The export config group, resolved and checked: which format, which runtime, which Ultralytics keys.

Keys and the format are checked without importing Ultralytics or torch, so a bad ``export=`` option
fails in about a second; the values then go through Ultralytics' own ``check_cfg``. All of it runs
before training or exporting starts.
"""

from __future__ import annotations

import difflib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detector import config
from detector.errors import DetectorError

PUBLISH = ("name", "tolerance", "latency_runs")  # export.publish: ours, not Ultralytics'


@dataclass(frozen=True)
class Runtime:
    """What runs an exported format, and how to install it."""

    name: str  # as shown in the manifest and the model card
    modules: tuple[str, ...]  # must be importable (checked without importing them)
    dists: tuple[str, ...]  # distributions whose versions go into the manifest
    extra: str | None  # pip extra of this project that installs it; None: a main dependency


FORMATS = {
    "onnx": Runtime("ONNX Runtime", ("onnx", "onnxruntime"), ("onnx", "onnxruntime", "onnxslim"), None),
    "torchscript": Runtime("TorchScript (torch.jit)", ("torch",), ("torch",), None),
    "openvino": Runtime("OpenVINO", ("openvino",), ("openvino",), "openvino"),
    "litert": Runtime(
        "LiteRT", ("litert_torch", "ai_edge_litert"), ("litert-torch", "ai-edge-litert"), "tflite"
    ),
}
ALIASES = {"tflite": "litert"}  # Ultralytics 8.4 renamed tflite to litert
INT8_MODULES = {"openvino": ("nncf",)}  # post-training quantisation needs these on top

# Export keys the app sets itself, or that Ultralytics renamed; refused with a pointer to the fix.
RESERVED = {
    "model": "the run's weights/best.pt is exported; pick the run with run=<run folder> or run=latest",
    "data": "INT8 calibration and the accuracy check use the run's own data (<run>/data/data.yaml)",
    "project": "versions land in paths.artifacts_dir/<export.publish.name>/v<N>/",
    "name": "set the artifact name with export.publish.name=...",
    "exist_ok": "published versions are never overwritten",
    "mode": "the entry point sets it",
    "task": "detector exports detection models",
    "int8": "Ultralytics 8.4 replaced it with export.quantize=8 (or pick export=openvino_int8)",
    "half": "Ultralytics 8.4 replaced it with export.quantize=16",
}


@dataclass
class Target:
    """A resolved, validated export option."""

    format: str
    kwargs: dict[str, Any]  # Ultralytics export() keys, as configured
    runtime: Runtime
    name: str | None  # the artifact name; None: the run's name
    tolerance: float  # mAP50-95 points below PyTorch that still publish
    latency_runs: int  # timed predict calls
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def int8(self) -> bool:
        """Post-training INT8 quantisation (needs calibration data)."""
        return self.kwargs.get("quantize") in (8, "int8")


def _missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def target(node: DictConfig | dict | None) -> Target | None:
    """Validate the ``export`` config group; None when it selects no format (``export=none``).

    Raises:
        DetectorError: An unknown key or format, or a runtime that is not installed.
    """
    cfg = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
    publish = cfg.pop("publish", None) or {}
    if not cfg.get("format"):
        return None
    config.validate("export", cfg, allowed=RESERVED)
    config.check_values("export", {k: v for k, v in cfg.items() if k != "format"})
    publish = {**publish, **config.require(publish, PUBLISH, "export.publish")}
    fmt = ALIASES.get(str(cfg["format"]).lower(), str(cfg["format"]).lower())
    if fmt not in FORMATS:
        close = difflib.get_close_matches(fmt, [*FORMATS, *ALIASES], n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise DetectorError(
            f"Unknown export format {cfg['format']!r}.{hint} detector-export publishes "
            f"{', '.join(sorted([*FORMATS, *ALIASES]))} (pick one with export=onnx|openvino|openvino_int8|"
            "torchscript|tflite, or set export.format=...)."
        )
    rt = FORMATS[fmt]
    t = Target(
        format=fmt,
        kwargs={**cfg, "format": fmt},
        runtime=rt,
        name=publish["name"],
        tolerance=float(publish["tolerance"]),
        latency_runs=int(publish["latency_runs"]),
        config={**cfg, "publish": publish},
    )
    missing = _missing(rt.modules + (INT8_MODULES.get(fmt, ()) if t.int8 else ()))
    if missing:
        how = f'pip install -e ".[{rt.extra}]"' if rt.extra else 'pip install -e "."'
        raise DetectorError(
            f"Export format {fmt} needs {rt.name}, but {', '.join(missing)} is not installed. "
            f"Install it with: {how} (detector never installs packages itself)."
        )
    return t


def export_args(t: Target, imgsz: int | list[int], tiled: bool = False) -> dict[str, Any]:
    """The export() keys used: the configured ones over the run's ``imgsz`` and CPU.

    A run trained on tiles (``tiled``) is exported with ``dynamic=True`` unless ``export.dynamic``
    is set: sliced predict then hands the runtime a whole batch of tiles in one call.
    """
    return {"imgsz": imgsz, "device": "cpu", **({"dynamic": True} if tiled else {}), **t.kwargs}
