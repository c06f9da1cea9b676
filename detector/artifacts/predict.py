"""Run a published version's exported file through its own runtime (never the PyTorch weights).

This is the proof that an artifact deploys on its own: only files inside the version folder are
read, every file under the export's path must be listed in the manifest with a matching sha256
(:func:`detector.artifacts.integrity.export_file`), and the backend that ran is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector import runtime
from detector.artifacts import runtimes, slicing
from detector.artifacts.integrity import export_file
from detector.artifacts.store import Version
from detector.data.spec import IMG_FORMATS
from detector.errors import DetectorError
from detector.io import write_json


def _images(paths: list[str]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix[1:].lower() in IMG_FORMATS)
        elif p.is_file():
            out.append(p)
        else:
            raise DetectorError(f"Image not found: {p}. Pass image files or folders of images.")
    if not out:
        raise DetectorError(f"No images ({', '.join(sorted(IMG_FORMATS))}) in {', '.join(paths)}.")
    return out


def pick_format(manifest: dict, fmt: str | None) -> str:
    """The exported format to run: ``fmt``, else the version's own (never ``pytorch``).

    Raises:
        DetectorError: ``fmt`` is PyTorch or not in this version.
    """
    exported = [f for f in manifest["exports"] if f != "pytorch"]
    fmt = fmt or manifest.get("format") or exported[0]
    if fmt not in exported:
        raise DetectorError(
            f"predict runs an exported file through its own runtime; this version has {', '.join(exported)}, "
            f"not {fmt!r}. Use --format {exported[0]}."
        )
    return fmt


def unique_name(stem: str, used: set[str]) -> str:
    """``stem.jpg``, or ``stem_2.jpg``, ``stem_3.jpg``... when taken (names compared case-blind), marked used."""
    name, n = f"{stem}.jpg", 1
    while name.lower() in used:
        n += 1
        name = f"{stem}_{n}.jpg"
    used.add(name.lower())
    return name


def _boxes(r) -> list[dict[str, Any]]:
    b = r.boxes
    return [
        {
            "class": int(c),
            "name": r.names[int(c)],
            "confidence": round(float(p), 4),
            "xyxy": [round(float(v), 1) for v in xyxy],
        }
        for c, p, xyxy in zip(b.cls.tolist(), b.conf.tolist(), b.xyxy.tolist(), strict=True)
    ]


def _read(path: Path):
    """The image as Ultralytics reads it, or None when it cannot be decoded."""
    from ultralytics.utils.patches import imread

    try:
        return imread(str(path))
    except Exception:  # a decoder raises many types on a broken file
        return None


# A version published without thresholds, and no --conf: Ultralytics' own predict default.
NO_THRESHOLDS_CONF = 0.25


def class_thresholds(manifest: dict, conf: float | None) -> tuple[dict[int, float], str]:
    """The confidence each class must reach: ``conf`` for all, else the version's stored per-class
    thresholds (``detector-export`` chose them on val), else :data:`NO_THRESHOLDS_CONF`."""
    names = {int(k): v for k, v in manifest["model"]["names"].items()}
    stored = (manifest.get("thresholds") or {}).get("per_class")
    if conf is not None:
        return dict.fromkeys(names, float(conf)), "--conf"
    if stored:
        rule = manifest["thresholds"]["rule"]
        return {c: float(stored[n]["threshold"]) for c, n in names.items()}, f"manifest ({rule} on val)"
    return dict.fromkeys(names, NO_THRESHOLDS_CONF), "default (the version stores no thresholds)"


def _kept(r, per_class: dict[int, float]):
    """The result with only the boxes that reach their class's threshold."""
    b = r.boxes
    return r[[p >= per_class[int(c)] for c, p in zip(b.cls.tolist(), b.conf.tolist(), strict=True)]]


