"""One model on one split: a val pass, its figures with intervals, thresholds; the API that training,
export, sweeps, ``detector-eval`` (:mod:`detector.review.app`) and scripts use.

For scripts (benchmarks, tiling, balancing), the figures ``metrics.json`` holds for one model::

    from detector.eval.run import evaluate_weights, pass_stats
    boot = {"resamples": 1000, "seed": 0, "level": 0.95}          # configs/eval/default.yaml
    doc = evaluate_weights(Path("best.pt"), Path("data.yaml"), "test", 320, boot)
    doc["overall"]["mAP50-95"]        # {"value", "low", "high", "n_valid"}
    doc["per_class"]["open"]["mAP50-95"]

    # a paired comparison on the same images (one pass each, then the bootstrap):
    a = pass_stats(Path("a.pt"), data, "test", 320, work=tmp)
    b = pass_stats(Path("b.onnx"), data, "test", 320, work=tmp)
    paired_bootstrap(a, b, **boot).as_dict()       # detector.eval.bootstrap

A pass reads a symlinked copy of the split made under ``work``, so Ultralytics' label cache never
lands in the dataset, and Ultralytics' own save folder goes there too.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from detector import config, runtime
from detector.data import spec as data_spec
from detector.data.stage import stage
from detector.errors import DetectorError
from detector.eval import thresholds
from detector.eval.bootstrap import BootstrapResult, bootstrap
from detector.eval.stats import EvalStats, collect
from detector.io import write_json

log = logging.getLogger(__name__)

BOOTSTRAP = ("resamples", "seed", "level")
EVAL_KEYS = ("val", "gallery", "report")
# Ultralytics val() keys this command sets itself, refused under eval.val with the way to set them.
RESERVED = {
    "model": "pass MODEL as the first argument: detector-eval runs/<run> or NAME/vN",
    "data": "use data=/path/to/data.yaml",
    "split": "use split=test|val",
    "project": "outputs go to the eval folder (hydra.run.dir)",
    "name": "outputs go to the eval folder (hydra.run.dir)",
    "plots": "report.html draws its own plots (eval.report=false turns it off)",
    "mode": "the entry point sets it",
    "task": "detector evaluates detection models",
}


def stage_split(spec: data_spec.DataSpec, splits: list[str], out: Path) -> Path:
    """A symlinked copy of ``splits`` (Ultralytics wants train and val keys: absent ones point at the first)."""
    sub = data_spec.DataSpec(spec.yaml_path, spec.root, spec.names, {s: spec.splits[s] for s in splits})
    yaml_path = stage(sub, out)
    doc = yaml.safe_load(yaml_path.read_text())
    for key in ("train", "val"):
        doc.setdefault(key, doc[splits[0]])
    yaml_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return yaml_path


def pass_stats(
    weights: Path, data_yaml: Path, split: str, imgsz: Any, val: dict | None = None, work: Path | None = None
) -> EvalStats:
    """One validation pass of ``weights`` (any exported format, through its own runtime) on ``split``.

    ``val``: further Ultralytics val() keys. ``work``: a folder for the staged split and Ultralytics'
    save folder (a temporary folder, removed afterwards, when None).
    """
    spec = data_spec.load(data_yaml, strict=False)
    if split not in spec.splits:
        raise DetectorError(f"{spec.yaml_path} has no images in a `{split}:` split.")
    runtime.configure()
    with tempfile.TemporaryDirectory(dir=work, prefix=".eval-") as tmp:
        staged = stage_split(spec, [split], Path(tmp) / "data")
        kw = {"imgsz": imgsz, **(val or {}), "project": str(Path(tmp)), "name": "val", "exist_ok": True}
        stats = collect(weights, staged, split, **kw)
        stats.im_files = [str(Path(f).resolve()) for f in stats.im_files]  # the real images, not the links
    return stats


def summarise(stats: EvalStats, res: BootstrapResult) -> dict[str, Any]:
    """One model's figures on one split, with intervals: a ``metrics.json`` entry."""
    nt = stats.gt_per_class()
    per_class = res.as_dict()["per_class"]
    imgs = {c: len(set(stats.target_img[stats.target_cls.astype(int) == c].tolist())) for c in stats.names}
    for c, name in stats.names.items():
        if name in per_class:
            per_class[name] = {"images": imgs[c], "boxes": int(nt[c]), **per_class[name]}
    doc = res.as_dict()
    return {
        "images": stats.n_images,
        "boxes": int(nt.sum()),
        "overall": doc["overall"],
        "per_class": per_class,
        "bootstrap": {k: doc[k] for k in ("resamples", "seed", "level", "seconds")},
        "ultralytics": stats.ultralytics,  # Ultralytics' own figures of the same pass
        "pass": {k: v for k, v in stats.meta.items() if k != "model"},
    }


def evaluate_weights(
    weights: Path,
    data_yaml: Path,
    split: str,
    imgsz: Any,
    boot: dict,
    val: dict | None = None,
    work: Path | None = None,
) -> dict[str, Any]:
    """Evaluate a weights (or exported) file on a split: mAP50, mAP50-95, P, R, F1, overall and per
    class, with bootstrap intervals (``boot``: resamples, seed, level). What ``metrics.json`` holds."""
    stats = pass_stats(weights, data_yaml, split, imgsz, val, work)
    return summarise(stats, bootstrap(stats, **boot))


def settings(cfg: DictConfig) -> tuple[dict, dict, dict]:
    """detector-eval's keys, checked before any inference: (eval keys, operating settings, val kwargs)."""
    e = config.require(cfg.eval, EVAL_KEYS, "eval")
    ops = operating_settings(cfg.eval)
    val = dict(e["val"] or {})
    config.validate("eval.val", val, allowed=RESERVED)
    return e, ops, val


OPERATING = ("threshold", "fallback_conf", "bootstrap")


def operating_settings(node: Any) -> dict:
    """The eval keys that choose thresholds (rule, fallback, bootstrap), checked before any work."""
    ops = config.require(node, OPERATING, "eval")
    boot = ops["bootstrap"] = config.require(ops["bootstrap"], BOOTSTRAP, "eval.bootstrap")
    if not (isinstance(boot["resamples"], int) and boot["resamples"] >= 1000 and 0 < boot["level"] < 1):
        raise DetectorError(
            f"eval.bootstrap={boot}: resamples must be a whole number >= 1000 and level in (0, 1), e.g. 0.95."
        )
    thresholds.parse_rule(ops["threshold"])
    return ops


def choose_thresholds(val_stats: EvalStats, ops: dict) -> tuple[dict, dict[int, float]]:
    """Per-class thresholds chosen on a val pass, with the figures at them there (what a manifest stores).

    Raises:
        DetectorError: A precision or recall target that no threshold meets, naming the classes.
    """
    rule = ops["threshold"]
    choices = thresholds.choose(val_stats, rule, float(ops["fallback_conf"]))
    bad = thresholds.unmet(choices, rule)
    if bad:
        raise DetectorError(
            f"eval.threshold={rule}: " + "; ".join(bad) + ". Lower the target, or use eval.threshold=f1."
        )
    values = {c: ch.threshold for c, ch in choices.items()}
    doc = {"rule": rule, "split": "val", "per_class": {ch.name: ch.as_dict() for ch in choices.values()}}
    doc["on_val"] = thresholds.at_thresholds(val_stats, values, **ops["bootstrap"])
    return doc, values


def write(out: Path, doc: dict) -> Path:
    """``metrics.json``, written last and atomically: a folder without it is not a finished eval."""
    path = out / "metrics.json"
    write_json(path, doc)
    return path
