"""Rare classes: repeat-factor sampling and ``cls_pw`` against the default recipe, at equal images seen.

Every contender starts from the COCO YOLO11n-seg checkpoint in ``yolo11n.yaml``, trains for the same
epochs on the same images at the same imgsz, and sees the same number of images: repeat-factor runs
use ``finetune.balance_epoch=dataset`` (each epoch holds as many images as the dataset, drawn by
repeat factor), so batches, warmup and the lr schedule match image for image. No run validates during
training (``val=False``); the *last* weights are scored on the full val split, with 95% bootstrap
intervals over its images, and paired against the recipe alone on the same resamples, pooled over
seeds (each resample's figure is the mean over the seeds).

Datasets:
* ``pcb_rare``: DeepPCB's train split with only ``--keep`` of the images that contain ``--rare``
  (seeded by ``--data-seed``, the kept files recorded), val untouched: all five contenders;
* ``deeppcb``, ``solar``: seeded ``--n-train`` subsets as they are: the recipe and recipe +
  repeat_factor only (solar has one class, so balancing turns itself off: one seed shows it).

    python scripts/bench_balance.py                                           # everything (hours on 2 cores)
    python scripts/bench_balance.py --report-only                             # intervals from stored cells

The JSON is written after every cell; the same command skips cells already in it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from benchlib import COCO_SEG, DATASETS, ROOT, run_detector, run_plain, save, subset

from detector.data import check
from detector.data import spec as data_spec
from detector.data.stage import stage

PLAIN, RECIPE = "ultralytics defaults", "recipe"
CONTENDERS = {
    PLAIN: None,
    RECIPE: ["finetune=default"],
    "recipe + cls_pw": ["finetune=default", "train.cls_pw={cls_pw}"],
    "recipe + repeat_factor": ["finetune=default", "finetune.balance=repeat_factor"],
    "recipe + both": ["finetune=default", "finetune.balance=repeat_factor", "train.cls_pw={cls_pw}"],
}
PLAN = {  # dataset -> contenders, seeds ("all" or how many of --seeds)
    "pcb_rare": (list(CONTENDERS), None),
    "deeppcb": ([RECIPE, "recipe + repeat_factor"], None),
    "solar": ([RECIPE, "recipe + repeat_factor"], 1),
}


# ---- the evaluation adapter: the one place that knows detector-eval's engine (detector.eval) ----------
_ARRAYS = ("tp", "conf", "pred_cls", "pred_img", "target_cls", "target_img")


def _save(stats, path: Path) -> None:
    """One val pass's per-image stats as ``.npz`` (what the intervals need; boxes are not kept)."""
    import numpy as np

    header = json.dumps({"im_files": stats.im_files, "names": stats.names}).encode()
    np.savez_compressed(
        path, header=np.frombuffer(header, np.uint8), **{k: getattr(stats, k) for k in _ARRAYS}
    )


def _load(path: Path):
    import numpy as np

    from detector.eval.stats import EvalStats

    z = np.load(path)
    h = json.loads(z["header"].tobytes().decode())
    arrays = {k: z[k] for k in _ARRAYS}
    boxes = {"pred_box": np.zeros((len(arrays["conf"]), 4), np.float32)}
    boxes["target_box"] = np.zeros((len(arrays["target_cls"]), 4), np.float32)
    return EvalStats(h["im_files"], {int(k): v for k, v in h["names"].items()}, **arrays, **boxes)


def evaluate(args, weights: Path, data_yaml: Path, cache: Path) -> dict:
    """One val pass; its per-image stats are kept in ``cache`` for the intervals. Returns point figures."""
    from detector.eval.metrics import ResampleEvaluator
    from detector.eval.stats import collect

    stats = collect(weights, data_yaml, "val", imgsz=args.imgsz, batch=16)
    _save(stats, cache)
    point = ResampleEvaluator(stats).point()
    return {
        "mAP50": float(point.map50[0]),
        "mAP50-95": float(point.map[0]),
        "per_class": {stats.names[c]: float(point.ap[0, c].mean()) for c in stats.names},
    }


def images(args, cache: Path) -> list[str]:
    """The val images of one stored pass, in its order."""
    return _load(cache).im_files


