"""What W&B tracking costs, each figure a ratio against ``logger=none`` measured in the same run.

- per epoch: median seconds per epoch (Ultralytics' results.csv, first epoch left out) with
  ``logger=wandb`` (offline) against ``logger=none``: the cost of the per-epoch callbacks;
- whole run: wall time of the whole ``detector-train`` process, which adds starting wandb, the
  predictions table, the plots, the model artifact and finishing the run.

    python scripts/bench_tracking.py               # bundled sample, 64 px, 4 epochs
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchlib import ROOT, WORK, epoch_seconds, run_detector, save


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--imgsz", type=int, default=64)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "tracking.json")
    args = p.parse_args()
    runs = WORK / "runs"
    common = [
        "name=bench_tracking",
        f"train.imgsz={args.imgsz}",
        f"train.epochs={args.epochs}",
        "train.plots=true",
    ]
    measured = {}
    for logger in ("none", "wandb"):
        extra = ["logger.init.mode=offline"] if logger == "wandb" else []
        run_dir, wall = run_detector([*common, f"logger={logger}", *extra], runs)
        measured[logger] = {"seconds_per_epoch": epoch_seconds(run_dir), "wall_s": round(wall, 2)}
    base, ours = measured["none"], measured["wandb"]
    ratios = {
        "per epoch (wandb / none)": round(ours["seconds_per_epoch"] / base["seconds_per_epoch"], 3),
        "whole run (wandb / none)": round(ours["wall_s"] / base["wall_s"], 3),
    }
    rows = [
        ["per epoch", f"{base['seconds_per_epoch']:.2f} s", f"{ours['seconds_per_epoch']:.2f} s"],
        ["whole run", f"{base['wall_s']:.1f} s", f"{ours['wall_s']:.1f} s"],
    ]
    rows = [[*r, v] for r, v in zip(rows, ratios.values(), strict=True)]
    doc = {"settings": vars(args) | {"out": str(args.out)}, "measured": measured, "ratios": ratios}
    save(doc, args.out, rows, ["", "logger=none", "logger=wandb", "ratio"])


if __name__ == "__main__":
    main()
