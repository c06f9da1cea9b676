"""The ``detector-eval`` command: resolve, check, evaluate, compare, write, print.

    detector-eval MODEL [data=...] [split=test|val] [eval.threshold=f1|precision:P|recall:R]
    detector-eval A B                  # paired comparison on the same images: B - A, with a verdict

Everything that can be checked without inference is checked first (config keys, the threshold
rule, MODEL, a tampered artifact, the data's class names, the split). The eval folder (Hydra's
run folder) gets ``report.html`` and then ``metrics.json``, written last: a folder without it is
not a finished evaluation.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from detector.errors import DetectorError
from detector.eval import report, splits, thresholds
from detector.eval import run as evaluation
from detector.eval.bootstrap import PairedResult, bootstrap, paired_bootstrap
from detector.eval.report import interval_text
from detector.eval.stats import EvalStats
from detector.review import resolve
from detector.tables import table

log = logging.getLogger(__name__)
FIGURES = ("precision", "recall", "f1", "mAP50", "mAP50-95")


def metrics_table(ev: dict) -> list[str]:
    """One model's figures: overall, then per class, each with its interval."""
    rows = [
        ["class", "images", "boxes", *FIGURES],
        ["all", ev["images"], ev["boxes"], *(interval_text(ev["overall"][k]) for k in FIGURES)],
    ]
    rows += [
        [n, m["images"], m["boxes"], *(interval_text(m[k]) for k in FIGURES)]
        for n, m in ev["per_class"].items()
    ]
    return table(rows, left=1)


def thresholds_table(op: dict) -> list[str]:
    """P, R and F1 at each class's operating threshold on the evaluated split."""
    at = op["at_thresholds"]
    rows = [["class", "threshold", "precision", "recall", "f1"]]
    rows += [
        [
            "all (macro)",
            "",
            interval_text(at["precision"]),
            interval_text(at["recall"]),
            interval_text(at["f1_macro"]),
        ]
    ]
    rows += [
        [
            n,
            f"{at['thresholds'][n]:.3f}",
            interval_text(m["precision"]),
            interval_text(m["recall"]),
            interval_text(m["f1"]),
        ]
        for n, m in at["per_class"].items()
    ]
    return table(rows, left=1)


def comparison_table(cmp: dict) -> list[str]:
    rows = [
        ["B - A", "difference [95% interval]", "verdict"],
        ["mAP50-95 (all)", interval_text(cmp["overall"]["mAP50-95"]), cmp["verdict"]],
    ]
    rows += [[f"  {n}", interval_text(m["mAP50-95"]), m["verdict"]] for n, m in cmp["per_class"].items()]
    return table(rows, left=1)


def slicing_for(m: resolve.Model, tile: dict) -> Any:
    """How ``m``'s frames are sliced (:func:`detector.artifacts.slicing.resolve`), or None for whole frames.

    Raises:
        DetectorError: Bad tile settings, or tile settings for a run (sliced inference runs an export).
    """
    from detector.artifacts import slicing

    given = {k: v for k, v in tile.items() if v is not None}
    if m.version is None:
        if given:
            raise DetectorError(
                f"tile.* slices frames through an exported model's runtime; {m.label} is a run. "
                f"Export it first (detector-export run={m.label}) and evaluate the version."
            )
        return None
    return slicing.resolve(m.version.manifest(), given)


def _pass(m: resolve.Model, data_yaml: Path, split: str, val: dict, out: Path) -> EvalStats:
    if m.tile is None:
        return evaluation.pass_stats(m.file, data_yaml, split, m.imgsz, val, out)
    from detector.review.sliced import sliced_stats

    conf = float(val.get("conf", 0.001))  # Ultralytics val's default, for mAP
    return sliced_stats(m, data_yaml, split, conf)


def _passes(
    m: resolve.Model, spec: Any, split: str, ops: dict, val: dict, out: Path
) -> tuple[EvalStats, dict]:
    """One model's pass on the split (and on val, when its thresholds must be chosen there), and its
    operating point."""
    stats = _pass(m, spec.yaml_path, split, val, out)
    val_stats = None
    if split != "val" and not m.thresholds:
        val_stats = _pass(m, spec.yaml_path, "val", val, out)
    return stats, operating_point(m, stats, val_stats, ops)


