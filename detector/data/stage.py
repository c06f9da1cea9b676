"""Give Ultralytics a read-only view of a dataset.

Ultralytics writes ``labels/<split>.cache`` beside the label files, and a symlinked *folder*
does not stop that (it resolves to the real dataset). So the staged view is a real folder of
per-file symlinks inside the run folder: the cache lands there and the dataset stays
byte-identical.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from detector.data.spec import DataSpec, label_path


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


def stage(spec: DataSpec, out_dir: str | Path) -> Path:
    """Mirror every split of ``spec`` under ``out_dir`` as symlinks and write a data.yaml there.

    Images keep their path relative to the deepest folder all of a split's images share, so
    file names stay unique even when a split lists several folders.

    Returns:
        Path of the staged ``data.yaml``.
    """
    out = Path(out_dir).resolve()
    doc: dict = {"path": str(out), "names": dict(spec.names), "nc": spec.nc}
    for split, images in spec.splits.items():
        common = Path(os.path.commonpath([str(p.parent) for p in images]))
        for image in images:
            dst = out / "images" / split / image.relative_to(common)
            _link(image, dst)
            lab = label_path(image)
            if lab.is_file():
                _link(lab, label_path(dst))
        doc[split] = f"images/{split}"
    yaml_path = out / "data.yaml"
    yaml_path.write_text(
        f"# Read-only view of {spec.yaml_path}, staged by detector (symlinks).\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )
    return yaml_path
