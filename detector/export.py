"""Export a finished run, check the exported file with the runtime a deployer uses, publish it.

The order guarantees that nothing untrustworthy is published: the export config (keys, format,
runtime installed) and the run folder are checked first, in seconds; the file is exported into a
hidden staging folder; it is validated on the run's own val split through its runtime (ONNX
Runtime, OpenVINO, torch.jit, LiteRT) beside the PyTorch weights under the same protocol, and
timed; only if its mAP50-95 is within tolerance does :meth:`detector.artifacts.Store.commit`
number and publish it.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from detector import artifacts, keys, manifest, runtime
from detector.errors import DetectorError
from detector.runs import Run, inspect_run

log = logging.getLogger(__name__)

WARMUP = 3  # predict calls before timing: the first ones allocate buffers and pick kernels


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
    name: str | None = None
    tolerance: float = 0.5  # mAP50-95 points
    latency_runs: int = 20
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
    keys.validate("export", cfg, allowed=RESERVED)
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
        name=publish.get("name"),
        tolerance=float(publish.get("tolerance", Target.tolerance)),
        latency_runs=int(publish.get("latency_runs", Target.latency_runs)),
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


def export_args(t: Target, run: Run) -> dict[str, Any]:
    """The export() keys used: the configured ones over the run's imgsz and CPU."""
    return {"imgsz": run.imgsz, "device": "cpu", **t.kwargs}


def export_file(weights: Path, t: Target, run: Run) -> Path:
    """Export ``weights`` with Ultralytics beside themselves; returns the file (or folder) it made."""
    from ultralytics import YOLO

    kwargs = export_args(t, run)
    if t.int8:
        kwargs["data"] = str(run.data_yaml)  # calibrate on the run's own data
    try:
        out = YOLO(str(weights), task="detect").export(**kwargs)
    except Exception as e:  # Ultralytics raises AssertionError/ValueError/RuntimeError for bad combinations
        raise DetectorError(f"Ultralytics could not export to {t.format}: {type(e).__name__}: {e}") from e
    path = Path(str(out)).resolve()
    if not path.exists():
        raise DetectorError(f"Ultralytics reported {path} but wrote nothing there.")
    return path


def evaluate(model: Path, run: Run, imgsz: Any, scratch: Path, label: str, device: str) -> dict[str, float]:
    """mAP50 and mAP50-95 of ``model`` on the run's val split, through the model's own runtime.

    The same protocol for every format: batch 1, square letterbox (rect=False), Ultralytics'
    default conf 0.001 / iou 0.7, nothing plotted or saved but into ``scratch``.
    """
    from ultralytics import YOLO

    m = YOLO(str(model), task="detect").val(
        data=str(run.data_yaml),
        imgsz=imgsz,
        batch=1,
        rect=False,
        split="val",
        device=device,
        plots=False,
        verbose=False,
        project=str(scratch),
        name=label,
        exist_ok=True,
    )
    return {"mAP50": round(float(m.box.map50), 6), "mAP50-95": round(float(m.box.map), 6)}


def latency_ms(model: Path, image: Path, imgsz: Any, runs: int, device: str) -> float:
    """Median wall time of one batch-1 ``predict`` call, end to end (pre-process, run, NMS/decode)."""
    import cv2
    from ultralytics import YOLO

    m, img = YOLO(str(model), task="detect"), cv2.imread(str(image))
    times = []
    for i in range(WARMUP + runs):
        t0 = time.perf_counter()
        m.predict(img, imgsz=imgsz, device=device, verbose=False)
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 3)


def check(best: Path, exported: Path, t: Target, run: Run, scratch: Path) -> dict[str, dict]:
    """Validate and time the PyTorch weights and the exported file; refuse a lossy export.

    Returns:
        Metrics per format: ``{"pytorch": {...}, t.format: {..., "drop_points", "passed"}}``.

    Raises:
        DetectorError: The exported file's mAP50-95 is more than ``t.tolerance`` points below PyTorch.
    """
    from detector.data.spec import load

    args = export_args(t, run)
    imgsz, device = args["imgsz"], str(args["device"])
    image = load(run.data_yaml).splits["val"][0]
    metrics = {}
    for label, path in (("pytorch", best), (t.format, exported)):
        metrics[label] = evaluate(path, run, imgsz, scratch, label, device)
        metrics[label]["latency_ms"] = latency_ms(path, image, imgsz, t.latency_runs, device)
    ours, base = metrics[t.format], metrics["pytorch"]
    drop = round((base["mAP50-95"] - ours["mAP50-95"]) * 100, 3)
    ours.update(
        drop_points=drop,
        tolerance_points=t.tolerance,
        passed=drop <= t.tolerance,
        latency_ratio_to_pytorch=round(ours["latency_ms"] / base["latency_ms"], 3),
    )
    if not ours["passed"]:
        raise DetectorError(
            f"Refused to publish the {t.format} export: its mAP50-95 on the run's val split is "
            f"{ours['mAP50-95'] * 100:.2f} against {base['mAP50-95'] * 100:.2f} for the PyTorch weights, "
            f"{drop:.2f} points lower, beyond the tolerance of {t.tolerance} (export.publish.tolerance). "
            "Nothing was published. Check the export keys (quantize, calibration fraction) or, if the "
            "loss is acceptable, raise export.publish.tolerance."
        )
    return metrics


def publish(
    run_dir: str | Path,
    t: Target,
    artifacts_dir: str | Path,
    on_stage: Callable[[str, Path], None] | None = None,
) -> artifacts.Version:
    """Export ``run_dir``'s best weights as ``t`` says, check them, and publish the next version.

    Args:
        run_dir: A finished run folder.
        t: The export option (from :func:`target`).
        artifacts_dir: Where versions live (``paths.artifacts_dir``).
        on_stage: Called as ``on_stage(stage, path)`` at ``"exported"`` (the exported file, before
            its check), ``"checked"`` (the staging folder, before the lock is taken) and ``"locked"``
            (the sealed folder, just before the rename): the seams tests use to break, line up or
            kill exports.

    Raises:
        DetectorError: Bad run folder, failed export, or an accuracy check that refused the file.
    """
    run = inspect_run(run_dir)
    store = artifacts.Store(artifacts_dir, t.name or run.name)
    runtime.configure()
    with store.staging() as (stage, scratch):
        best = stage / "weights" / "best.pt"
        best.parent.mkdir()
        shutil.copy2(run.best, best)
        exported = export_file(best, t, run)
        if on_stage:
            on_stage("exported", exported)
        metrics = check(best, exported, t, run, scratch)
        doc = manifest.build(run, t, stage, exported, metrics)
        if on_stage:
            on_stage("checked", stage)
        version = store.commit(stage, doc, manifest.card, on_stage)
    log.info("published %s", version.path)
    return version
