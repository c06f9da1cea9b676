"""PNG plots of a dataset: class counts, class balance, box sizes, aspect ratios, boxes per image, a sample grid.

Uses matplotlib's object API with the Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

from detector.data import balance
from detector.data.scan import Item, scan
from detector.data.spec import DataSpec
from detector.io import atomic

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path: Path) -> Path:
    with atomic(path) as tmp:
        fig.savefig(tmp)
    return path


def _px_boxes(items: list[Item]) -> list[tuple[float, float]]:
    return [
        (w * it.info.width, h * it.info.height)
        for it in items
        if it.info.width
        for _, _, _, w, h in it.labels.boxes
    ]


def class_counts(spec: DataSpec, items: list[Item], path: Path) -> Path:
    """Boxes per class, stacked by split."""
    fig = _figure(max(6.4, 0.5 * spec.nc + 2))
    ax = fig.add_subplot()
    bottom = [0] * spec.nc
    for k, split in enumerate(spec.splits):
        c = Counter(b[0] for it in items if it.split == split for b in it.labels.boxes)
        heights = [c[i] for i in range(spec.nc)]
        ax.bar(
            list(spec.names.values()), heights, bottom=bottom, label=split, color=PALETTE[k % len(PALETTE)]
        )
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    ax.set(ylabel="boxes", title="Boxes per class")
    ax.tick_params(axis="x", labelrotation=45 if spec.nc > 6 else 0)
    ax.legend()
    return _save(fig, path)


def class_balance(spec: DataSpec, items: list[Item], path: Path, threshold: float) -> Path:
    """Train images per epoch that hold each class: as they are, and drawn by repeat factor.

    An epoch of repeat-factor sampling holds as many images as the split (``balance_epoch=dataset``),
    drawn in proportion to each image's factor, so the bars after balancing add up like the ones before.
    """
    train = [it for it in items if it.split == "train"] or items
    classes = [[b[0] for b in it.labels.boxes] for it in train]
    _, factors = balance.repeat_factors(classes, spec.nc, threshold)
    bars = {
        "as they are": balance.images_per_class(classes, spec.nc),
        f"repeat_factor, t={threshold:g}": [
            len(train) * s for s in balance.class_shares(classes, spec.nc, factors)
        ],
    }
    fig = _figure(max(6.4, 0.6 * spec.nc + 2))
    ax = fig.add_subplot()
    for k, (label, heights) in enumerate(bars.items()):
        xs = [i + (k - 0.5) * 0.4 for i in range(spec.nc)]
        ax.bar(xs, heights, width=0.4, label=label, color=PALETTE[k])
    ax.set_xticks(range(spec.nc), list(spec.names.values()))
    ax.set(ylabel=f"images per epoch of {len(train)}", title="Train images holding each class, per epoch")
    ax.tick_params(axis="x", labelrotation=45 if spec.nc > 6 else 0)
    ax.legend()
    return _save(fig, path)


def box_sizes(items: list[Item], path: Path) -> Path:
    """Box width against height in pixels (2-D histogram)."""
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot()
    wh = _px_boxes(items)
    if wh:
        _, _, _, im = ax.hist2d([w for w, _ in wh], [h for _, h in wh], bins=40, cmin=1, cmap="viridis")
        fig.colorbar(im, ax=ax, label="boxes")
    ax.set(xlabel="box width (px)", ylabel="box height (px)", title=f"Box sizes ({len(wh)} boxes)")
    return _save(fig, path)


def aspect_ratios(items: list[Item], path: Path) -> Path:
    """Histogram of box aspect ratio (width / height, log scale)."""
    fig = _figure()
    ax = fig.add_subplot()
    ratios = [w / h for w, h in _px_boxes(items) if w > 0 and h > 0]
    if ratios:
        lo, hi = min(ratios), max(ratios)
        bins = [lo * (hi / lo) ** (k / 40) for k in range(41)] if hi > lo else 10
        ax.hist(ratios, bins=bins, color=PALETTE[2])
        ax.set_xscale("log")
        ticks = [t for t in (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8) if lo <= t <= hi] or [1]
        ax.set_xticks(ticks, [f"{t:g}" if t >= 1 else f"1/{1 / t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set(xlabel="width / height", ylabel="boxes", title="Box aspect ratios")
    return _save(fig, path)


def boxes_per_image(spec: DataSpec, items: list[Item], path: Path) -> Path:
    """Histogram of boxes per image, by split (0 = background images)."""
    fig = _figure()
    ax = fig.add_subplot()
    per = {s: [len(it.labels.boxes) for it in items if it.split == s] for s in spec.splits}
    top = max((max(v) for v in per.values() if v), default=0)
    ax.hist(list(per.values()), bins=range(top + 2), label=list(per), align="left", color=PALETTE[: len(per)])
    ax.set(xlabel="boxes in the image", ylabel="images", title="Boxes per image")
    ax.legend()
    return _save(fig, path)


def sample_grid(spec: DataSpec, items: list[Item], path: Path, n: int = 16, seed: int = 0) -> Path:
    """``n`` random images (seeded) with their boxes and class names drawn."""
    from matplotlib.patches import Patch
    from PIL import Image, ImageDraw

    ok = [it for it in items if it.info.width and it.info.error is None]
    pick = random.Random(seed).sample(ok, min(n, len(ok)))
    cols = max(1, math.ceil(math.sqrt(len(pick))))
    rows = max(1, math.ceil(len(pick) / cols))
    fig = _figure(3 * cols, 3 * rows)
    for k, it in enumerate(pick):
        with Image.open(it.image) as im:
            im = im.convert("RGB")
        draw = ImageDraw.Draw(im)
        line = max(1, round(max(im.size) / 200))
        for cls, cx, cy, w, h in it.labels.boxes:
            x0, y0 = (cx - w / 2) * im.width, (cy - h / 2) * im.height
            box = (x0, y0, x0 + w * im.width, y0 + h * im.height)
            draw.rectangle(box, outline=PALETTE[cls % len(PALETTE)], width=line)
            draw.text((box[0] + 2, box[1] + 1), spec.names[cls], fill=PALETTE[cls % len(PALETTE)])
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(im)
        ax.set_title(f"{it.split}/{it.image.name}"[:40], fontsize=7)
        ax.axis("off")
    handles = [Patch(color=PALETTE[i % len(PALETTE)], label=n) for i, n in spec.names.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 8), fontsize=8)
    return _save(fig, path)


def plot(
    spec: DataSpec, out_dir: str | Path, samples: int = 16, seed: int = 0, *, threshold: float
) -> list[Path]:
    """Write every plot of ``spec`` into ``out_dir`` (created if needed).

    Args:
        threshold: The repeat-factor threshold of the class balance plot (``finetune.balance_threshold``).

    Returns:
        The PNG files written: class_counts, class_balance, box_sizes, aspect_ratios, boxes_per_image,
        samples.
    """
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    items = scan(spec)
    return [
        class_counts(spec, items, out / "class_counts.png"),
        class_balance(spec, items, out / "class_balance.png", threshold),
        box_sizes(items, out / "box_sizes.png"),
        aspect_ratios(items, out / "aspect_ratios.png"),
        boxes_per_image(spec, items, out / "boxes_per_image.png"),
        sample_grid(spec, items, out / "samples.png", samples, seed),
    ]
