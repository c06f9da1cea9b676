"""Shared plumbing for the training benchmarks: subsets, runs of both tools, evaluation, output.

Every benchmark compares ``detector-train`` with plain ``yolo train`` in the same process tree,
on the same staged data, so each figure is a ratio against a baseline measured in the same run.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from detector import io, runtime
from detector.data import spec as data_spec
from detector.data.stage import stage

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DETECTOR_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = {
    "sample": ROOT / "datasets" / "sample" / "data.yaml",
    "solar": SHARED / "solar_pv_gray416" / "data.yaml",
    "deeppcb": SHARED / "deeppcb" / "data.yaml",
}
COCO_SEG = ROOT / "detector" / "bundled" / "yolo11n-seg.pt"  # the COCO checkpoint that ships with detector
WORK = ROOT / "benchmarks" / "tmp"  # scratch: staged subsets and runs (git-ignored); --work moves it


def env() -> dict[str, str]:
    """The environment both tools run in: offline, project config dir, no auto-install."""
    runtime.configure()
    return {**os.environ, "YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false"}


def subset(name: str, n_train: int, seed: int, out: Path) -> Path:
    """Stage a seeded ``n_train``-image subset of a dataset's train split with its full val split.

    The staged folder holds symlinks, so neither tool can write into the shared data.
    """
    target = out / f"{name}_{n_train}_s{seed}"
    if (target / "data.yaml").exists():
        return target / "data.yaml"
    spec = data_spec.load(DATASETS[name])
    if n_train and n_train < len(spec.splits["train"]):
        spec.splits["train"] = sorted(random.Random(seed).sample(spec.splits["train"], n_train))
    spec.splits.pop("test", None)
    return stage(spec, target)


def _last_dir(stdout: str) -> Path:
    return Path(stdout.strip().splitlines()[-1])


def _python(code: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``python -c code args`` in the benchmark environment; returns (result, wall seconds)."""
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env(), cwd=ROOT
    )
    return res, time.perf_counter() - t


def run_detector(overrides: list[str], runs_dir: Path) -> tuple[Path, float]:
    """Run ``detector-train`` with ``overrides``; returns (run folder, wall seconds)."""
    code = "import sys; from detector.cli import train; sys.argv[0] = 'detector-train'; train()"
    res, wall = _python(code, f"paths.runs_dir={runs_dir}", *overrides)
    if res.returncode:
        raise RuntimeError(f"detector-train failed:\n{res.stderr[-3000:]}")
    return _last_dir(res.stdout), wall


def run_plain(args: dict, save_dir: Path) -> tuple[Path, float]:
    """Run plain ``yolo detect train`` with ``args`` (Ultralytics defaults for everything else)."""
    argv = [f"{k}={v}" for k, v in args.items()]
    argv += [f"project={save_dir.parent}", f"name={save_dir.name}", "exist_ok=True"]
    res, wall = _python("from ultralytics.cfg import entrypoint; entrypoint()", "detect", "train", *argv)
    if res.returncode:
        raise RuntimeError(f"yolo train failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return save_dir, wall


def epoch_seconds(run_dir: Path) -> float:
    """Median seconds per epoch from Ultralytics' results.csv (its cumulative ``time`` column).

    The first epoch (start-up) and the last (it also validates) are left out, so run >= 3 epochs.
    """
    with open(run_dir / "results.csv") as f:
        times = [float(r["time"]) for r in csv.DictReader(f)]
    deltas = [b - a for a, b in itertools.pairwise(times)][:-1] or [times[-1] / len(times)]
    return sorted(deltas)[len(deltas) // 2]


# Intervals: configs/eval/default.yaml's bootstrap (1000 resamples over images, seed 0, 95%).
def bootstrap_settings() -> dict:
    """``eval.bootstrap`` of the eval config, the same settings detector-eval uses."""
    from detector import config

    return dict(config.compose("eval", []).eval.bootstrap)


def evaluate(weights: Path, data_yaml: Path, imgsz: int, work: Path, split: str = "val"):
    """Score ``weights`` on ``split`` the same way for every contender: one Ultralytics val pass (batch
    16, plots off) through detector-eval's engine, with 95% bootstrap intervals over images.

    Returns:
        (the row's figures: mAP50 and mAP50-95 with intervals, per-class mAP50-95; the pass's stats,
        for paired comparisons on the same images).
    """
    from detector.eval.bootstrap import bootstrap
    from detector.eval.run import pass_stats, summarise

    work.mkdir(parents=True, exist_ok=True)
    stats = pass_stats(weights, data_yaml, split, imgsz, {"batch": 16}, work)
    doc = summarise(stats, bootstrap(stats, **bootstrap_settings()))
    ov = doc["overall"]
    row = {k: ov[k]["value"] for k in ("mAP50", "mAP50-95")}
    row |= {f"{k}_ci": [ov[k]["low"], ov[k]["high"]] for k in ("mAP50", "mAP50-95")}
    row["per_class_mAP50-95"] = {c: m["mAP50-95"] for c, m in doc["per_class"].items()}
    row |= {"scored_on": split, "images": doc["images"], "weights": str(weights)}
    return row, stats


def differing(doc: dict, args, keys: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """The settings among ``keys`` where an earlier result file differs from this run's ``args``."""
    return {
        k: (doc["settings"][k], str(getattr(args, k)))
        for k in keys
        if doc["settings"][k] != str(getattr(args, k))
    }


def save(results: dict, out: Path, table: list[list], header: list[str], echo: bool = True) -> None:
    """Write ``results`` as JSON and a short Markdown table, each atomically; print the table if ``echo``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + " |"
        for row in [header, *table]
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text = "\n".join(lines)
    io.write_text(out, json.dumps(results, indent=2) + "\n")
    io.write_text(out.with_suffix(".md"), text + "\n")
    if not echo:
        return
    print(text)
    print(f"\nsaved {out} and {out.with_suffix('.md')}")
