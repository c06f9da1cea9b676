"""Read every image and label of a dataset once; check, stats, split and fingerprint share the result."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from detector.data import images, labels
from detector.data.spec import IMG_FORMATS, DataSpec, label_path


@dataclass
class Item:
    """One image of one split, with its label file."""

    split: str
    image: Path
    label: Path
    info: images.ImageInfo
    labels: labels.Labels


def scan(spec: DataSpec, decode: bool = True) -> list[Item]:
    """Hash (and with ``decode``, fully decode) every image of every split and parse its labels.

    Returns:
        One :class:`Item` per image, in split order then path order.
    """

    jobs = [(split, image) for split, paths in spec.splits.items() for image in paths]
    # Threads for images (file reads, hashing and Pillow release the GIL); labels are pure
    # Python parsing, faster on one thread.
    infos = images.parallel_map(lambda image: images.inspect(image, decode), [image for _, image in jobs])
    return [
        Item(split, image, lab, info, labels.read(lab, spec.nc))
        for (split, image), info in zip(jobs, infos, strict=True)
        for lab in [label_path(image)]
    ]


def orphan_labels(items: list[Item]) -> list[Path]:
    """Label files (``*.txt``) in the dataset's label folders that no image of any split points at.

    Only folders that differ from their images' folder are searched, so a split list such as
    ``train.txt`` beside the images is never mistaken for a label.
    """
    wanted = {str(it.label) for it in items}
    folders = {it.label.parent for it in items if it.label.parent != it.image.parent}
    out = []
    for folder in sorted(folders):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.endswith(".txt") and e.path not in wanted and e.name != "classes.txt":
                out.append(Path(e.path))
    return sorted(out)


def image_for(label: Path) -> str:
    """Where an orphan label's image was expected, for the message (``labels`` -> ``images``)."""
    sa, sb = f"{os.sep}labels{os.sep}", f"{os.sep}images{os.sep}"
    s = str(label.with_suffix(""))
    exts = "{" + ",".join(sorted(IMG_FORMATS)) + "}"
    return f"{sb.join(s.rsplit(sa, 1))}.{exts}"