def predict(
    version: Version,
    images: list[str],
    out: Path,
    fmt: str | None = None,
    conf: float | None = None,
    tile: dict[str, Any] | None = None,
) -> Path:
    """Detect objects in ``images`` with the version's exported file; write annotated images + boxes.json.

    A box is kept when it reaches its class's threshold (:func:`class_thresholds`). A version trained
    on tiles slices every image as it was trained; ``tile`` overrides that (``size``, 0 for whole
    frames, ``overlap``, ``batch``, ``full_frame``) and slices a whole-frame version too. An image that
    cannot be decoded is listed under ``skipped``; output names are unique across folders.

    Returns:
        The path of ``boxes.json`` in ``out``.

    Raises:
        DetectorError: Missing images, an unknown format, export files that differ from the manifest, or
            no image that could be read (nothing is written then).
    """
    manifest = version.manifest()
    fmt = pick_format(manifest, fmt)
    exported = export_file(version, fmt)
    sources = _images(images)
    sliced = slicing.resolve(manifest, tile or {})
    per_class, source = class_thresholds(manifest, conf)
    floor = min(per_class.values())  # the runtime keeps the lowest; each class's own is applied after
    run = _sliced(exported, fmt, sliced, manifest) if sliced is not None else _whole(exported, manifest)
    records, skipped, used = [], [], set()
    for src in sources:
        found = run(src, floor, per_class)
        if found is None:
            skipped.append({"image": str(src.resolve()), "reason": "cannot be decoded as an image"})
            continue
        save, record = found
        out.mkdir(parents=True, exist_ok=True)
        name = unique_name(src.stem, used)
        save(out / name)
        records.append({"image": str(src.resolve()), "annotated": name, **record})
    if not records:
        raise DetectorError(f"None of the {len(sources)} images could be decoded: {skipped[0]['image']} ...")
    doc = {
        "artifact": version.label,
        "format": fmt,
        "file": manifest["exports"][fmt]["path"],
        "runtime": manifest["exports"][fmt]["runtime"],
        "backend": run.backend,  # what really ran: Ultralytics AutoBackend's name, or the runtime's
        "imgsz": manifest["model"]["imgsz"],
        "conf": {manifest["model"]["names"][str(c)]: t for c, t in per_class.items()},  # per class
        "thresholds": source,
        "tile": sliced.as_dict() if sliced is not None else None,  # the slicing applied; null: whole frames
        "images": records,
        "skipped": skipped,
    }
    write_json(out / "boxes.json", doc)
    return out / "boxes.json"


def _whole(exported: Path, manifest: dict):
    """Whole frames through Ultralytics' AutoBackend (the deployer's usual path)."""
    runtime.configure()
    from ultralytics import YOLO

    model = YOLO(str(exported), task="detect")
    imgsz = manifest["model"]["imgsz"]

    def run(src: Path, floor: float, per_class: dict[int, float]):
        img = _read(src)
        if img is None:
            return None
        (r,) = model.predict(img, imgsz=imgsz, conf=floor, verbose=False)
        r = _kept(r, per_class)
        h, w = r.orig_shape
        run.backend = getattr(model.predictor.model, "format", None)
        return (lambda path: r.save(filename=str(path))), {"height": h, "width": w, "boxes": _boxes(r)}

    run.backend = None
    return run


def _sliced(exported: Path, fmt: str, sliced: slicing.Slicing, manifest: dict):
    """Tiles batched through the runtime itself (ONNX Runtime, OpenVINO): no Ultralytics, no torch."""
    import cv2

    model = runtimes.open_model(exported, fmt)
    names = {int(k): v for k, v in manifest["model"]["names"].items()}  # manifest.json keys are strings

    def run(src: Path, floor: float, per_class: dict[int, float]):
        image = slicing.read(src)
        if image is None:
            return None
        dets = slicing.predict_frame(image, model, sliced, floor)
        dets = dets[[p >= per_class[int(c)] for p, c in dets[:, 4:6].tolist()]] if len(dets) else dets
        rec = slicing.record(src, "", image.shape, dets, names)
        rec = {k: rec[k] for k in ("height", "width", "boxes")}
        return (lambda path: cv2.imwrite(str(path), slicing.draw(image, dets, names))), rec

    run.backend = model.backend
    return run
