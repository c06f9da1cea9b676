"""Turn COCO JSON, Pascal VOC XML or YOLO polygon labels into a YOLO detection dataset.

Each reader returns class names and, per split, (image, boxes) rows; :func:`write_dataset`
writes them. Inputs are only read. COCO goes through pycocotools; VOC through the standard
library's XML parser. Pixel boxes are clipped to the image, then normalised.
"""

from __future__ import annotations

import contextlib
import io
import xml.etree.ElementTree as ET
from pathlib import Path

from detector.data import labels as labelling
from detector.data import spec as specs
from detector.data.labels import Box
from detector.data.write import write_dataset
from detector.errors import DetectorError

Rows = dict[str, list[tuple[Path, list[Box]]]]
Sources = dict[str, tuple[Path, Path | None]]  # split -> (annotations, images folder or None)


def pixel_box(cls: int, x0: float, y0: float, x1: float, y1: float, w: float, h: float) -> Box | None:
    """A normalised box from pixel corners, clipped to the image; None when nothing is left."""
    x0, x1 = max(0.0, min(x0, w)), max(0.0, min(x1, w))
    y0, y1 = max(0.0, min(y0, h)), max(0.0, min(y1, h))
    if x1 <= x0 or y1 <= y0:
        return None
    return cls, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h


def _missing(paths: list[Path], where: str) -> None:
    if paths:
        shown = "\n  ".join(map(str, paths[:5]))
        more = f"\n  ... and {len(paths) - 5} more" if len(paths) > 5 else ""
        raise DetectorError(
            f"{len(paths)} image(s) named in {where} are missing:\n  {shown}{more}\n"
            "Pass the images folder after the annotation file: --train ANNOTATIONS IMAGES_DIR."
        )


def _image_size(path: Path) -> tuple[float, float]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def _coco_names(cocos: dict) -> tuple[dict[int, str], dict[int, int]]:
    """Class names and COCO category id -> class id. Roboflow's unused parent category is dropped."""
    cats: dict[int, str] = {}
    for split, coco in cocos.items():
        for c in coco.loadCats(coco.getCatIds()):
            if cats.setdefault(c["id"], c["name"]) != c["name"]:
                raise DetectorError(
                    f"COCO category id {c['id']} is {cats[c['id']]!r} elsewhere but {c['name']!r} in {split}."
                )
    used = {a["category_id"] for coco in cocos.values() for a in coco.dataset.get("annotations", [])}
    parents = {c.get("supercategory") for coco in cocos.values() for c in coco.dataset.get("categories", [])}
    keep = [i for i in sorted(cats) if i in used or cats[i] not in parents]
    return {k: cats[i] for k, i in enumerate(keep)}, {i: k for k, i in enumerate(keep)}


def read_coco(sources: Sources) -> tuple[dict[int, str], Rows]:
    """Read COCO instance JSON files (one per split) with pycocotools. Crowd annotations are skipped."""
    from pycocotools.coco import COCO

    cocos = {}
    for split, (ann, _) in sources.items():
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress
                cocos[split] = COCO(str(ann))
        except Exception as e:
            raise DetectorError(f"{ann} is not a COCO annotation file: {type(e).__name__}: {e}") from e
    names, cat2cls = _coco_names(cocos)
    rows: Rows = {}
    for split, coco in cocos.items():
        ann, folder = sources[split]
        folder = folder or ann.parent
        rows[split], missing = [], []
        for img in coco.loadImgs(sorted(coco.getImgIds())):
            path = folder / img["file_name"]
            if not path.is_file():
                missing.append(path)
                continue
            w, h = img.get("width"), img.get("height")
            if not (w and h):
                w, h = _image_size(path)
            boxes = []
            for a in coco.loadAnns(coco.getAnnIds(imgIds=img["id"], iscrowd=False)):
                if a["category_id"] in cat2cls and len(a.get("bbox") or []) == 4:
                    x, y, bw, bh = a["bbox"]
                    box = pixel_box(cat2cls[a["category_id"]], x, y, x + bw, y + bh, w, h)
                    boxes += [box] if box else []
            rows[split].append((path, boxes))
        _missing(missing, str(ann))
    return names, rows


