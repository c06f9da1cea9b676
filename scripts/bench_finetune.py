"""Quality at equal compute: our fine-tune recipe against Ultralytics' defaults.

Both start from the COCO-pretrained YOLO11n-seg checkpoint transferred into ``yolo11n.yaml``,
train on the same seeded subset for the same epochs at the same imgsz and seed, and are scored
the same way: the *last* weights on the full val split. Neither run validates during training
(``val=False``; Ultralytics still validates once at the end), so neither can select weights on
the split it is scored on, and training itself is unchanged by it: for this benchmark the val split
is a held-out test split. Each score comes with a 95% bootstrap interval over its images
(``detector-eval``'s engine, configs/eval/default.yaml), and each contender gets a paired comparison
against Ultralytics' defaults on the same images: per seed, and pooled over the seeds of a cell.

    python scripts/bench_finetune.py                       # solar + deeppcb, E = 10 and 30, seed 0
    python scripts/bench_finetune.py --seeds 0,1           # the same over two subsets/seeds, with means
    python scripts/bench_finetune.py --datasets solar --epochs 10 --variant lr:finetune.train.lr0=0.001
    # more contenders against an earlier run's baselines (same n_train, imgsz and seed):
    python scripts/bench_finetune.py --epochs 10 --baseline benchmarks/finetune.json --variant ...
    # parts run side by side (one per core), then one table:
    python scripts/bench_finetune.py --merge benchmarks/a.json benchmarks/b.json
    # score the weights of an earlier result file again (new protocol, intervals), training nothing:
    python scripts/bench_finetune.py --rescore benchmarks/finetune.json

Plain training is deterministic here (seeded, ``deterministic=True``, CPU): the same seed gave the
same mAP50-95 to 16 digits across sessions, which is what makes ``--baseline`` reuse sound. A
reused row says so (``reused_from``); the settings that define a baseline must match or it is
rerun. Different seeds draw different subsets and differ by far more than that, hence ``--seeds``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from operator import itemgetter
from pathlib import Path

from benchlib import (
    COCO_SEG,
    DATASETS,
    ROOT,
    WORK,
    bootstrap_settings,
    differing,
    evaluate,
    run_detector,
    run_plain,
    save,
    subset,
)

PLAIN = "ultralytics defaults"
STATS: dict[tuple, object] = {}  # (dataset, epochs, seed, contender) -> the score's per-image stats


def _variants(specs: list[str], recipe: str | None) -> dict[str, list[str]]:
    out = {f"detector ({recipe})": [f"finetune={recipe}"]} if recipe else {}
    for s in specs:
        name, _, overrides = s.partition(":")
        extra = [o for o in re.split(r",(?![^{\[]*[}\]])", overrides) if o]  # not inside {} or []
        out[name] = (
            extra
            if any(o.startswith("finetune=") for o in extra)
            else [f"finetune={recipe or 'default'}", *extra]
        )
    return out


SAME = ("n_train", "imgsz")  # with dataset, epochs and seed, these define a baseline


def _rows(path: Path, args) -> tuple[list[dict], dict]:
    """An earlier result file's rows, each with its seed, and the ``SAME`` settings it differs in.

    Files written before ``--seeds`` existed hold their one seed in their settings.
    """
    doc = json.loads(path.read_text())
    seed = doc["settings"].get("seed", -1)
    rows = [r | {"seed": int(r.get("seed", seed))} for r in doc["results"]]
    return rows, differing(doc, args, SAME)


def reused(paths: list[Path], dataset: str, epochs: int, seed: int, args) -> dict | None:
    """The Ultralytics-defaults row of an earlier result file made with the same settings."""
    for path in paths:
        rows, differ = _rows(path, args)
        for r in [] if differ else rows:
            if (r["dataset"], r["epochs"], r["contender"], r["seed"]) == (dataset, epochs, PLAIN, seed):
                return {
                    k: r[k] for k in ("contender", "wall_s", "mAP50", "mAP50-95", "weights") if k in r
                } | {"reused_from": r.get("reused_from", str(path))}
    return None


def plain(dataset: str, epochs: int, seed: int, data: Path, args, work: Path) -> dict:
    plain_args = {"model": "yolo11n.yaml", "pretrained": COCO_SEG, "data": data, "epochs": epochs}
    plain_args |= {"imgsz": args.imgsz, "seed": seed, "val": False, "plots": False}
    run, wall = run_plain(plain_args, work / "runs" / f"plain_{dataset}_e{epochs}_{time.time_ns()}")
    return {"contender": PLAIN, "wall_s": round(wall, 1), "weights": str(run / "weights" / "last.pt")}


def score(rows: list[dict], data: Path, args, work: Path) -> None:
    """Score every row's last weights on the val split (never used to choose them), with intervals,
    and compare each contender with Ultralytics' defaults on the same images (paired bootstrap)."""
    from detector.eval.bootstrap import paired_bootstrap

    for r in rows:
        if not Path(r.get("weights", "")).is_file():
            continue  # a row reused from a file made before weights were recorded keeps its figures
        got, STATS[key(r)] = evaluate(Path(r["weights"]), data, args.imgsz, work / "eval")
        r |= got
    base = rows[0]
    for r in rows[1:]:
        if key(base) in STATS and key(r) in STATS:
            cmp = paired_bootstrap(STATS[key(base)], STATS[key(r)], **bootstrap_settings())
            iv = cmp.diff["mAP50-95"]
            r["vs_defaults"] = {"mAP50-95 difference": [iv.value, iv.low, iv.high], "verdict": cmp.verdict}


