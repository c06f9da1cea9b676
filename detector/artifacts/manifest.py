"""What a published version says about itself: ``manifest.json`` and ``MODEL_CARD.md``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from detector.artifacts.target import Target, export_args
from detector.data import tile as tiles
from detector.provenance import git_state, machine, versions
from detector.tables import pct
from detector.train.rundir import Run

LICENCE = (
    "Ultralytics and its YOLO weights are AGPL-3.0: a model fine-tuned from them, and software that "
    "serves it over a network, must be released under AGPL-3.0 unless you hold an Ultralytics "
    "Enterprise licence. The training data keeps its own licence (see its data.yaml folder)."
)


def data_fingerprint(data_yaml: Path) -> dict[str, Any]:
    """The dataset's content fingerprint, the same one run summaries record (``detector-data fingerprint``)."""
    from detector.data.fingerprint import fingerprint

    return {
        "sha256": fingerprint(data_yaml),
        "method": "detector-data fingerprint (names + image/label content)",
    }


def tile_record(run: Run, t: Target) -> dict[str, Any] | None:
    """The tile settings a tiled run trained with, which predict (and eval) apply by default; else None.

    ``batch`` says how the exported file takes tiles: ``dynamic`` (any number per call) or the static
    batch size it was exported with (predict pads a short batch).
    """
    if run.tile is None:
        return None
    args = export_args(t, run.imgsz, True)
    keep = (*tiles.KEYS, "predict", "cache_key", "source_fingerprint")
    return {
        **{k: run.tile[k] for k in keep if k in run.tile},
        "imgsz": args["imgsz"],
        "batch": "dynamic" if args.get("dynamic") else int(args.get("batch") or 1),
    }


def build(run: Run, t: Target, stage: Path, exported: Path, metrics: dict) -> dict[str, Any]:
    """The manifest of a version being built in ``stage`` (``files``, name and number come later)."""
    s = run.summary
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "format": t.format,
        "task": "detect",
        "model": {
            "arch": s.get("model", {}).get("arch"),
            "names": {int(k): v for k, v in (s.get("data", {}).get("names") or {}).items()},
            "imgsz": t.kwargs.get("imgsz", run.imgsz),
        },
        "exports": {
            "pytorch": {"path": "weights/best.pt", "runtime": "PyTorch"},
            t.format: {
                "path": exported.relative_to(stage).as_posix(),
                "runtime": t.runtime.name,
                "args": export_args(t, run.imgsz, run.tile is not None),
            },
        },
        "metrics": metrics,
        "tile": tile_record(run, t),
        "check": {
            "split": "val",
            "images": s.get("data", {}).get("counts", {}).get("val", {}).get("images"),
            "protocol": "Ultralytics val through each format's runtime: batch 1, rect=False, conf 0.001, iou 0.7",
            "tolerance_points": t.tolerance,
        },
        "latency": {
            "what": "median wall time of one YOLO.predict call (pre-process, inference, post-process)",
            "batch": 1,
            "runs": t.latency_runs,
            "machine": machine(),
        },
        "pretrained_source": s.get("pretrained_source"),
        "training": {
            "run_dir": str(run.dir),
            "metrics": s.get("metrics"),
            "freeze": s.get("freeze"),
            "wall_time_s": s.get("wall_time_s"),
        },
        "data": _data(run),
        "config": {"train": s.get("config"), "export": t.config},
        "git": git_state(),
        "versions": versions(t.runtime.dists),
        "licence": LICENCE,
    }


def _data(run: Run) -> dict[str, Any]:
    """The training data: its data.yaml (path and content, as trained), counts and fingerprint."""
    original = Path(run.summary.get("data", {}).get("yaml") or run.data_yaml)
    try:
        content = yaml.safe_load(original.read_text())
    except (OSError, yaml.YAMLError):
        content = None
    return {
        "yaml": str(original),
        "content": content,
        "counts": run.summary.get("data", {}).get("counts"),
        "fingerprint": data_fingerprint(run.data_yaml),
    }