def operating_point(m: resolve.Model, stats: EvalStats, val_stats: EvalStats | None, ops: dict) -> dict:
    """Per-class thresholds (stored in the version, else chosen on val) and P, R, F1 at them on the
    evaluated split: the figures a deployer will see."""
    if m.thresholds:
        values = {c: float(m.thresholds["per_class"][name]["threshold"]) for c, name in m.names.items()}
        doc = {k: v for k, v in m.thresholds.items() if k != "on_val"} | {"source": f"stored in {m.label}"}
    else:
        doc, values = evaluation.choose_thresholds(val_stats or stats, ops)
        doc.pop("on_val")
        doc["source"] = (
            "chosen on val" if val_stats else "chosen on this split (val), so its figures here are optimistic"
        )
    return {
        **doc,
        "at_thresholds": thresholds.at_thresholds(stats, values, **ops["bootstrap"]),
        "values": values,
    }


def _print(doc: dict, warnings: list[str]) -> None:
    for ev, label in zip(doc["models"], "AB", strict=False):
        head = f"{label}: " if len(doc["models"]) > 1 else ""
        print(
            f"\n{head}{ev['model']['label']} ({ev['model']['runtime']}) on {doc['data']['yaml']} {doc['split']}:"
        )
        print("\n".join(metrics_table(ev)))
        print(f"\nat the operating thresholds ({ev['thresholds']['source']}):")
        print("\n".join(thresholds_table(ev["thresholds"])))
    if "comparison" in doc:
        print(f"\npaired comparison on the same {doc['models'][0]['images']} images:")
        print("\n".join(comparison_table(doc["comparison"])))
    for w in warnings:
        print(f"\nwarning: {w}", file=sys.stderr)


def main(cfg: DictConfig, out: Path) -> Path:
    """Run ``detector-eval`` as ``cfg`` says, writing into ``out``; returns the eval folder.

    Raises:
        DetectorError: On bad input, before any inference (a threshold target no threshold meets:
            after the val pass, before anything is written).
    """
    e, ops, val = evaluation.settings(cfg)
    boot = ops["bootstrap"]
    refs = [str(r) for r in (cfg.models or [])]
    if len(refs) not in (1, 2):
        raise DetectorError(
            f"detector-eval takes one MODEL, or two to compare (A B); got {len(refs)}. "
            "MODEL is a run folder, latest, or an artifact version (NAME, NAME/vN, a version folder)."
        )
    models = [resolve.model(r, cfg.paths.runs_dir, cfg.paths.artifacts_dir) for r in refs]
    tile = dict(cfg.get("tile") or {})
    for m in models:
        m.tile = slicing_for(m, tile)  # bad tile settings fail here, before any inference
    spec = resolve.data(models[0], cfg.data.yaml if cfg.get("data") else None)
    for m in models[1:]:
        resolve.data(m, str(spec.yaml_path))  # B is scored on A's images: same class names needed
    split, warnings = splits.split(spec, cfg.split)
    if split != "val" and any(not m.thresholds for m in models):
        splits.split(spec, "val")  # thresholds are chosen there: it must be usable too
    for w in warnings:
        log.warning(w)
    out.mkdir(parents=True, exist_ok=True)
    done = [_passes(m, spec, split, ops, val, out) for m in models]
    paired: PairedResult | None = paired_bootstrap(done[0][0], done[1][0], **boot) if len(done) == 2 else None
    results = [paired.a, paired.b] if paired else [bootstrap(done[0][0], **boot)]  # one draw per image set
    doc: dict[str, Any] = {
        "status": "complete",
        "split": split,
        "split_chose_weights": split == "val",
        "data": {"yaml": str(spec.yaml_path), "names": spec.names},
        "warnings": warnings,
        "models": [
            {
                "model": m.as_dict(),
                **evaluation.summarise(s, r),
                "thresholds": {k: v for k, v in op.items() if k != "values"},
            }
            for m, (s, op), r in zip(models, done, results, strict=True)
        ],
    }
    if paired:
        doc["comparison"] = {"a": models[0].label, "b": models[1].label, **paired.as_dict()}
    if e["report"]:
        report.write(out / "report.html", doc, [(s, op["values"]) for s, op in done], int(e["gallery"]))
    evaluation.write(out, doc)
    _print(doc, warnings)
    return out
