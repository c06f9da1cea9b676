"""detector-eval's cost and its intervals: wall time against Ultralytics' own val, interval widths.

For each split (solar val, 85 images; the bundled sample's val, 16 images), in one process, the
same weights through the same runtime (PyTorch), the same imgsz and batch:

- ``YOLO(best.pt).val(split=val, plots=False)`` against ``detector-eval RUN eval.report=false``
  (the pass, 1,000 bootstrap resamples, operating thresholds and their intervals, metrics.json);
- Ultralytics' default val (its plots on) against the full ``detector-eval RUN`` (report.html too).

Runs alternate, and each ratio is the median over ``--reps`` pairs (the cores are shared, and a
val pass alone varies by +-20% from run to run here). Target: <= 1.2x, bootstrap included.

    python scripts/bench_eval.py                   # fine-tunes a model briefly first (solar subset)
    python scripts/bench_eval.py --run runs/x/ts   # an existing detector-train run
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from pathlib import Path

from benchlib import DATASETS, ROOT, WORK, run_detector, save, subset

from detector import config
from detector.provenance import machine


def _brief_run(args, work: Path) -> Path:
    data = subset("solar", args.n_train, 0, work / "data")
    overrides = ["model=yolo11n_coco", "data=custom", f"data.yaml={data}", "name=bench_eval"]
    overrides += [f"train.imgsz={args.imgsz}", f"train.epochs={args.epochs}", "train.plots=false"]
    run, wall = run_detector(overrides, work / "runs")
    print(f"trained {run} in {wall:.0f} s", flush=True)
    return run


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _ultralytics(run: Path, data: Path, imgsz: int, plots: bool, work: Path) -> float:
    from ultralytics import YOLO

    t0 = time.perf_counter()
    YOLO(str(run / "weights" / "best.pt")).val(
        data=str(data),
        split="val",
        imgsz=imgsz,
        plots=plots,
        verbose=False,
        project=str(work),
        name="u",
        exist_ok=True,
    )
    return time.perf_counter() - t0


def _ours(run: Path, data: Path, report: bool, work: Path) -> tuple[float, dict]:
    from detector.review.app import main

    cfg = config.compose(
        "eval",
        [f"models=['{run}']", "data=custom", f"data.yaml={data}", "split=val", f"eval.report={report}"],
    )
    out = work / f"eval_{time.time_ns()}"
    t0 = time.perf_counter()
    with _quiet():
        main(cfg, out)
    return time.perf_counter() - t0, json.loads((out / "metrics.json").read_text())


def bench(name: str, run: Path, data: Path, imgsz: int, reps: int, work: Path) -> dict:
    """Alternating timings on one split, and the widths of the intervals."""
    times: dict[str, list[float]] = {
        "ultralytics": [],
        "ours": [],
        "ultralytics_plots": [],
        "ours_report": [],
    }
    doc: dict = {}
    _ultralytics(run, data, imgsz, False, work)  # warm-up: imports, the label cache, kernels
    for _ in range(reps):
        times["ultralytics"].append(_ultralytics(run, data, imgsz, False, work))
        t, doc = _ours(run, data, False, work)
        times["ours"].append(t)
        times["ultralytics_plots"].append(_ultralytics(run, data, imgsz, True, work))
        times["ours_report"].append(_ours(run, data, True, work)[0])
    ev = doc["models"][0]
    ratio = lambda a, b: round(statistics.median(x / y for x, y in zip(times[a], times[b], strict=True)), 3)  # noqa: E731
    ov = ev["overall"]
    row = {
        "split": name,
        "images": ev["images"],
        "predictions_s": {k: round(statistics.median(v), 2) for k, v in times.items()},
        "ratio (no plots)": ratio("ours", "ultralytics"),
        "ratio (report / Ultralytics' plots)": ratio("ours_report", "ultralytics_plots"),
        "bootstrap_s": ev["bootstrap"]["seconds"],
        "mAP50-95": ov["mAP50-95"],
        "mAP50": ov["mAP50"],
        "width mAP50-95": round(ov["mAP50-95"]["high"] - ov["mAP50-95"]["low"], 4),
        "width mAP50": round(ov["mAP50"]["high"] - ov["mAP50"]["low"], 4),
        "ultralytics mAP50-95": ev["ultralytics"]["metrics/mAP50-95(B)"],
    }
    print(row, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="a finished detector-train run (default: fine-tune one briefly)")
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "eval.json")
    args = p.parse_args()
    work = WORK / "eval"
    run = args.run or _brief_run(args, work)
    splits = {"solar val": run / "data" / "data.yaml", "sample val": DATASETS["sample"]}
    rows = [bench(name, run, data, args.imgsz, args.reps, work) for name, data in splits.items()]
    table = [
        [r["split"], r["images"], r["predictions_s"]["ultralytics"], r["predictions_s"]["ours"], r["ratio (no plots)"],
         r["predictions_s"]["ultralytics_plots"], r["predictions_s"]["ours_report"], r["ratio (report / Ultralytics' plots)"],
         "{value:.3f} [{low:.3f}, {high:.3f}]".format(**r["mAP50-95"]), r["width mAP50-95"], r["width mAP50"]]
        for r in rows
    ]  # fmt: skip
    header = ["split", "images", "Ultralytics val s", "detector-eval s", "ratio", "val + plots s", "eval + report s",
              "ratio", "mAP50-95 [95%]", "width", "width mAP50"]  # fmt: skip
    doc = {"run": str(run), "imgsz": args.imgsz, "reps": args.reps, "machine": machine(), "results": rows}
    save(doc, args.out, table, header)


if __name__ == "__main__":
    main()