def resampled(args, cache: Path, order: list[str] | None, counts) -> tuple:
    """(names, im_files, point (mAP, per-class AP), resampled (B,), (B, C)) of one stored val pass."""
    import numpy as np

    from detector.eval.metrics import ResampleEvaluator

    stats = _load(cache)
    if order is not None and stats.im_files != order:  # same images, another order: align the counts
        pos = {f: i for i, f in enumerate(stats.im_files)}
        perm = np.array([pos[f] for f in order])
        aligned = np.empty_like(counts)
        aligned[:, perm] = counts
        counts = aligned
    ev = ResampleEvaluator(stats)
    pt, bs = ev.point(), ev.evaluate(counts)
    return stats.names, stats.im_files, (pt.map[0], pt.ap[0].mean(-1)), (bs.map, bs.ap.mean(-1))


# ---- data ---------------------------------------------------------------------------------------
def _classes(image: Path) -> set[int]:
    lab = data_spec.label_path(image)
    return (
        {int(line.split()[0]) for line in lab.read_text().splitlines() if line.strip()}
        if lab.is_file()
        else set()
    )


def rare_subset(args, out: Path) -> tuple[Path, dict]:
    """DeepPCB with only ``--keep`` of the train images that contain ``--rare``; val untouched."""
    spec = data_spec.load(DATASETS["deeppcb"])
    rare = {v: k for k, v in spec.names.items()}[args.rare]
    train = spec.splits["train"]
    holding = [p for p in train if rare in _classes(p)]
    kept = sorted(random.Random(args.data_seed).sample(holding, round(args.keep * len(holding))))
    spec.splits["train"] = sorted({*[p for p in train if rare not in _classes(p)], *kept})
    spec.splits.pop("test", None)
    target = out / f"pcb_rare_{args.rare}_{args.keep}_s{args.data_seed}"
    yaml_path = target / "data.yaml" if (target / "data.yaml").exists() else stage(spec, target)
    made = {"rare": args.rare, "keep": args.keep, "data_seed": args.data_seed, "with_rare": len(holding)}
    return yaml_path, made | {"kept": [p.name for p in kept], "train_images": len(spec.splits["train"])}


def datasets(args, work: Path) -> dict[str, tuple[Path, dict]]:
    out = {}
    for name in args.datasets.split(","):
        if name == "pcb_rare":
            out[name] = rare_subset(args, work / "data")
        else:
            out[name] = (subset(name, args.n_train, args.data_seed, work / "data"), {"n_train": args.n_train})
        imb = check.check_dataset(data_spec.load(out[name][0]), decode=False).imbalance()
        out[name][1]["doctor"] = imb.to_dict() if imb else None
    return out


# ---- training -----------------------------------------------------------------------------------
def train(args, dataset: str, contender: str, seed: int, data: Path, work: Path) -> tuple[Path, float, dict]:
    """Train one contender; returns (last weights, wall seconds, the run's balance record)."""
    runs = work / "runs"
    if CONTENDERS[contender] is None:
        plain = {"model": "yolo11n.yaml", "pretrained": COCO_SEG, "data": data, "epochs": args.epochs}
        plain |= {"imgsz": args.imgsz, "seed": seed, "val": False, "plots": False}
        run, wall = run_plain(plain, runs / f"plain_{dataset}_s{seed}")
        return run / "weights" / "last.pt", wall, {}
    extra = [o.format(cls_pw=args.cls_pw) for o in CONTENDERS[contender]]
    ours = ["data=custom", f"data.yaml={data}", "model=yolo11n_coco", f"name={dataset}_s{seed}", *extra]
    ours += [f"train.epochs={args.epochs}", f"train.imgsz={args.imgsz}", f"train.seed={seed}"]
    run, wall = run_detector([*ours, "train.val=false", "train.plots=false"], runs)
    record = json.loads((run / "summary.json").read_text())["stages"][0].get("balance") or {}
    return run / "weights" / "last.pt", wall, record


# ---- intervals ----------------------------------------------------------------------------------
def _counts(n: int, b: int, seed: int):
    """(b, n) bootstrap counts: how often each image is drawn in each resample (seeded)."""
    import numpy as np

    idx = np.random.default_rng(seed).integers(0, n, size=(b, n))
    return np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)


def _iv(point: float, samples) -> list[float]:
    import numpy as np

    lo, hi = np.nanquantile(samples, [0.025, 0.975])
    return [round(float(point), 4), round(float(lo), 4), round(float(hi), 4)]


