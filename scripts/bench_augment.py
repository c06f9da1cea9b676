"""Cost of the augment group, each figure a ratio against a baseline measured in the same run.

- dataloading: seconds to draw one training epoch from Ultralytics' own training dataloader
  (built as the trainer builds it, workers=0 as Ultralytics forces on CPU) with ``augment=<option>``
  against ``augment=none``. Only the data side is timed: no model runs.
- failing fast: wall seconds of ``detector-train`` refusing a bad pipeline
  (``GaussNoise(var_limit=...)``) against refusing a misspelled train key.

    python scripts/bench_augment.py                    # sample dataset, 320 px, 5 timed epochs per option
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import ROOT, env, save

from detector.config import CONFIG_DIR, passthrough_overrides
from detector.train.preview import training_dataset


def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=passthrough_overrides(list(overrides)))


def _epoch_seconds(loader) -> float:
    t = time.perf_counter()
    for _, _batch in zip(range(len(loader)), loader, strict=False):
        pass
    return time.perf_counter() - t


def dataloading(options: list[str], data: str, imgsz: int, batch: int, epochs: int) -> dict[str, dict]:
    """Seconds per training epoch of dataloading for each augment option (median of ``epochs``)."""
    from ultralytics.data.build import build_dataloader
    from ultralytics.utils.torch_utils import init_seeds

    times: dict[str, list[float]] = {o: [] for o in options}
    with contextlib.ExitStack() as stack:
        loaders, images = {}, 0
        for o in options:
            cfg = _compose(f"data={data}", f"augment={o}", f"train.imgsz={imgsz}", f"train.batch={batch}")
            ds = stack.enter_context(training_dataset(cfg, batch=batch))
            loaders[o], images = build_dataloader(ds, batch, workers=0, shuffle=True), len(ds)
            _epoch_seconds(loaders[o])  # warm-up: file cache, first-call imports
        for _ in range(epochs):  # interleaved, so a busy machine slows every option alike
            for o in options:
                init_seeds(0)
                times[o].append(_epoch_seconds(loaders[o]))
    return {
        o: {
            "median_s": statistics.median(t),
            "ms_per_image": 1000 * statistics.median(t) / images,
            "runs_s": t,
        }
        for o, t in times.items()
    }


def fail_seconds(args: list[str], reps: int) -> float:
    """Median wall seconds for ``detector-train <args>`` to exit with its bad-input status (2)."""
    code = "import sys; from detector.cli import train; sys.argv[0] = 'detector-train'; train()"
    walls = []
    for _ in range(reps):
        t = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env(), cwd=ROOT
        )
        walls.append(time.perf_counter() - t)
        if res.returncode != 2:
            raise RuntimeError(f"expected exit 2 for {args}, got {res.returncode}:\n{res.stderr[-2000:]}")
    return statistics.median(walls)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="sample", help="data group option")
    p.add_argument("--options", nargs="+", default=["none", "ultralytics", "light", "aerial"])
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per option")
    p.add_argument("--reps", type=int, default=3, help="runs of each failing command")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "augment.json")
    args = p.parse_args()
    env()  # Ultralytics configured (offline, project config dir) before it is imported
    options = ["none", *[o for o in args.options if o != "none"]]

    loading = dataloading(options, args.data, args.imgsz, args.batch, args.epochs)
    base = loading["none"]["median_s"]
    rows = [
        [
            f"dataloading, augment={o}",
            "augment=none",
            f"{base:.3f}",
            f"{v['median_s']:.3f}",
            v["median_s"] / base,
        ]
        for o, v in loading.items()
        if o != "none"
    ]
    typo = fail_seconds(["train.imgsze=64"], args.reps)
    bad = fail_seconds(["augment=aerial", "+augment.transforms.7.var_limit=[10,50]"], args.reps)
    rows.append(["fail on bad input", "train key typo", f"{typo:.2f}", f"{bad:.2f}", bad / typo])
    for r in rows:
        r[-1] = round(r[-1], 3)
    results = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "dataloading_s_per_epoch": loading,
        "fail_seconds": {"train key typo": typo, "bad augment pipeline": bad},
        "ratios": {r[0]: r[-1] for r in rows},
    }
    save(
        results,
        args.out,
        rows,
        ["figure", "baseline", "baseline s", "contender s", "ratio (contender/baseline)"],
    )


if __name__ == "__main__":
    main()
