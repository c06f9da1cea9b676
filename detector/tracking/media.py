"""What a finished run looks like in W&B: its facts, plots and a validation predictions table.

Boxes use W&B's overlay format (``position`` with ``middle``/``width``/``height`` as fractions of
the image), one box group for the ground truth and one for the predictions, so the UI can toggle
them and filter by class or score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector.data import spec


def run_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """The resolved facts of a run (what the config alone does not say), from summary.json."""
    data = summary["data"]
    return {
        "run_dir": summary["run_dir"],
        "pretrained_source": summary["pretrained_source"],
        "freeze": summary["freeze"],
        "model": summary["model"],
        "data": {
            "yaml": data["yaml"],
            "names": data["names"],
            "counts": data.get("counts"),
            "fingerprint": data.get("fingerprint"),  # None until the dataset fingerprint exists
        },
        "versions": summary["versions"],
    }


def plots(run_dir: Path) -> dict[str, Any]:
    """Ultralytics' plots in the run folder (PR curves, confusion matrix, results) as W&B images."""
    import wandb

    return {f"plots/{p.stem}": wandb.Image(str(p), caption=p.name) for p in sorted(run_dir.glob("*.png"))}


def _box(cls: int, cx: float, cy: float, w: float, h: float, names: dict[int, str], score=None) -> dict:
    box = {
        "position": {"middle": [cx, cy], "width": w, "height": h},  # fractions of the image size
        "class_id": cls,
        "box_caption": names.get(cls, str(cls)) + (f" {score:.2f}" if score is not None else ""),
    }
    if score is not None:
        box["scores"] = {"conf": score}
    return box


def ground_truth(label_file: Path, names: dict[int, str]) -> list[dict]:
    """W&B boxes for a YOLO label file; polygon lines become their bounding boxes."""
    boxes = []
    if not label_file.is_file():
        return boxes  # a background image
    for line in label_file.read_text().splitlines():
        v = [float(x) for x in line.split()]
        if len(v) == 5:
            boxes.append(_box(int(v[0]), *v[1:], names))
        elif len(v) >= 7:
            xs, ys = v[1::2], v[2::2]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            boxes.append(_box(int(v[0]), (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, names))
    return boxes


def predictions_table(summary: dict[str, Any], n: int, conf: float):
    """A ``wandb.Table`` of the first ``n`` val images with ground-truth and predicted boxes.

    The best weights predict at the training image size, on the training device.
    """
    import wandb

    from detector import runtime

    runtime.configure()  # before ultralytics is imported
    from ultralytics import YOLO

    data = spec.load(summary["data"]["yaml"])
    images = data.splits["val"][:n]
    train_args = summary["stages"][-1]["train"]
    results = YOLO(summary["weights"]["best"]).predict(
        [str(p) for p in images],
        imgsz=train_args.get("imgsz", 640),
        device=train_args.get("device"),
        conf=conf,
        verbose=False,
    )
    labels = {int(k): v for k, v in data.names.items()}
    table = wandb.Table(columns=["file", "image", "ground_truth", "predicted"])
    for path, r in zip(images, results, strict=True):
        gt = ground_truth(spec.label_path(path), labels)
        pred = [
            _box(int(c), *map(float, xywh), labels, score=round(float(s), 4))
            for xywh, c, s in zip(
                r.boxes.xywhn.tolist(), r.boxes.cls.tolist(), r.boxes.conf.tolist(), strict=True
            )
        ]
        boxes = {
            "ground_truth": {"box_data": gt, "class_labels": labels},
            "predictions": {"box_data": pred, "class_labels": labels},
        }
        table.add_data(path.name, wandb.Image(str(path), boxes=boxes), len(gt), len(pred))
    return table
