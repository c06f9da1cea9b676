"""Class imbalance: how uneven a dataset's classes are, and LVIS repeat factors that even them out.

The one implementation of the factor math: the dataset doctor (``detector-data check`` and
``stats``) reports with it, and the training sampler (:mod:`detector.train.sampler`) draws with it.

Repeat-factor sampling (Gupta et al., LVIS, CVPR 2019)::

    f(c) = the fraction of training images that contain class c
    r(c) = max(1, sqrt(t / f(c)))
    r(i) = the largest r(c) of the classes in image i (1 for an image without boxes)

Pure Python: no numpy, torch or Ultralytics, so the doctor and the plan stay fast to import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# The doctor suggests finetune.balance=repeat_factor (and balance=auto turns it on) at or above this
# ratio of the most to the least frequent class in train images. See docs/balance.md for the reason.
SUGGEST_RATIO = 5.0


def _sets(image_classes: Iterable[Iterable[int]]) -> list[frozenset[int]]:
    return [frozenset(int(c) for c in cs) for cs in image_classes]


def images_per_class(image_classes: Iterable[Iterable[int]], nc: int) -> list[int]:
    """How many images contain each class (an image counts once per class it holds)."""
    counts = [0] * nc
    for s in _sets(image_classes):
        for c in s:
            counts[c] += 1
    return counts


def repeat_factors(
    image_classes: Sequence[Iterable[int]], nc: int, t: float
) -> tuple[list[float | None], list[float]]:
    """LVIS repeat factors.

    Args:
        image_classes: The class ids of each training image's boxes (repeats and order do not matter;
            an empty entry is a background image).
        nc: The number of classes; every id must be in ``[0, nc)``.
        t: The frequency threshold, in (0, 1]: a class in a fraction ``f >= t`` of the images is not
            repeated, a rarer one ``sqrt(t / f)`` times.

    Returns:
        (per class, per image): ``r(c)``, None for a class no image contains; ``r(i)``.

    Raises:
        ValueError: ``t`` outside (0, 1], no images, or a class id out of range.
    """
    if not 0.0 < t <= 1.0:
        raise ValueError(f"the repeat-factor threshold must be in (0, 1], got {t}")
    sets = _sets(image_classes)
    if not sets:
        raise ValueError("no training images")
    bad = sorted({c for s in sets for c in s if not 0 <= c < nc})
    if bad:
        raise ValueError(f"class ids {bad} outside [0, {nc})")
    n = len(sets)
    per_class = [max(1.0, math.sqrt(t * n / k)) if k else None for k in images_per_class(sets, nc)]
    per_image = [max((per_class[c] or 1.0 for c in s), default=1.0) for s in sets]
    return per_class, per_image


def class_shares(image_classes: Sequence[Iterable[int]], nc: int, weights: Sequence[float]) -> list[float]:
    """The share of drawn images that contain each class when image i is drawn ``weights[i]`` times.

    With weights of 1 this is f(c); with the repeat factors it is the share after balancing. Shares add
    up to more than 1 when images hold several classes.
    """
    out = [0.0] * nc
    for w, s in zip(weights, _sets(image_classes), strict=True):
        for c in s:
            out[c] += w
    total = sum(weights)
    return [x / total for x in out] if total else out


@dataclass
class Imbalance:
    """The ratio of the most to the least frequent class, in boxes and in images, of one split."""

    split: str
    boxes: list[int]  # per class id
    images: list[int]  # per class id
    ratio_boxes: float | None  # None with fewer than two classes present
    ratio_images: float | None
    most: str | None  # the class with the most images
    least: str | None  # the class with the fewest images (among those present)
    absent: list[str]  # classes with no box in this split

    @property
    def suggest(self) -> bool:
        """True when repeat-factor sampling is worth turning on (images ratio >= SUGGEST_RATIO)."""
        return self.ratio_images is not None and self.ratio_images >= SUGGEST_RATIO

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "ratio_boxes": None if self.ratio_boxes is None else round(self.ratio_boxes, 2),
            "ratio_images": None if self.ratio_images is None else round(self.ratio_images, 2),
            "most": self.most,
            "least": self.least,
            "absent": self.absent,
            "suggest_balance": self.suggest,
            "suggest_at": SUGGEST_RATIO,
        }


def _ratio(counts: list[int]) -> float | None:
    present = [k for k in counts if k]
    return max(present) / min(present) if len(present) > 1 else None


def imbalance(split: str, image_boxes: Sequence[Sequence[int]], names: Mapping[int, str]) -> Imbalance:
    """The imbalance of one split, from the class id of every box of each image."""
    nc = len(names)
    boxes = [0] * nc
    for cs in image_boxes:
        for c in cs:
            boxes[c] += 1
    images = images_per_class(image_boxes, nc)
    present = [c for c in range(nc) if images[c]]
    most = max(present, key=lambda c: images[c]) if len(present) > 1 else None
    least = min(present, key=lambda c: images[c]) if len(present) > 1 else None
    return Imbalance(
        split,
        boxes,
        images,
        _ratio(boxes),
        _ratio(images),
        None if most is None else names[most],
        None if least is None else names[least],
        [names[c] for c in range(nc) if not images[c]],
    )


def suggestion(imb: Imbalance) -> str:
    """One line for the doctor's report: the ratios, and the suggestion when they are high."""
    if imb.ratio_images is None:
        return f"class balance ({imb.split}): fewer than two classes present, nothing to balance"
    line = (
        f"class balance ({imb.split}): most/least frequent class {imb.ratio_images:.1f}x in images, "
        f"{imb.ratio_boxes:.1f}x in boxes ({imb.most!r} vs {imb.least!r})"
    )
    if imb.suggest:
        line += f"; at >= {SUGGEST_RATIO:g}x, try detector-train finetune.balance=repeat_factor"
    return line
