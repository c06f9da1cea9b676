"""Finished training runs, as ``detector-export`` reads them: ``run=latest`` or a run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from detector.errors import DetectorError


@dataclass
class Run:
    """A finished training run, as read from its folder."""

    dir: Path
    summary: dict
    best: Path
    data_yaml: Path  # the staged read-only view inside the run
    imgsz: int | list[int]
    name: str


def find_run(run: str, runs_dir: str | Path) -> Path:
    """``run=latest``: the run under ``runs_dir`` whose complete summary.json is newest; else a path.

    Raises:
        DetectorError: No finished run exists.
    """
    if str(run) != "latest":
        return Path(str(run)).expanduser().resolve()
    root = Path(runs_dir).expanduser()
    multirun = [
        *root.glob("multirun/*/*/summary.json"),
        *root.glob("multirun/*/*/*/summary.json"),
    ]  # <time>/<job>; older <name>/<time>/<job>
    found = [*root.glob("*/*/summary.json"), *multirun]
    done = [p for p in found if _complete(p)]
    if not done:
        raise DetectorError(
            f"run=latest: no finished run under {root} (none has a complete summary.json). "
            "Train one with detector-train, or pass run=<run folder>."
        )
    return max(done, key=lambda p: p.stat().st_mtime).parent.resolve()


def _complete(summary: Path) -> bool:
    try:
        return json.loads(summary.read_text()).get("status") == "complete"
    except (OSError, ValueError, AttributeError):
        return False


def inspect_run(run_dir: str | Path) -> Run:
    """Read a run folder, checking that it finished and holds what an export needs.

    Raises:
        DetectorError: The folder does not exist, did not finish, or lacks weights or data.
    """
    d = Path(run_dir).expanduser().resolve()
    if not d.is_dir():
        raise DetectorError(f"Run folder not found: {d}. Pass run=<run folder> or run=latest.")
    summary_path = d / "summary.json"
    if not _complete(summary_path):
        raise DetectorError(
            f"{d} has no complete summary.json: its training did not finish. Pick a finished run "
            "(run=latest picks the newest one) or train again."
        )
    summary = json.loads(summary_path.read_text())
    best = d / "weights" / "best.pt"
    if not best.is_file():
        raise DetectorError(f"{d} has no weights/best.pt to export. Pick another run, or train again.")
    data_yaml = d / "data" / "data.yaml"
    if not data_yaml.is_file():
        raise DetectorError(f"{d} has no data/data.yaml (its staged dataset); the accuracy check needs it.")
    args = yaml.safe_load((d / "args.yaml").read_text()) if (d / "args.yaml").is_file() else {}
    imgsz = args.get("imgsz") or summary.get("config", {}).get("train", {}).get("imgsz") or 640
    name = summary.get("config", {}).get("name") or d.parent.name
    return Run(d, summary, best, data_yaml, imgsz, str(name))
