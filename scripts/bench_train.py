"""Training speed, each figure a ratio against a baseline measured in the same run.

- wrapper overhead: seconds per epoch of ``detector-train`` against plain ``yolo train`` with the
  same effective arguments, data and seed (target: ratio plain/ours >= 0.97);
- frozen-backbone speed-up: ``finetune=backbone`` against ``finetune=none``;
- data loading: ``cache=ram`` against disk, and 2 dataloader workers against the 0 that
  Ultralytics forces on CPU (trainer.py sets ``workers = 0``; a callback lifts it afterwards).

Seconds per epoch are the median of Ultralytics' per-epoch times (results.csv) after the first.

    python scripts/bench_train.py                  # solar subset of 200 images, 320 px, 3 epochs
    python scripts/bench_train.py --levers cache   # time one lever only (its two cases)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchlib import COCO_SEG, DATASETS, ROOT, WORK, env, epoch_seconds, run_detector, run_plain, save, subset

# Plain Ultralytics with workers forced back up after the trainer set them to 0 on CPU.
_WORKERS = """
import sys
from ultralytics import YOLO
data, imgsz, epochs, workers, project, name, ckpt = sys.argv[1:8]
m = YOLO("yolo11n.yaml")
m.add_callback("on_pretrain_routine_start", lambda tr: setattr(tr.args, "workers", int(workers)))
m.train(data=data, imgsz=int(imgsz), epochs=int(epochs), pretrained=ckpt, seed=0, val=False, plots=False,
        project=project, name=name, exist_ok=True)
"""


def _plain_workers(workers: int, data: Path, args, out: Path) -> Path:
    argv = [
        str(data),
        str(args.imgsz),
        str(args.epochs),
        str(workers),
        str(out.parent),
        out.name,
        str(COCO_SEG),
    ]
    subprocess.run(
        [sys.executable, "-c", _WORKERS, *argv], check=True, capture_output=True, env=env(), cwd=ROOT
    )
    return out


# lever -> (figure, (baseline case, its label), (contender case, its label)); the cases are timed once each
LEVERS = {
    "overhead": ("wrapper overhead", ("plain", "plain yolo train"), ("ours", "detector-train")),
    "frozen": ("frozen backbone", ("ours", "finetune=none"), ("frozen", "finetune=backbone")),
    "cache": ("cache", ("ours", "disk"), ("ram", "cache=ram")),
    "workers": ("CPU workers", ("workers0", "workers=0 (forced)"), ("workers2", "workers=2")),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="solar", choices=sorted(DATASETS))
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--levers", default=",".join(LEVERS), help=f"comma list of {list(LEVERS)}")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "train.json")
    p.add_argument("--work", type=Path, default=WORK, help="scratch folder for subsets and runs")
    args = p.parse_args()
    levers = [LEVERS[k] for k in args.levers.split(",")]
    work = args.work
    data = subset(args.dataset, args.n_train, 0, work / "data")
    runs = work / "runs"
    tag = time.time_ns()
    common = {"imgsz": args.imgsz, "epochs": args.epochs, "seed": 0, "val": False, "plots": False}
    ours_base = ["data=custom", f"data.yaml={data}", "model=yolo11n_coco", "name=bench_train"]
    ours_base += [f"train.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in common.items()]

    def ours(*extra: str) -> float:
        return epoch_seconds(run_detector([*ours_base, *extra], runs)[0])

    plain = {"model": "yolo11n.yaml", "pretrained": COCO_SEG, "data": data, **common}
    cases = {
        "plain": lambda: epoch_seconds(run_plain(plain, runs / f"plain_{tag}")[0]),
        "ours": lambda: ours("finetune=none"),
        "frozen": lambda: ours("finetune=backbone"),
        "ram": lambda: ours("finetune=none", "train.cache=ram"),
        "workers0": lambda: epoch_seconds(_plain_workers(0, data, args, runs / f"w0_{tag}")),
        "workers2": lambda: epoch_seconds(_plain_workers(2, data, args, runs / f"w2_{tag}")),
    }
    wanted = list(dict.fromkeys(case for _, *pair in levers for case, _ in pair))
    s = {case: cases[case]() for case in wanted}
    rows = [
        [figure, b_label, f"{s[b]:.1f}", c_label, f"{s[c]:.1f}", round(s[b] / s[c], 3)]
        for figure, (b, b_label), (c, c_label) in levers
    ]
    results = {"settings": {k: str(v) for k, v in vars(args).items()}, "seconds_per_epoch": s,
               "ratios": {r[0]: r[-1] for r in rows}}  # fmt: skip
    save(
        results,
        args.out,
        rows,
        ["figure", "baseline", "s/epoch", "contender", "s/epoch", "speed ratio (baseline/contender)"],
    )


if __name__ == "__main__":
    main()