def bench(dataset: str, epochs: int, seed: int, args, work: Path) -> list[dict]:
    """One (dataset, budget, seed) cell: the seed picks the train subset and seeds both trainings."""
    data = subset(dataset, args.n_train, seed, work / "data")
    rows = [
        reused(args.baseline, dataset, epochs, seed, args) or plain(dataset, epochs, seed, data, args, work)
    ]
    for name, extra in _variants(args.variant, args.recipe).items():
        ours = [
            "data=custom",
            f"data.yaml={data}",
            "model=yolo11n_coco",
            f"name={dataset}_e{epochs}",
            *extra,
        ]
        ours += [f"train.epochs={epochs}", f"train.imgsz={args.imgsz}", f"train.seed={seed}"]
        ours += ["train.val=false", "train.plots=false"]
        run, wall = run_detector(ours, work / "runs")
        weights = str(run / "weights" / "last.pt")
        rows.append({"contender": name, "overrides": extra, "wall_s": round(wall, 1), "weights": weights})
    for r in rows:
        r |= {"dataset": dataset, "epochs": epochs, "seed": seed}
    score(rows, data, args, work)
    ratios(rows)
    return rows


def key(r: dict) -> tuple:
    return (r["dataset"], r["epochs"], r["seed"], r["contender"])


def ratios(rows: list[dict]) -> None:
    base = rows[0]["mAP50-95"] or float("nan")
    for r in rows:
        r["ratio_mAP50-95"] = round(r["mAP50-95"] / base, 3) if base else None
        print({k: v for k, v in r.items() if k != "per_class_mAP50-95"}, flush=True)


def rescore(paths: list[Path], args, work: Path) -> list[dict]:
    """The rows of earlier result files, scored again from their recorded weights (nothing trained)."""
    rows = merged(paths, args)
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault(key(r)[:3], []).append(r)
    for (dataset, _, seed), cell in cells.items():
        cell.sort(key=lambda r: r["contender"] != PLAIN)  # the baseline first
        score(cell, subset(dataset, args.n_train, seed, work / "data"), args, work)
        ratios(cell)
    return rows


def merged(paths: list[Path], args) -> list[dict]:
    """The rows of earlier result files (e.g. one per dataset, run side by side), seeds made explicit."""
    rows = []
    for path in paths:
        got, differ = _rows(path, args)
        if differ:
            raise SystemExit(f"--merge {path} was made with other settings: {differ}")
        rows += got
    key = itemgetter("dataset", "epochs", "seed", "contender")
    unique = {key(r): r for r in reversed(rows)}  # a baseline reused by a later file counts once
    return list(reversed(unique.values()))


def pooled(d: str, e: int, c: str, seeds: list[int]) -> dict | None:
    """The mean over seeds of (contender - defaults) in mAP50-95, one interval over the shared images."""
    from detector.eval.bootstrap import pooled_difference

    pairs = [(STATS.get((d, e, s, PLAIN)), STATS.get((d, e, s, c))) for s in seeds]
    if c == PLAIN or len(seeds) < 2 or not all(a and b for a, b in pairs):
        return None
    return pooled_difference(pairs, **bootstrap_settings())


