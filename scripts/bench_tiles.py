"""Small objects in big frames: tiled training and sliced inference against full frames and SAHI.

The frames are 4 x 4 mosaics of solar_pv_gray416 images (1,664 px; every panel keeps its native
pixel size, labels shifted). Val mosaics are the val split's images plus one copy each of train
photos held out whole (Roboflow's augmented copies ``<stem>.rf.<hash>`` of a held-out photo never
reach the train mosaics). From the same COCO YOLO11n-seg start, the same epochs and ONNX Runtime:

- (a) full-frame training at imgsz 640 and full-frame inference (each 1,664 px frame letterboxed to 640);
- (b) tiled training (``tile=default``: 640 px tiles at native scale) and sliced inference;
- (c) the model of (a) with sliced inference alone;
- SAHI 0.12's ``get_sliced_prediction`` on model (b): same tiles, thresholds and merge threshold,
  no full-frame pass, NMS with IoS (its closest rule to ours) and with IoU.

mAP50-95 on the val mosaics in full-frame pixels, with a 95% percentile bootstrap over images (1,000
seeded resamples, Ultralytics' matching and AP), and per-frame latency (median of interleaved rounds
at conf 0.25). Then a 10,000 x 10,000 px frame: wall time and peak RSS of `detector-artifacts predict`
in a fresh process. Every step is skipped when its output exists in --work.

    python scripts/bench_tiles.py                       # SAHI rows need: pip install -e ".[sahi]"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from benchlib import ROOT, env, run_detector, save
from tilebench import big_frame, build_mosaics, evaluate, sahi_model, sahi_predict

from detector.artifacts import store
from detector.data import grid, labels, spec


def recipes(args) -> dict[str, list[str]]:
    """The runs, by key: (a) whole mosaics at imgsz 640, (b) their tiles at native scale, and (a) again
    with as many optimizer steps as (b) (its epochs x the tiles per mosaic), the equal-compute check."""
    steps = args.epochs * args.tiles_per_mosaic
    return {
        "full": [f"train.imgsz={args.imgsz}", f"train.epochs={args.epochs}"],
        "tiled": ["tile=default", f"data.tile.size={args.tile}", f"train.epochs={args.epochs}"],
        "full_steps": [f"train.imgsz={args.imgsz}", f"train.epochs={steps}"],
    }


def train_and_publish(work: Path, data_yaml: Path, args) -> dict[str, Path]:
    """Train and publish every recipe: the same COCO start, batch, schedule and ONNX export."""
    out = {}
    for key, extra in recipes(args).items():
        version = work / "artifacts" / f"bench_tiles_{key}"
        if not version.is_dir():
            overrides = ["model=yolo11n_coco", "data=custom", f"data.yaml={data_yaml}", *extra]
            # warmup_epochs=0: Ultralytics warms up for at least 100 steps, longer than these whole runs
            overrides += [f"train.batch={args.batch}", "train.warmup_epochs=0", "train.plots=false"]
            overrides += [f"name=bench_tiles_{key}", "export=onnx", "export.dynamic=true"]
            overrides += [
                f"export.publish.name=bench_tiles_{key}",
                f"paths.artifacts_dir={work / 'artifacts'}",
            ]
            overrides += [f"paths.tiles_dir={work / 'tiles_cache'}"]
            run, wall = run_detector(overrides, work / "runs")
            print(f"trained and published {key} in {wall:.0f} s: {run}", flush=True)
            (work / f"train_{key}.json").write_text(json.dumps({"run": str(run), "wall_s": round(wall, 1)}))
        out[key] = store.resolve(f"bench_tiles_{key}", work / "artifacts").path
    return out


def _onnx(version: Path) -> Path:
    m = json.loads((version / "manifest.json").read_text())
    return version / m["exports"]["onnx"]["path"]


def contenders(versions: dict[str, Path], args) -> dict:
    """name -> (version, slicing or None, SAHI metric or None): what is measured, in table order."""
    from detector.artifacts.slicing import resolve

    own = json.loads((versions["tiled"] / "manifest.json").read_text())
    sliced = resolve(own, {})  # exactly what `detector-artifacts predict` applies to this version
    return {
        "(a) full-frame train, full-frame inference": (versions["full"], None, None),
        "(a') as (a), with (b)'s optimizer steps": (versions["full_steps"], None, None),
        "(b) tiled train, sliced inference (ours)": (versions["tiled"], sliced, None),
        "(c) full-frame train, sliced inference (ours)": (versions["full"], sliced, None),
        "(c') model (a'), sliced inference (ours)": (versions["full_steps"], sliced, None),
        "(b) + one full-frame pass (ours)": (versions["tiled"], resolve(own, {"full_frame": True}), None),
        "(b) SAHI get_sliced_prediction, NMS/IoS": (versions["tiled"], sliced, "IOS"),
        "(b) SAHI get_sliced_prediction, NMS/IoU": (versions["tiled"], sliced, "IOU"),
    }


def _predict_frames(version: Path, s, metric: str | None, frames: list[np.ndarray], conf: float) -> list:
    from detector.artifacts import runtimes, slicing

    if metric is None:
        model = runtimes.open_model(_onnx(version), "onnx")
        return [slicing.predict(f, model, s, conf) for f in frames]
    m = sahi_model(_onnx(version), s.size, conf)
    return [sahi_predict(m, f, s.size, s.overlap, metric, 1) for f in frames]


def accuracy(work: Path, data_yaml: Path, versions: dict, args) -> dict:
    """Each contender's mAP on the val mosaics, at eval conf (0.001, Ultralytics' val default)."""
    from detector.artifacts import slicing

    done = work / "accuracy.json"
    results = json.loads(done.read_text()) if done.is_file() else {}
    images = spec.load(data_yaml).splits["val"]
    frames = [slicing.read(p) for p in images]
    gts = []
    for p, f in zip(images, frames, strict=True):
        px = grid.to_pixels(labels.read(spec.label_path(p), 1).boxes, *f.shape[:2])
        gts.append((px[:, 1:5].astype(np.float32), px[:, 0].astype(np.int64)))
    for name, (version, s, metric) in contenders(versions, args).items():
        if name in results or (metric and not _has_sahi()):
            continue
        t = time.perf_counter()
        dets = _predict_frames(version, s, metric, frames, args.eval_conf)
        preds = [(d[:, :4], d[:, 4], d[:, 5].astype(np.int64)) for d in dets]
        results[name] = {**evaluate(preds, gts, args.boot, 0), "boxes": int(sum(len(d) for d in dets))}
        results[name]["seconds"] = round(time.perf_counter() - t, 1)
        print(name, results[name], flush=True)
        done.write_text(json.dumps(results, indent=2))
    return results


def _has_sahi() -> bool:
    import importlib.util

    return importlib.util.find_spec("sahi") is not None


def _timer(name: str, versions: dict, args):
    """A function frame -> detections for one latency contender, warmed up by the caller."""
    from detector.artifacts import runtimes, slicing

    own = json.loads((versions["tiled"] / "manifest.json").read_text())
    if name.startswith("SAHI"):
        batch = int(name.rsplit("=", 1)[1])
        s = slicing.resolve(own, {})
        m = sahi_model(_onnx(versions["tiled"]), s.size, args.conf)
        return lambda f: sahi_predict(m, f, s.size, s.overlap, "IOS", batch)
    key = "full" if name.startswith("(a)") else "tiled"
    model = runtimes.open_model(_onnx(versions[key]), "onnx")
    s = None if key == "full" else slicing.resolve(own, {"batch": int(name.rsplit("=", 1)[1])})
    return lambda f: slicing.predict(f, model, s, args.conf)


LATENCY = ("ours batch=16", "ours batch=1", "SAHI batch=1", "SAHI batch=9", "(a) full frame batch=1")


def time_one(name: str, frames: list[Path], versions: dict, args) -> dict:
    """In this process (a fresh one per contender and round): ms per frame, after one warm-up frame."""
    import resource

    from detector.artifacts import slicing

    images = [slicing.read(p) for p in frames]
    fn = _timer(name, versions, args)
    fn(images[0])
    times = []
    for image in images:
        t = time.perf_counter()
        fn(image)
        times.append((time.perf_counter() - t) * 1000)
    return {"ms": times, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(args, *extra: str) -> dict:
    """This script in a fresh process (``--child ...``); returns the JSON it prints last."""
    argv = [sys.executable, __file__, "--work", str(args.work), "--conf", str(args.conf), *extra]
    res = subprocess.run(argv, capture_output=True, text=True, env=env(), cwd=ROOT)
    if res.returncode:
        raise RuntimeError(f"{' '.join(extra)} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def latency(work: Path, data_yaml: Path, args) -> dict:
    """Per-frame latency at predict conf, each contender in its own process, rounds in alternating order.

    A fresh process per run: ONNX Runtime's worker threads spin after a call and slow whatever runs
    next in the same process (bench_export.py measured up to 1.7x on 2 cores).
    """
    done = work / "latency.json"
    if done.is_file():
        return json.loads(done.read_text())
    frames = [str(p) for p in spec.load(data_yaml).splits["val"][: args.latency_frames]]
    rounds: dict[str, list[list[float]]] = {n: [] for n in LATENCY if _has_sahi() or "SAHI" not in n}
    for r in range(args.rounds):
        for name in list(rounds)[:: 1 if r % 2 == 0 else -1]:
            rounds[name].append(_child(args, "--child", name, *frames)["ms"])
            print(f"round {r} {name}: {np.median(rounds[name][-1]):.0f} ms", flush=True)
    base = "SAHI batch=1" if "SAHI batch=1" in rounds else None
    out = {}
    for name, runs in rounds.items():
        ms = np.array(runs)  # rounds x frames
        out[name] = {"median_ms": float(np.median(ms)), "min_ms": float(ms.min())}
        if base:  # the same frames in the same round: the ratio cancels most of the load's drift
            out[name]["x_vs_sahi_bs1"] = float(np.median(np.array(rounds[base]) / ms))
    done.write_text(json.dumps(out, indent=2))
    return out


def memory(work: Path, data_yaml: Path, versions: dict, args) -> dict:
    """`detector-artifacts predict` on the 10,000 px frame in a fresh process: wall time, peak RSS, boxes."""
    done = work / "memory.json"
    if done.is_file():
        return json.loads(done.read_text())
    frame = big_frame(work, data_yaml)
    out = {}
    for batch in (4, 16):
        preds = work / f"pred_10000_b{batch}"
        code = (
            "import json, resource, sys, time; from detector.artifacts.cli import main; t = time.perf_counter()\n"
            "try: main(sys.argv[1:])\nexcept SystemExit as e: assert not e.code, e.code\n"
            "print(json.dumps({'wall_s': time.perf_counter() - t, "
            "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
        )
        argv = ["--dir", str(versions["tiled"].parents[1]), "predict", str(versions["tiled"]), str(frame)]
        argv += ["--out", str(preds), "--batch", str(batch), "--conf", str(args.conf)]
        res = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env(), cwd=ROOT
        )
        if res.returncode:
            raise RuntimeError(res.stderr[-3000:])
        doc = json.loads(res.stdout.strip().splitlines()[-1])
        boxes = json.loads((preds / "boxes.json").read_text())["images"][0]["boxes"]
        out[f"ours batch={batch}"] = {**doc, "boxes": len(boxes), "annotated": str(preds / "frame_10000.jpg")}
        print(f"10,000 px, batch {batch}: {out[f'ours batch={batch}']}", flush=True)
    if _has_sahi():
        out["SAHI batch=1"] = _child(args, "--child", "SAHI batch=1", str(frame))
    done.write_text(json.dumps(out, indent=2))
    return out


# accuracy contender -> its latency contender
TIMED = {
    "(a) full-frame train, full-frame inference": "(a) full frame batch=1",
    "(b) tiled train, sliced inference (ours)": "ours batch=16",
    "(b) SAHI get_sliced_prediction, NMS/IoS": "SAHI batch=1",
}


HEADER = [
    "contender",
    "mAP50-95 [95% CI]",
    "x (a)",
    "mAP50",
    "ms / frame",
    "speed x SAHI bs=1",
    "peak RSS MB",
]


def _rows(acc: dict, lat: dict, mem: dict) -> list[list[str]]:
    """The table: accuracy (with the latency of the same contender), latency alone, the 10,000 px frame."""
    base = acc["(a) full-frame train, full-frame inference"]["mAP50-95"]
    speed = lambda t: f"{t['x_vs_sahi_bs1']:.2f}" if "x_vs_sahi_bs1" in t else ""  # noqa: E731
    rows = []
    for name, a in acc.items():
        t = lat.get(TIMED.get(name, ""), {})
        ci = f"{a['mAP50-95']:.4f} [{a['low']:.4f}, {a['high']:.4f}]"
        ms = f"{t['median_ms']:.0f}" if t else ""
        rows.append([name, ci, f"{a['mAP50-95'] / base:.2f}", f"{a['mAP50']:.4f}", ms, speed(t), ""])
    for name in ("ours batch=1", "SAHI batch=9"):
        if name in lat:
            rows.append(
                [f"latency only: {name}", "", "", "", f"{lat[name]['median_ms']:.0f}", speed(lat[name]), ""]
            )
    for name, m in mem.items():
        ms = f"{(m.get('wall_s') or sum(m.get('ms', [0])) / 1000) * 1000:.0f}"
        rows.append([f"10,000 x 10,000 px frame: {name}", "", "", "", ms, "", f"{m['peak_rss_mb']:.0f}"])
    return rows


def report(args, acc: dict, lat: dict, mem: dict, versions: dict) -> None:
    """benchmarks/tiles.json and .md: accuracy with intervals, latency, the 10,000 px frame."""
    from detector.provenance import machine

    training = {}
    for k, v in versions.items():
        m = json.loads((v / "manifest.json").read_text())
        run = json.loads((args.work / f"train_{k}.json").read_text())
        training[k] = {**run, "metrics": m["training"]["metrics"], "tile": m["tile"]}
    results = {
        "settings": {k: str(v) for k, v in vars(args).items() if k not in ("child", "stop_after")},
        "accuracy": acc,
        "latency": lat,
        "memory_10000px": mem,
        "training": training,
        "machine": machine(),
    }
    save(results, args.out, _rows(acc, lat, mem), HEADER)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "tmp" / "tiles")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "tiles.json")
    p.add_argument("--train-mosaics", type=int, default=16, help="16 mosaics = 256 photos, 144 tiles of 640")
    p.add_argument("--val-mosaics", type=int, default=16)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument(
        "--imgsz", type=int, default=640, help="(a): the whole 1,664 px mosaic letterboxed to this"
    )
    p.add_argument("--tile", type=int, default=640, help="(b): tile side; the model sees tiles at this size")
    p.add_argument("--tiles-per-mosaic", type=int, default=9, help="for (a'): 9 tiles of 640 cover 1,664 px")
    p.add_argument("--eval-conf", type=float, default=0.001, help="Ultralytics' val default")
    p.add_argument("--conf", type=float, default=0.25, help="latency: predict's default")
    p.add_argument("--boot", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3, help="latency: interleaved rounds over --latency-frames")
    p.add_argument("--latency-frames", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-after", choices=["train", "accuracy", "latency"], help="stop after this step")
    p.add_argument("--child", nargs="+", metavar=("CONTENDER", "FRAME"), help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse()
    env()  # Ultralytics' environment, before it is imported here
    data_yaml = build_mosaics(args.work, args.train_mosaics, args.val_mosaics, args.seed)
    versions = train_and_publish(args.work, data_yaml, args)
    if args.child:  # one latency contender in a fresh process
        print(json.dumps(time_one(args.child[0], [Path(p) for p in args.child[1:]], versions, args)))
        return
    if args.stop_after == "train":
        return
    acc = accuracy(args.work, data_yaml, versions, args)
    if args.stop_after == "accuracy":
        return
    lat = latency(args.work, data_yaml, args)
    if args.stop_after == "latency":
        return
    mem = memory(args.work, data_yaml, versions, args)
    report(args, acc, lat, mem, versions)


if __name__ == "__main__":
    main()