def _pool(args, rows: list[dict], counts, order: list[str] | None) -> tuple:
    """Mean over seeds of each figure, at the point and in every resample: (names, order, point, samples)."""
    import numpy as np

    got = [resampled(args, Path(r["stats"]), order, counts) for r in rows]
    names, order = got[0][0], order or got[0][1]
    point = (np.mean([g[2][0] for g in got]), np.nanmean([g[2][1] for g in got], 0))
    samples = (np.mean([g[3][0] for g in got], 0), np.nanmean([g[3][1] for g in got], 0))
    return names, order, point, samples


def _figures(name: str, pt, bs, base_pt, base_bs) -> dict:
    """One class (or "all"): value, difference and ratio against the recipe, each with its interval."""
    diff = _iv(pt - base_pt, bs - base_bs)
    verdict = "better" if diff[1] > 0 else "worse" if diff[2] < 0 else "no detectable difference"
    return {
        "class": name,
        "AP50-95": _iv(pt, bs),
        "diff": diff,
        "ratio": _iv(pt / base_pt, bs / base_bs),
        "vs_recipe": verdict,
    }


def pooled(args, rows: list[dict], dataset: str) -> list[dict]:
    """Per contender and class, seeds pooled: AP50-95 and the paired comparison with the recipe alone."""
    mine = [r for r in rows if r["dataset"] == dataset]
    contenders = list(dict.fromkeys(r["contender"] for r in mine))
    if RECIPE not in contenders:
        return []
    seeds_of = {c: {r["seed"] for r in mine if r["contender"] == c} for c in contenders}
    order = images(args, Path(next(r for r in mine if r["contender"] == RECIPE)["stats"]))
    counts = _counts(len(order), args.boot, args.boot_seed)  # the same resamples for every contender
    out = []
    for c in contenders:  # each paired with the recipe on the seeds both have
        seeds = sorted(seeds_of[c] & seeds_of[RECIPE])
        pick = {k: [r for r in mine if r["contender"] == k and r["seed"] in seeds] for k in (c, RECIPE)}
        names, order, bpt, bbs = _pool(args, pick[RECIPE], counts, order)
        _, _, pt, bs = _pool(args, pick[c], counts, order)
        figs = [_figures("all", pt[0], bs[0], bpt[0], bbs[0])]
        figs += [_figures(names[k], pt[1][k], bs[1][:, k], bpt[1][k], bbs[1][:, k]) for k in sorted(names)]
        out.append({"dataset": dataset, "contender": c, "seeds": seeds, "figures": figs})
    return out


# ---- the run ------------------------------------------------------------------------------------
def cells(args) -> list[tuple[str, int, str]]:
    seeds = [int(s) for s in args.seeds.split(",")]
    out = []
    for dataset in args.datasets.split(","):
        contenders, how_many = PLAN[dataset]
        chosen = [c for c in contenders if not args.contenders or c in args.contenders.split(",")]
        out += [(dataset, seed, c) for seed in seeds[:how_many] for c in chosen]
    return out


def cell(args, dataset: str, seed: int, contender: str, data: Path, work: Path) -> dict:
    weights, wall, record = train(args, dataset, contender, seed, data, work)
    stats = work / "stats" / f"{dataset}_s{seed}_{contender.replace(' ', '').replace('+', '_')}.npz"
    stats.parent.mkdir(parents=True, exist_ok=True)
    row = {"dataset": dataset, "seed": seed, "contender": contender, "wall_s": round(wall, 1)}
    row |= {"images_seen": _images_seen(args, data, record), "balance": record, "stats": str(stats)}
    row |= evaluate(args, weights, data, stats)
    print({k: v for k, v in row.items() if k != "balance"}, flush=True)
    return row


