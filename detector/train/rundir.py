"""A run folder: what makes it finished, how to find one, how to read one, and its summary's schema.

A run is *finished* when its ``summary.json`` says ``"status": "complete"``; nothing else counts.
``run=latest`` is the newest finished run anywhere under ``paths.runs_dir``: single runs,
multirun jobs and sweep trials alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from detector.errors import DetectorError

SUMMARY = "summary.json"
COMPLETE = "complete"
# Ultralytics' metric names -> ours (summary.json "metrics", sweeps, multirun tables).
METRICS = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
}


def metrics(results: dict | None) -> dict[str, float]:
    """Ultralytics' metrics dict (``results_dict``, a checkpoint's ``train_metrics``) under our names."""
    results = results or {}
    return {ours: float(results[k]) for k, ours in METRICS.items() if k in results}


def read_summary(run_dir: str | Path) -> dict | None:
    """The run's summary, or None when it has none (or an unreadable one)."""
    try:
        doc = json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_finished(run_dir: str | Path) -> bool:
    """True when the run's summary says it completed: the one definition of a finished run."""
    return (read_summary(run_dir) or {}).get("status") == COMPLETE


def find_run(run: str, runs_dir: str | Path) -> Path:
    """``run=latest``: the finished run under ``runs_dir`` whose summary.json is newest; else a path.

    Raises:
        DetectorError: No finished run exists.
    """
    if str(run) != "latest":
        return Path(str(run)).expanduser().resolve()
    root = Path(runs_dir).expanduser()
    done = [p for p in root.rglob(SUMMARY) if is_finished(p.parent)] if root.is_dir() else []
    if not done:
        raise DetectorError(
            f"run=latest: no finished run under {root} (none has a complete summary.json). "
            "Train one with detector-train, or pass run=<run folder>."
        )
    return max(done, key=lambda p: p.stat().st_mtime).parent.resolve()


@dataclass
class Run:
    """A finished training run, as read from its folder."""

    dir: Path
    summary: dict
    best: Path
    data_yaml: Path  # the staged read-only view inside the run
    imgsz: int | list[int]
    name: str
    tile: dict | None = None  # the summary's tile settings when the run trained on tiles


def inspect_run(run_dir: str | Path) -> Run:
    """Read a run folder, checking that it finished and holds what an export needs.

    Raises:
        DetectorError: The folder does not exist, did not finish, or lacks weights or data.
    """
    d = Path(run_dir).expanduser().resolve()
    if not d.is_dir():
        raise DetectorError(f"Run folder not found: {d}. Pass run=<run folder> or run=latest.")
    if not is_finished(d):
        raise DetectorError(
            f"{d} has no complete summary.json: its training did not finish. Pick a finished run "
            "(run=latest picks the newest one) or train again."
        )
    summary = read_summary(d)
    best = d / "weights" / "best.pt"
    if not best.is_file():
        raise DetectorError(f"{d} has no weights/best.pt to export. Pick another run, or train again.")
    data_yaml = d / "data" / "data.yaml"
    if not data_yaml.is_file():
        raise DetectorError(f"{d} has no data/data.yaml (its staged dataset); the accuracy check needs it.")
    args = yaml.safe_load((d / "args.yaml").read_text()) if (d / "args.yaml").is_file() else {}
    imgsz = args.get("imgsz") or summary.get("config", {}).get("train", {}).get("imgsz") or 640
    name = summary.get("config", {}).get("name") or d.parent.name
    return Run(d, summary, best, data_yaml, imgsz, str(name), summary.get("tile"))


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The config an interrupted run was started with (its ``.hydra/config.yaml``), for resuming it.

    Raises:
        DetectorError: Not a run folder, the run already finished, or it saved no checkpoint yet.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    cfg_file = run_dir / ".hydra" / "config.yaml"
    if not cfg_file.is_file():
        raise DetectorError(
            f"resume={run_dir}: not a run folder (no .hydra/config.yaml). Pass the folder that "
            "detector-train printed, e.g. resume=runs/<name>/<timestamp>."
        )
    if is_finished(run_dir):
        raise DetectorError(
            f"resume={run_dir}: that run finished (its summary.json says complete), so there is nothing "
            f"to resume. To train on from its weights, start a new run with model.weights={run_dir}/weights/best.pt."
        )
    if not any((run_dir / sub / "weights" / "last.pt").is_file() for sub in (".", "stage1")):
        raise DetectorError(
            f"resume={run_dir}: the run stopped before it saved a checkpoint (no weights/last.pt); "
            f"start it again with the overrides in {run_dir}/.hydra/overrides.yaml."
        )
    cfg = OmegaConf.load(cfg_file)
    OmegaConf.update(cfg, "resume", str(run_dir), force_add=True)
    return cfg


def transfer_warning(facts: dict[str, Any]) -> str | None:
    """A warning when under half of the model's tensors came from the checkpoint: a checkpoint of another
    task or architecture starts the model mostly from random weights."""
    moved, total = facts.get("tensors_transferred"), facts.get("tensors_total")
    if moved is None or not total or moved >= total / 2:
        return None
    return (
        f"only {moved} of {total} tensors were transferred from the checkpoint: it does not fit this architecture, "
        "so most of the model starts from random weights. Pick a checkpoint of the same architecture (model.arch)."
    )


def summary(plan: Any, stages: list[dict], extra: dict[str, Any]) -> dict[str, Any]:
    """The content of ``summary.json`` for a finished run (the schema every reader relies on).

    Args:
        plan: The run's :class:`detector.train.plan.Plan`.
        stages: One record per stage, in order (:func:`detector.train.run.stage_record`).
        extra: The rest, written as given: ``augment``, ``resumed``, ``tile`` (the tile settings and
            the cached tiled dataset a run trained on; null: whole images), ``config``, ``versions``,
            ``command``, ``wall_time_s``.
    """
    first, run_dir = stages[0], plan.run_dir
    pre = plan.pretrained
    low = transfer_warning(first) if pre.found else None
    return {
        "status": COMPLETE,
        "run_dir": str(run_dir),
        "metrics": stages[-1]["metrics"],
        "weights": {
            "best": str(run_dir / "weights" / "best.pt"),
            "last": str(run_dir / "weights" / "last.pt"),
        },
        "pretrained": pre.found,
        "pretrained_source": {
            "requested": pre.requested,
            "path": str(pre.path) if pre.path else None,
            "source": pre.source,
            "sha256": pre.sha256,
            "url": pre.url,
            "tensors_transferred": first.get("tensors_transferred", 0),
            "tensors_total": first.get("tensors_total"),
            "low_transfer": low is not None,
        },
        "freeze": {
            "setting": plan.freeze_setting,
            "layers": first["freeze"],
            "frozen_params": first.get("frozen_params"),
            "trainable_params": first.get("trainable_params"),
        },
        "model": {"arch": plan.arch, "backbone_layers": plan.layout.backbone, "layers": plan.layout.total},
        "data": {
            "yaml": str(plan.data.yaml_path),
            "names": plan.data.names,
            "counts": plan.data_report.counts,
            "fingerprint": plan.data_report.fingerprint,  # content hash: detector-data fingerprint
        },
        "stages": stages,
        "warnings": [*plan.warnings, *([low] if low else [])],
        **extra,
    }