def _initial(m: dict[str, Any]) -> str:
    pre = m.get("pretrained_source") or {}
    if pre.get("path"):
        return f"`{pre['path']}` ({pre.get('source')}, sha256 `{str(pre.get('sha256'))[:16]}`)"
    if pre.get("requested"):
        return f"{pre['requested']} was requested but not found: trained from random initialisation"
    return "none: trained from random initialisation"


def _thresholds(m: dict[str, Any]) -> str:
    """The card's section on the per-class operating thresholds that ``predict`` applies."""
    th = m.get("thresholds")
    if not th:
        return "No operating thresholds are stored: `detector-artifacts predict` uses its `--conf`."
    at = th["on_val"]["per_class"]
    rows = []
    for name, ch in th["per_class"].items():
        f = at.get(name, {})
        figs = " | ".join(pct((f.get(k) or {}).get("value")) for k in ("precision", "recall", "f1"))
        rows.append(f"| {name} | {ch['threshold']:.3f} | {figs} | {ch['message'] or 'chosen'} |")
    return f"""Chosen with the rule `{th["rule"]}` on the val split, through {th["runtime"]}; `detector-artifacts
predict` keeps a box when its confidence reaches its class's threshold (`--conf` overrides them all).
Precision, recall and F1 at IoU 0.5 on that same val split, in points (%): optimistic, since val
also chose the thresholds; `detector-eval {m["name"]}/v{m["version"]}` on a test split gives held-out figures.

| class | threshold | precision | recall | F1 | note |
|---|---|---|---|---|---|
{chr(10).join(rows)}"""


def card(m: dict[str, Any]) -> str:
    """Render ``MODEL_CARD.md`` from a finished manifest."""
    names = ", ".join(str(v) for v in m["model"]["names"].values())
    data = m["data"]
    counts = data.get("counts") or {}
    split = ", ".join(f"{k}: {v.get('images')} images / {v.get('boxes')} boxes" for k, v in counts.items())
    rows = [
        f"| {fmt} | {m['exports'][fmt]['runtime']} | `{m['exports'][fmt]['path']}` | {pct(x['mAP50'])} | "
        f"{pct(x['mAP50-95'])} | {x.get('drop_points', 0):.2f} | {x['latency_ms']:.1f} | "
        f"{x.get('latency_ratio_to_pytorch', 1.0):.2f} |"
        for fmt, x in m["metrics"].items()
    ]
    mach = m["latency"]["machine"]
    return f"""# {m["name"]} v{m["version"]}

Object detector ({m["model"]["arch"]}, {m["model"]["imgsz"]} px) for: {names}.
Published {m["created"]} by detector; `manifest.json` lists the sha256 of every file
(`detector-artifacts verify {m["name"]}/v{m["version"]}`).

## Intended use
Detecting {names} in images like the training data: same kind of camera, viewpoint and
resolution. It was not evaluated on anything else; check it on your own images before relying on it.

## Training data
- data.yaml: `{data["yaml"]}`
- {split}
- content fingerprint: `{data["fingerprint"]["sha256"]}` (`detector-data fingerprint`)
- initial weights: {_initial(m)}

## Metrics per format
mAP on the val split ({m["check"]["images"]} images), in points (%): {m["check"]["protocol"]}.
Latency: {m["latency"]["what"]}, batch 1, median of {m["latency"]["runs"]} calls,
on {mach["cpu"]} ({mach["cpus"]} CPUs).

| format | runtime | file | mAP50 | mAP50-95 | drop vs PyTorch | latency (ms) | latency / PyTorch |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

The export is published only if its mAP50-95 is at most {m["check"]["tolerance_points"]} points below PyTorch's.

## Operating thresholds
{_thresholds(m)}

## Limitations
- The val split is small; its mAP is a rough estimate, not a guarantee.
- Latency was measured on the machine above, shared with other work; it varies with hardware and load.
- Fixed input size {m["model"]["imgsz"]} px unless exported with `dynamic`; larger images are letterboxed down.

## Licence
{m["licence"]}
"""
