"""Pruning pays: the same sweep (space, seed, trial count) with and without a pruner.

Both sweeps run ``detector-sweep`` on the same seeded subset of a real dataset, from the
COCO-pretrained YOLO11n-seg checkpoint transferred into ``yolo11n.yaml``. Reported for each:
the epochs trained over all trials, the trials pruned, the best val mAP50-95 and wall time;
then the pruned sweep's figures as ratios of the unpruned one's, measured in the same run.
Target (issue 4): at least 35% fewer epochs, best trial within 10% (relative) of the unpruned best.

    DETECTOR_SHARED_DATA=/path/to/shared/data python scripts/bench_sweep.py
    python scripts/bench_sweep.py --dataset solar --n-train 200 --imgsz 160 --epochs 4 --trials 12
    # another pruner setting against an earlier run's unpruned sweep (same space, seed, data, epochs):
    python scripts/bench_sweep.py --pruner-args "{n_startup_trials: 4, n_warmup_steps: 1}" --baseline benchmarks/sweep.json

The unpruned sweep is deterministic (fixed sampler seed, deterministic CPU training), which is
what makes ``--baseline`` reuse sound; the settings that define it must match or it refuses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
from benchlib import DATASETS, ROOT, WORK, differing, env, save, subset

SWEEP = "import sys; from detector.cli import sweep; sys.argv[0] = 'detector-sweep'; sweep()"
SAME = (
    "dataset",
    "n_train",
    "imgsz",
    "epochs",
    "trials",
    "seed",
    "model",
    "space",
)  # define the unpruned sweep


def baseline(path: Path, args) -> dict:
    """The unpruned run of an earlier result file, if it was made with the same settings."""
    doc = json.loads(path.read_text())
    if differ := differing(doc, args, SAME):
        raise SystemExit(f"--baseline {path} was made with other settings: {differ}")
    return next(r for r in doc["runs"] if r["mode"] == "unpruned")


def run_sweep(mode: str, pruner: str, args, data: Path, work: Path) -> dict:
    """One sweep; returns its figures read back from the study."""
    name = f"bench_{mode}_{time.strftime('%Y%m%d_%H%M%S')}"
    overrides = [
        "data=custom", f"data.yaml={data}", f"model={args.model}", f"hparams_search={args.space}",
        f"hparams_search.pruner={pruner}", f"++hparams_search.pruner_args={args.pruner_args if pruner != 'none' else '{}'}",
        f"train.epochs={args.epochs}", f"train.imgsz={args.imgsz}", "train.plots=false",
        f"sweep.n_trials={args.trials}", f"sweep.seed={args.seed}", f"sweep.study_name={name}",
        "sweep.plots=false", f"paths.runs_dir={work}",
    ]  # fmt: skip
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", SWEEP, *overrides], capture_output=True, text=True, env=env(), cwd=ROOT
    )
    wall = time.perf_counter() - t
    if res.returncode:
        raise RuntimeError(f"detector-sweep ({mode}) failed:\n{res.stderr[-3000:]}")
    sweep_dir = Path(res.stdout.strip().splitlines()[-1])
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'study.db'}")
    trials = [t for t in study.trials if t.state.is_finished()]
    return {
        "mode": mode,
        "pruner": pruner,
        "trials": len(trials),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "epochs": sum(int(t.user_attrs.get("epochs", 0)) for t in trials),
        "best_mAP50-95": study.best_value,
        "best_params": study.best_params,
        "wall_s": round(wall, 1),
        "sweep_dir": str(sweep_dir),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="solar", help=f"one of {sorted(DATASETS)}")
    p.add_argument(
        "--n-train", type=int, default=200, help="seeded train subset size (0 = all); val is kept whole"
    )
    p.add_argument("--imgsz", type=int, default=160)
    p.add_argument("--epochs", type=int, default=4, help="epochs per trial")
    p.add_argument("--trials", type=int, default=12, help="finished trials per sweep (the issue asks >= 12)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed, the same for both sweeps")
    p.add_argument("--model", default="yolo11n_coco", help="model config option (a real pretrained one)")
    p.add_argument("--space", default="default", help="hparams_search option")
    p.add_argument("--pruner", default="median")
    p.add_argument("--pruner-args", default="{n_startup_trials: 4, n_warmup_steps: 0}", help="Hydra dict")
    p.add_argument("--baseline", type=Path, help="reuse the unpruned sweep of this earlier result file")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "sweep.json")
    p.add_argument("--work", type=Path, default=WORK, help="scratch folder for subsets and runs")
    args = p.parse_args()
    work = args.work
    data = subset(args.dataset, args.n_train, args.seed, work / "data")
    base = baseline(args.baseline, args) if args.baseline else run_sweep("unpruned", "none", args, data, work)
    pruned = run_sweep("pruned", args.pruner, args, data, work)
    ratios = {
        "epochs (pruned / unpruned)": round(pruned["epochs"] / base["epochs"], 3),
        "best mAP50-95 (pruned / unpruned)": round(pruned["best_mAP50-95"] / base["best_mAP50-95"], 3)
        if base["best_mAP50-95"]
        else None,
        "wall (pruned / unpruned)": round(pruned["wall_s"] / base["wall_s"], 3),
    }
    target = {
        "fewer_epochs_>=35%": ratios["epochs (pruned / unpruned)"] <= 0.65,
        "best_within_10%": ratios["best mAP50-95 (pruned / unpruned)"] is not None
        and ratios["best mAP50-95 (pruned / unpruned)"] >= 0.9,
    }
    results = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "runs": [base, pruned],
        "ratios": ratios,
    }
    results["target_met"] = target
    table = [
        [
            r["mode"],
            r["pruner"],
            r["trials"],
            r["pruned"],
            r["epochs"],
            f"{r['best_mAP50-95']:.4f}",
            r["wall_s"],
        ]
        for r in (base, pruned)
    ]
    table.append(["ratio", "", "", "", *(ratios[k] for k in ratios)])
    save(
        results, args.out, table, ["sweep", "pruner", "trials", "pruned", "epochs", "best mAP50-95", "wall s"]
    )
    print(f"target met: {target}")


if __name__ == "__main__":
    main()