def _images_seen(args, data: Path, record: dict) -> int:
    """Epochs x images per epoch: the dataset's size, or what the sampler drew per epoch."""
    n = len(data_spec.load(data).splits["train"])
    return int(args.epochs * record.get("images_per_epoch", n))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="pcb_rare,solar,deeppcb", help=f"comma list of {list(PLAN)}")
    p.add_argument("--seeds", default="0,1,2", help="training seeds (the data is drawn once, --data-seed)")
    p.add_argument("--contenders", default="", help=f"comma list of {list(CONTENDERS)} (default: the plan's)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument(
        "--n-train", type=int, default=304, help="deeppcb/solar: seeded train subset (pcb_rare's size)"
    )
    p.add_argument("--rare", default="short", help="pcb_rare: the DeepPCB class made rare")
    p.add_argument("--keep", type=float, default=0.05, help="pcb_rare: share of the rare class's images kept")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--cls-pw", type=float, default=0.5, help="Ultralytics' cls_pw for the cls_pw contenders")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--boot-seed", type=int, default=0)
    p.add_argument(
        "--report-only", action="store_true", help="train nothing: intervals from the stored cells"
    )
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "balance.json")
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "tmp" / "balance")
    args = p.parse_args()
    data = datasets(args, args.work)
    rows = json.loads(args.out.read_text())["results"] if args.out.is_file() else []
    todo = [] if args.report_only else cells(args)
    for dataset, seed, contender in todo:
        if not any((r["dataset"], r["seed"], r["contender"]) == (dataset, seed, contender) for r in rows):
            rows.append(cell(args, dataset, seed, contender, data[dataset][0], args.work))
            write(args, data, rows, [], complete=False)
    write(args, data, rows, [g for d in data for g in pooled(args, rows, d)], complete=True)


def _fmt(iv: list[float]) -> str:
    return f"{iv[0]:.3f} [{iv[1]:.3f}, {iv[2]:.3f}]"


def _per_seed(rows: list[dict], contender: str, rare: str) -> dict[int, list[float]]:
    """pcb_rare, seed by seed: (rare class, overall) AP50-95 ratios to the recipe of the same seed.

    The bootstrap intervals cover the val images only; these show how much the training seed moves.
    """
    mine = {(r["contender"], r["seed"]): r for r in rows if r["dataset"] == "pcb_rare"}
    out = {}
    for (c, seed), r in sorted(mine.items()):
        base = mine.get((RECIPE, seed))
        if c == contender and base:
            out[seed] = [
                round(r["per_class"][rare] / base["per_class"][rare], 3),
                round(r["mAP50-95"] / base["mAP50-95"], 3),
            ]
    return out


def targets(groups: list[dict], rows: list[dict], rare: str) -> list[dict]:
    """pcb_rare: the rare class at >= 1.25x the recipe alone, overall mAP50-95 at >= 0.98x."""
    out = []
    for g in groups:
        if g["dataset"] != "pcb_rare" or g["contender"] in (RECIPE, PLAIN):
            continue
        fig = {f["class"]: f for f in g["figures"]}
        rare_r, all_r = fig[rare]["ratio"], fig["all"]["ratio"]
        out.append(
            {
                "contender": g["contender"],
                "rare_ratio": rare_r,
                "all_ratio": all_r,
                "met": rare_r[0] >= 1.25 and all_r[0] >= 0.98,
                "met_at_interval_bounds": rare_r[1] >= 1.25 and all_r[1] >= 0.98,
                "per_seed_rare_all": _per_seed(rows, g["contender"], rare),
            }
        )
    return out


def write(args, data: dict, rows: list[dict], groups: list[dict], complete: bool) -> None:
    results = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "note": "ratios at equal images seen (epochs x train images); last weights, full val split",
        "complete": complete,
        "data": {k: v[1] for k, v in data.items()},
        "results": rows,
        "pooled": groups,
        "targets": targets(groups, rows, args.rare),
    }
    table = [
        [
            g["dataset"],
            g["contender"],
            len(g["seeds"]),
            f["class"],
            _fmt(f["AP50-95"]),
            _fmt(f["diff"]),
            *rest,
        ]
        for g in groups
        for f in g["figures"]
        for rest in [[_fmt(f["ratio"]), f["vs_recipe"]]]
    ]
    header = ["dataset", "contender", "seeds", "class", "AP50-95 [95% CI]", "- recipe [95% CI]"]
    save(results, args.out, table, [*header, "/ recipe [95% CI]", "paired, vs recipe"], echo=complete)
    if complete:
        for t in results["targets"]:
            print(t)
        print(f"seed means: {_seed_means(rows)}")


def _seed_means(rows: list[dict]) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(f"{r['dataset']}/{r['contender']}", []).append(r["mAP50-95"])
    return {k: round(statistics.fmean(v), 4) for k, v in groups.items()}


if __name__ == "__main__":
    main()