def _voc_file(xml: Path, folder: Path) -> tuple[Path, float, float, list[tuple[str, tuple]]]:
    """(image path, width, height from the XML or 0, [(object name, (xmin, ymin, xmax, ymax))])."""
    try:
        root = ET.parse(xml).getroot()
        fname = (root.findtext("filename") or "").strip()
        w, h = float(root.findtext("size/width") or 0), float(root.findtext("size/height") or 0)
        objs = [
            (
                o.findtext("name", "").strip(),
                tuple(float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")),
            )
            for o in root.iter("object")
        ]
    except (ET.ParseError, TypeError, ValueError) as e:
        raise DetectorError(f"{xml} is not a Pascal VOC annotation ({e}).") from e
    path = folder / fname
    if not (fname and path.is_file()):  # fall back to the XML's own name with any image suffix
        alt = [folder / f"{xml.stem}.{x}" for x in sorted(specs.IMG_FORMATS)]
        path = next((p for p in alt if p.is_file()), path)
    return path, w, h, objs


def read_voc(sources: Sources, names: list[str] | None = None) -> tuple[dict[int, str], Rows]:
    """Read Pascal VOC XML folders (one per split). Class ids follow ``names``, else sorted object names.

    Coordinates are read as pixel edges (CVAT, LabelImg, Roboflow); the original VOC devkit's
    1-based convention differs from that by under one pixel.
    """
    raw: dict[str, list] = {}
    for split, (ann, folder) in sources.items():
        xmls = sorted(ann.glob("*.xml")) if ann.is_dir() else [ann]
        if not xmls:
            raise DetectorError(f"No .xml files in {ann}.")
        raw[split] = [_voc_file(x, folder or (ann if ann.is_dir() else ann.parent)) for x in xmls]
    found = {n for files in raw.values() for *_, objs in files for n, _ in objs}
    order = list(names or sorted(found))
    unknown = sorted(found - set(order))
    if unknown:
        raise DetectorError(f"VOC objects named {unknown} are not in --names {order}; add them.")
    ids = {n: i for i, n in enumerate(order)}
    rows: Rows = {}
    for split, files in raw.items():
        _missing([p for p, *_ in files if not p.is_file()], str(sources[split][0]))
        rows[split] = []
        for path, w, h, objs in files:
            if not (w and h):
                w, h = _image_size(path)
            boxes = [pixel_box(ids[n], *xyxy, w, h) for n, xyxy in objs]
            rows[split].append((path, [b for b in boxes if b]))
    return dict(enumerate(order)), rows


def read_polygons(yaml_path: str | Path) -> tuple[dict[int, str], Rows]:
    """Read a YOLO dataset whose labels hold polygons (segmentation); each becomes its bounding box.

    Raises:
        DetectorError: A label line is malformed (converting would silently drop it).
    """
    spec = specs.load(yaml_path)
    rows: Rows = {}
    bad = []
    for split, images in spec.splits.items():
        rows[split] = []
        for image in images:
            lab = labelling.read(specs.label_path(image), spec.nc)
            bad += [p for p in lab.problems if p.severity == "error" and p.code != "mixed-rows"]
            rows[split].append((image, lab.boxes))
    if bad:
        shown = "\n  ".join(str(p) for p in bad[:10])
        raise DetectorError(f"{len(bad)} label problem(s) in {spec.yaml_path}; fix them first:\n  {shown}")
    return dict(spec.names), rows


def convert(
    fmt: str,
    out: str | Path,
    sources: Sources | None = None,
    data: str | Path | None = None,
    names: list[str] | None = None,
    link: str = "copy",
) -> Path:
    """Convert a dataset into a new YOLO detection dataset in ``out``; returns its data.yaml.

    Args:
        fmt: ``coco``, ``voc`` or ``polygons``.
        out: New output folder (must not exist).
        sources: coco/voc: split -> (annotation file or folder, images folder or None = beside it).
        data: polygons: the source data.yaml.
        names: voc: class names in id order (default: sorted object names).
        link: How images are placed: copy, symlink or hardlink.
    """
    if fmt == "polygons":
        if not data:
            raise DetectorError("convert polygons needs the source data.yaml: --data path/to/data.yaml")
        class_names, rows = read_polygons(data)
        note = f"Converted by detector-data from YOLO polygons: {data}"
    elif fmt in ("coco", "voc"):
        if not sources:
            raise DetectorError(f"convert {fmt} needs at least --train ANNOTATIONS [IMAGES_DIR].")
        for ann, _ in sources.values():
            if not ann.exists():
                raise DetectorError(f"{ann} does not exist.")
        class_names, rows = read_coco(sources) if fmt == "coco" else read_voc(sources, names)
        note = f"Converted by detector-data from {fmt.upper()}: " + ", ".join(
            f"{s}={a}" for s, (a, _) in sources.items()
        )
    else:
        raise DetectorError(f"Unknown format {fmt!r}; use coco, voc or polygons.")
    return write_dataset(out, class_names, rows, link=link, note=note)
