"""Export a finished run, check the exported file with the runtime a deployer uses, publish it.

The order guarantees that nothing untrustworthy is published: the export config (keys, format,
runtime installed) and the run folder are checked first, in seconds; the file is exported into a
hidden staging folder; it is validated on the run's own val split through its runtime (ONNX
Runtime, OpenVINO, torch.jit, LiteRT) beside the PyTorch weights under the same protocol, and
timed; only if its mAP50-95 is within tolerance does :meth:`detector.artifacts.store.Store.commit`
number and publish it.
"""

from __future__ import annotations

import logging
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from detector import runtime
from detector.artifacts import manifest, store
from detector.artifacts.target import Target, export_args
from detector.errors import DetectorError
from detector.eval.run import choose_thresholds
from detector.eval.stats import EvalStats, collect
from detector.train.rundir import Run, inspect_run

log = logging.getLogger(__name__)

WARMUP = 3  # predict calls before timing: the first ones allocate buffers and pick kernels


def export_file(weights: Path, t: Target, run: Run) -> Path:
    """Export ``weights`` with Ultralytics beside themselves; returns the file (or folder) it made."""
    from ultralytics import YOLO

    kwargs = export_args(t, run.imgsz, run.tile is not None)
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


def evaluate(
    model: Path, run: Run, imgsz: Any, scratch: Path, label: str, device: str
) -> tuple[dict, EvalStats]:
    """mAP50 and mAP50-95 of ``model`` on the run's val split, through the model's own runtime, and
    the pass's per-image statistics (the operating thresholds are chosen from them).

    The same protocol for every format: batch 1, square letterbox (rect=False), Ultralytics'
    default conf 0.001 / iou 0.7, nothing plotted or saved but into ``scratch``.
    """
    kw = {"imgsz": imgsz, "batch": 1, "rect": False, "device": device}
    stats = collect(model, run.data_yaml, "val", **kw, project=str(scratch), name=label, exist_ok=True)
    u = stats.ultralytics
    return {"mAP50": round(u["metrics/mAP50(B)"], 6), "mAP50-95": round(u["metrics/mAP50-95(B)"], 6)}, stats


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


def check(
    best: Path, exported: Path, t: Target, run: Run, scratch: Path
) -> tuple[dict[str, dict], EvalStats]:
    """Validate and time the PyTorch weights and the exported file; refuse a lossy export.

    Returns:
        Metrics per format: ``{"pytorch": {...}, t.format: {..., "drop_points", "passed"}}``, and the
        exported file's per-image statistics on val.

    Raises:
        DetectorError: The exported file's mAP50-95 is more than ``t.tolerance`` points below PyTorch.
    """
    from detector.data.spec import load

    args = export_args(t, run.imgsz, run.tile is not None)
    imgsz, device = args["imgsz"], str(args["device"])
    image = load(run.data_yaml).splits["val"][0]
    metrics, stats = {}, None
    for label, path in (("pytorch", best), (t.format, exported)):
        metrics[label], stats = evaluate(path, run, imgsz, scratch, label, device)
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
    return metrics, stats


def publish(
    run_dir: str | Path,
    t: Target,
    artifacts_dir: str | Path,
    on_stage: Callable[[str, Path], None] | None = None,
    operating: dict | None = None,
) -> store.Version:
    """Export ``run_dir``'s best weights as ``t`` says, check them, and publish the next version.

    Args:
        run_dir: A finished run folder.
        t: The export option (from :func:`detector.artifacts.target.target`).
        artifacts_dir: Where versions live (``paths.artifacts_dir``).
        operating: How to choose per-class thresholds (``detector.eval.run.operating_settings`` of
            the eval group): chosen on the val pass of the exported file through its own runtime and
            stored in the manifest with the figures at them. None stores none (predict then uses its
            ``--conf``).
        on_stage: Called as ``on_stage(stage, path)`` at ``"exported"`` (the exported file, before
            its check), ``"checked"`` (the staging folder, before the lock is taken) and ``"locked"``
            (the sealed folder, just before the rename): the seams tests use to break, line up or
            kill exports.

    Raises:
        DetectorError: Bad run folder, failed export, or an accuracy check that refused the file.
    """
    from detector import safeload

    run = inspect_run(run_dir)
    versions = store.Store(artifacts_dir, t.name or run.name)
    runtime.configure()
    safeload.safe_load(run.best)  # refuse a checkpoint that would run code before staging anything
    with versions.staging() as (stage, scratch):
        best = stage / "weights" / "best.pt"
        best.parent.mkdir()
        shutil.copy2(run.best, best)
        exported = export_file(best, t, run)
        if on_stage:
            on_stage("exported", exported)
        metrics, stats = check(best, exported, t, run, scratch)
        doc = manifest.build(run, t, stage, exported, metrics)
        if operating is not None:  # a target no threshold meets stops here: nothing is published
            doc["thresholds"] = {**choose_thresholds(stats, operating)[0], "runtime": t.runtime.name}
        if on_stage:
            on_stage("checked", stage)
        version = versions.commit(stage, doc, manifest.card, on_stage)
    log.info("published %s", version.path)
    return version
