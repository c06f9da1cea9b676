"""Render augmented training images with their boxes, as the trainer would see them.

The images come from Ultralytics' own training dataset (``build_yolo_dataset``, mode ``train``)
built with the same train keys and ``augmentations`` that ``detector-train`` passes, so mosaic,
affine, HSV, flips and the albumentations pipeline all run exactly as in training. The grid is
drawn by Ultralytics' ``plot_images``, the function behind its ``train_batch*.jpg``.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from detector import runtime
from detector.data.stage import stage as stage_data
from detector.errors import DetectorError
from detector.io import atomic
from detector.train import plan as planning


@contextmanager
def training_dataset(cfg: DictConfig, batch: int = 16) -> Iterator[Any]:
    """Ultralytics' training dataset for ``cfg``, built as the trainer builds it (mode ``train``).

    The dataset is staged (symlinks) in a temporary folder that holds Ultralytics' label cache,
    and removed on exit.

    Raises:
        DetectorError: Bad augment/train/data config (the same checks as ``detector-train``).
    """
    kwargs, data, _ = planning.check_inputs(cfg)
    runtime.configure(weights_dir=cfg.paths.weights_dir)
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    with tempfile.TemporaryDirectory(prefix="detector-preview-") as tmp:
        data_yaml = stage_data(data, Path(tmp) / "data")
        args = get_cfg(overrides={**kwargs, "data": str(data_yaml), "mode": "train", "task": "detect"})
        info = check_det_dataset(str(data_yaml))
        yield build_yolo_dataset(args, info["train"], batch=batch, data=info, mode="train", stride=32)


def render(cfg: DictConfig, out: str | Path, n: int = 16, seed: int = 0) -> Path:
    """Write a PNG grid of ``n`` augmented training images with their boxes drawn.

    Args:
        cfg: The composed ``detector-train`` config (``augment``, ``train`` and ``data`` are used).
        out: PNG file to write (written to a temporary name, then renamed).
        n: Number of images, 1-64 (Ultralytics' grid is square).
        seed: Seed for the choice of images and the random augmentations.

    Raises:
        DetectorError: Bad augment/train/data config, or ``n`` outside 1-64.
    """
    if not 1 <= n <= 64:
        raise DetectorError(f"n={n}: the preview shows 1 to 64 images.")
    with training_dataset(cfg, batch=n) as dataset:
        import numpy as np
        from PIL import Image
        from ultralytics.utils.plotting import plot_images
        from ultralytics.utils.torch_utils import init_seeds

        init_seeds(seed)
        rng = random.Random(seed)
        picks = (
            rng.sample(range(len(dataset)), n) if n <= len(dataset) else rng.choices(range(len(dataset)), k=n)
        )
        batch = dataset.collate_fn([dataset[i] for i in picks])
        names = dataset.data["names"]
    grid = plot_images(labels=batch, names=names, save=False, max_subplots=n, threaded=False)
    out = Path(out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic(out) as tmp:
        Image.fromarray(np.asarray(grid)).save(tmp, format="PNG")
    return out