def summary(rows: list[dict]) -> list[dict]:
    """Mean mAP and mean ratio over seeds for each (dataset, budget, contender), and the pooled
    paired difference against Ultralytics' defaults when every seed's stats are at hand."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["epochs"], r["contender"]), []).append(r)
    out = []
    for (d, e, c), rs in groups.items():
        seeds = sorted({r["seed"] for r in rs})
        m = {"dataset": d, "epochs": e, "contender": c, "seeds": seeds}
        m |= {k: round(statistics.fmean(r[k] for r in rs), 4) for k in ("mAP50", "mAP50-95")}
        m["ratio_mAP50-95"] = round(statistics.fmean(r["ratio_mAP50-95"] for r in rs), 3)
        if diff := pooled(d, e, c, seeds):
            m["vs_defaults"] = diff
        out.append(m)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="solar,deeppcb", help=f"comma list of {sorted(DATASETS)}")
    p.add_argument("--epochs", default="10,30", help="comma list of epoch budgets (all stages counted)")
    p.add_argument("--n-train", type=int, default=400, help="seeded train subset size (0 = all)")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument(
        "--seeds", default="0", help="comma list: each seed draws its own train subset and seeds training"
    )
    p.add_argument(
        "--recipe", default="default", help="our finetune preset ('' = only the --variant contenders)"
    )
    p.add_argument("--variant", action="append", default=[], help="name:override,override (extra contenders)")
    p.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="reuse the Ultralytics-defaults rows of this earlier result file (repeatable)",
    )
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="train nothing: combine these result files (same n_train and imgsz) into --out",
    )
    p.add_argument(
        "--rescore",
        type=Path,
        nargs="+",
        help="train nothing: score the recorded weights of these result files again, into --out",
    )
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "finetune.json")
    p.add_argument("--work", type=Path, default=WORK, help="scratch folder for subsets and runs")
    args = p.parse_args()
    work = args.work
    if args.merge or args.rescore:
        write(
            rescore(args.rescore, args, work) if args.rescore else merged(args.merge, args),
            args,
            complete=True,
        )
        return
    cells = [
        (d, e, seed)
        for d in args.datasets.split(",")
        for e in map(int, args.epochs.split(","))
        for seed in map(int, args.seeds.split(","))
    ]
    rows: list[dict] = []
    for i, cell in enumerate(cells, 1):
        rows += bench(*cell, args, work)
        write(rows, args, complete=i == len(cells))  # a stopped run keeps the cells it finished


def write(rows: list[dict], args, complete: bool) -> None:
    """Save the rows so far (JSON and table); the table is printed once the run is complete."""
    means = summary(rows)
    results = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "complete": complete,
        "results": rows,
        "summary": means,
    }
    table = [
        [
            r["dataset"],
            r["epochs"],
            r.get("seed", "mean"),
            r["contender"],
            f"{r['mAP50']:.3f}",
            f"{r['mAP50-95']:.3f}"
            + (" [{:.3f}, {:.3f}]".format(*r["mAP50-95_ci"]) if "mAP50-95_ci" in r else ""),
            r["ratio_mAP50-95"],
            versus(r.get("vs_defaults")),
            r.get("wall_s", ""),
        ]
        for r in sorted(rows, key=lambda r: (r["dataset"], r["epochs"], r["seed"]))
        + [m for m in means if len(m["seeds"]) > 1]
    ]
    header = [
        "dataset",
        "epochs",
        "seed",
        "contender",
        "mAP50",
        "mAP50-95 [95%]",
        "ratio",
        "vs defaults",
        "wall s",
    ]
    save(results, args.out, table, header, echo=complete)


def versus(v: dict | None) -> str:
    """``+0.012 [-0.004, +0.027] no detectable difference``: B - A in mAP50-95 against the defaults."""
    if not v:
        return ""
    value, low, high = (
        v["mAP50-95 difference"] if "mAP50-95 difference" in v else (v["value"], v["low"], v["high"])
    )
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}] {v['verdict'].replace('no detectable difference', 'no difference')}"


if __name__ == "__main__":
    main()
