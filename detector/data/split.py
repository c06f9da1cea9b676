"""A deterministic train/val(/test) split by ratio and seed.

Images are grouped by content hash, so byte-identical copies always land on the same side; the
groups are ordered by hash and shuffled with the seed, so the split depends only on the seed,
the ratios and the content (not on file names or listing order). Val (then test) first takes
one group holding each class, rarest class first, wherever train keeps at least one; the rest
fills the quotas in shuffled order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from detector.data import scan as scanning
from detector.data import spec as specs
from detector.data.write import write_dataset
from detector.errors import DetectorError


def _groups(items: list[scanning.Item]) -> list[list[scanning.Item]]:
    by_key: dict[str, list[scanning.Item]] = defaultdict(list)
    for it in items:
        by_key[it.info.sha256 or f"unreadable:{it.image}"].append(it)
    return [by_key[k] for k in sorted(by_key)]


def assign(
    items: list[scanning.Item], val: float, test: float = 0.0, seed: int = 0
) -> dict[str, list[scanning.Item]]:
    """Assign scanned items to splits (see the module docstring).

    Returns:
        split -> items; ``test`` only when ``test > 0``.

    Raises:
        DetectorError: Ratios outside [0, 1) or leaving nothing for train.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DetectorError(f"val={val} and test={test} must be in [0, 1) and leave some images for train.")
    groups = _groups(items)
    random.Random(seed).shuffle(groups)
    n = len(groups)
    quota = {"val": round(val * n), "test": round(test * n)}
    for s, r in (("val", val), ("test", test)):
        quota[s] = max(quota[s], 1) if r > 0 and n > 2 else quota[s]
    if n - quota["val"] - quota["test"] < 1:
        raise DetectorError(f"{n} distinct images cannot be split {1 - val - test:.2f}/{val}/{test}.")
    classes = [{b[0] for it in g for b in it.labels.boxes} for g in groups]
    side: list[str | None] = [None] * n
    count = {"val": 0, "test": 0}
    rarest = sorted({c for cs in classes for c in cs}, key=lambda c: (sum(c in cs for cs in classes), c))
    for s in ("val", "test"):
        taken: set[int] = set()
        for c in rarest:
            free = [i for i in range(n) if side[i] is None and c in classes[i]]
            if c in taken or len(free) < 2 or count[s] >= quota[s]:
                continue  # fewer than 2 left: the last group of class c stays in train
            side[free[0]], count[s] = s, count[s] + 1
            taken |= classes[free[0]]
        for i in range(n):
            if side[i] is None and count[s] < quota[s]:
                side[i], count[s] = s, count[s] + 1
    out: dict[str, list[scanning.Item]] = {"train": [], "val": []} | ({"test": []} if test > 0 else {})
    for g, s in zip(groups, side, strict=True):
        out[s or "train"] += g
    return out


def split(
    src: str | Path,
    out: str | Path,
    val: float = 0.2,
    test: float = 0.0,
    seed: int = 0,
    names: list[str] | None = None,
    link: str = "copy",
) -> Path:
    """Split a dataset (all of its splits pooled) into a new one in ``out``; returns its data.yaml.

    Args:
        src: A data.yaml (or a folder holding one), or a folder of images whose labels follow
            the images/ -> labels/ rule, with ``names``.
        out: New output folder (must not exist).
        val: Share of (distinct) images for val.
        test: Share for test; 0 writes no test split.
        seed: Shuffle seed.
        names: Class names, when ``src`` is a folder of images without a data.yaml.
        link: How images are placed: copy, symlink or hardlink. Label files are copied verbatim.
    """
    src = Path(src).expanduser()
    if src.is_dir() and not (src / "data.yaml").is_file():
        if not names:
            raise DetectorError(f"{src} has no data.yaml; pass the class names: --names NAME [NAME ...]")
        spec = specs.DataSpec(src / "data.yaml", src, dict(enumerate(names)), {"all": specs.images_in(src)})
        if not spec.splits["all"]:
            raise DetectorError(f"{src} holds no images ({', '.join(sorted(specs.IMG_FORMATS))}).")
    else:
        spec = specs.load(src)
    sides = assign(scanning.scan(spec, decode=False), val, test, seed)
    rows = {
        s: [
            (it.image, it.label if it.labels.exists else None)
            for it in sorted(items, key=lambda i: str(i.image))
        ]
        for s, items in sides.items()
    }
    note = f"Split by detector-data from {src}: seed={seed} val={val} test={test}"
    return write_dataset(out, dict(spec.names), rows, link=link, note=note)
