"""Quality at equal compute: our fine-tune recipe against Ultralytics' defaults.

Both start from the COCO-pretrained YOLO11n-seg checkpoint transferred into ``yolo11n.yaml``,
train on the same seeded subset for the same epochs at the same imgsz and seed, and are scored
the same way: the *last* weights on the full val split. Neither run validates during training
(``val=False``; Ultralytics still validates once at the end), so neither can select weights on
the split it is scored on, and training itself is unchanged by it.

    python scripts/bench_finetune.py                       # solar + deeppcb, E = 10 and 30
    python scripts/bench_finetune.py --datasets solar --epochs 10 --variant lr:finetune.train.lr0=0.001
    # more contenders against an earlier run's baselines (same n_train, imgsz and seed):
    python scripts/bench_finetune.py --epochs 10 --baseline benchmarks/finetune.json --variant ...

Plain training is deterministic here (seeded, ``deterministic=True``, CPU: two runs gave the same
mAP50-95 to 8 digits), which is what makes ``--baseline`` reuse sound. A reused row says so
(``reused_from``), and the settings that define a baseline must match or it is rerun.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchlib import COCO_SEG, DATASETS, ROOT, evaluate, run_detector, run_plain, save, subset

PLAIN = "ultralytics defaults"


def _variants(specs: list[str], recipe: str | None) -> dict[str, list[str]]:
    out = {f"detector ({recipe})": [f"finetune={recipe}"]} if recipe else {}
    for s in specs:
        name, _, overrides = s.partition(":")
        extra = [o for o in overrides.split(",") if o]
        out[name] = (
            extra
            if any(o.startswith("finetune=") for o in extra)
            else [f"finetune={recipe or 'default'}", *extra]
        )
    return out


SAME = ("n_train", "imgsz", "seed")  # with dataset and epochs, these define a baseline


def reused(paths: list[Path], dataset: str, epochs: int, args) -> dict | None:
    """The Ultralytics-defaults row of an earlier result file made with the same settings."""
    for path in paths:
        doc = json.loads(path.read_text())
        if any(doc["settings"][k] != str(getattr(args, k)) for k in SAME):
            continue
        for r in doc["results"]:
            if (r["dataset"], r["epochs"], r["contender"]) == (dataset, epochs, PLAIN):
                return {k: r[k] for k in ("contender", "wall_s", "mAP50", "mAP50-95")} | {
                    "reused_from": r.get("reused_from", str(path))
                }
    return None


def plain(dataset: str, epochs: int, data: Path, args, work: Path) -> dict:
    plain_args = {"model": "yolo11n.yaml", "pretrained": COCO_SEG, "data": data, "epochs": epochs}
    plain_args |= {"imgsz": args.imgsz, "seed": args.seed, "val": False, "plots": False}
    run, wall = run_plain(plain_args, work / "runs" / f"plain_{dataset}_e{epochs}_{time.time_ns()}")
    return {
        "contender": PLAIN,
        "wall_s": round(wall, 1),
        **evaluate(run / "weights" / "last.pt", data, args.imgsz),
    }


def bench(dataset: str, epochs: int, args, work: Path) -> list[dict]:
    data = subset(dataset, args.n_train, args.seed, work / "data")
    rows = [reused(args.baseline, dataset, epochs, args) or plain(dataset, epochs, data, args, work)]
    for name, extra in _variants(args.variant, args.recipe).items():
        ours = [
            "data=custom",
            f"data.yaml={data}",
            "model=yolo11n_coco_seg",
            f"name={dataset}_e{epochs}",
            *extra,
        ]
        ours += [f"train.epochs={epochs}", f"train.imgsz={args.imgsz}", f"train.seed={args.seed}"]
        ours += ["train.val=false", "train.plots=false"]
        run, wall = run_detector(ours, work / "runs")
        rows.append(
            {
                "contender": name,
                "overrides": extra,
                "wall_s": round(wall, 1),
                **evaluate(run / "weights" / "last.pt", data, args.imgsz),
            }
        )
    base = rows[0]["mAP50-95"] or float("nan")
    for r in rows:
        r |= {
            "dataset": dataset,
            "epochs": epochs,
            "ratio_mAP50-95": round(r["mAP50-95"] / base, 3) if base else None,
        }
        print(r, flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="solar,deeppcb", help=f"comma list of {sorted(DATASETS)}")
    p.add_argument("--epochs", default="10,30", help="comma list of epoch budgets (all stages counted)")
    p.add_argument("--n-train", type=int, default=400, help="seeded train subset size (0 = all)")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "finetune.json")
    args = p.parse_args()
    work = ROOT / "benchmarks" / "tmp"
    rows = [
        r
        for d in args.datasets.split(",")
        for e in map(int, args.epochs.split(","))
        for r in bench(d, e, args, work)
    ]
    results = {"settings": {k: str(v) for k, v in vars(args).items()}, "results": rows}
    table = [
        [
            r["dataset"],
            r["epochs"],
            r["contender"],
            f"{r['mAP50']:.3f}",
            f"{r['mAP50-95']:.3f}",
            r["ratio_mAP50-95"],
            r["wall_s"],
        ]
        for r in rows
    ]
    save(results, args.out, table, ["dataset", "epochs", "contender", "mAP50", "mAP50-95", "ratio", "wall s"])


if __name__ == "__main__":
    main()
