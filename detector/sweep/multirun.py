"""A summary table for a Hydra multirun (``detector-train -m ...``): one row per job.

Registered as a Hydra callback in ``configs/hydra/default.yaml``. When every job has ended,
it reads each job folder's ``summary.json`` and ``.hydra/overrides.yaml`` and writes
``summary.csv`` into the multirun folder, and prints the same table. It reads files, not job
return values, so it works with any launcher (basic, joblib, submitit).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from detector import redact
from detector.config import plain_overrides
from detector.io import write_text
from detector.tables import table as text_table
from detector.train import rundir

METRICS = tuple(reversed(rundir.METRICS.values()))  # mAP50-95, mAP50, recall, precision


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder (``<sweep_dir>/<job number>/``), in job order."""
    rows = []
    jobs = sorted(
        (d for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name)
    )
    for job in jobs:
        ov = job / ".hydra" / "overrides.yaml"
        overrides = plain_overrides(yaml.safe_load(ov.read_text()) or []) if ov.is_file() else []
        doc = rundir.read_summary(job) or {}
        metrics = doc.get("metrics", {})
        rows.append(
            {
                "job": int(job.name),
                "status": doc.get("status", "failed"),
                "overrides": redact.text(" ".join(overrides)),
                **{m: metrics.get(m, "") for m in METRICS},
                "wall_time_s": doc.get("wall_time_s", ""),
                "run_dir": str(job),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table: job, status, the overrides that differ between jobs, metrics."""
    if not rows:
        return "(no jobs)"
    split = [r["overrides"].split() for r in rows]
    common = set.intersection(*(set(s) for s in split))
    head = ["job", "status", "overrides", *METRICS, "wall_s"]
    body = [
        [
            str(r["job"]),
            r["status"],
            " ".join(o for o in s if o not in common) or "-",
            *(f"{r[m]:.4f}" if isinstance(r[m], float) else "-" for m in METRICS),
            f"{r['wall_time_s']:.0f}" if isinstance(r["wall_time_s"], (int, float)) else "-",
        ]
        for r, s in zip(rows, split, strict=True)
    ]
    return "\n".join(text_table([head, *body]))


def write(sweep_dir: Path) -> Path:
    """Write ``<sweep_dir>/summary.csv`` (atomically) and print the table; returns the CSV path."""
    rows = collect(sweep_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["job", "status", "overrides", *METRICS, "wall_time_s", "run_dir"]
    )
    writer.writeheader()
    writer.writerows(rows)
    path = sweep_dir / "summary.csv"
    write_text(path, buf.getvalue())
    print(f"\n{table(rows)}\n{path}")
    return path


class MultirunSummary(Callback):
    """Hydra callback: the multirun's summary table, once all jobs have ended."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if sweep_dir.is_dir():
            write(sweep_dir)
