"""Run a published version's exported file through its own runtime (never the PyTorch weights).

This is the proof that an artifact deploys on its own: only files inside the version folder are
read, their sha256 must match the manifest, and the backend that ran is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector import runtime
from detector.artifacts import slicing
from detector.artifacts.store import Version
from detector.data.spec import IMG_FORMATS
from detector.errors import DetectorError
from detector.io import sha256, write_json


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


def _check_files(version: Version, manifest: dict, rel: str) -> None:
    """Refuse to run files of the export that differ from the manifest."""
    files = {k: v for k, v in manifest["files"].items() if k == rel or k.startswith(rel.rstrip("/") + "/")}
    if not files:
        raise DetectorError(f"{version.label}: the manifest lists no files under {rel}.")
    for k, v in files.items():
        p = version.path / k
        if not p.is_file() or sha256(p) != v["sha256"]:
            raise DetectorError(
                f"{version.label}: {k} differs from the manifest; refusing to run it. "
                f"See detector-artifacts verify {version.label}."
            )


def predict(
    version: Version,
    images: list[str],
    out: Path,
    fmt: str | None = None,
    conf: float = 0.25,
    tile: dict[str, Any] | None = None,
) -> Path:
    """Detect objects in ``images`` with the version's exported file; write annotated images + boxes.json.

    A version trained on tiles slices every image as it was trained (its manifest's ``tile``);
    ``tile`` overrides that (``size``, 0 for whole frames, ``overlap``, ``batch``, ``full_frame``), and
    ``size`` slices a whole-frame version too (:mod:`detector.artifacts.slicing`).

    Returns:
        The path of ``boxes.json`` in ``out``.

    Raises:
        DetectorError: Missing images, an unknown format, or files that differ from the manifest.
    """
    manifest = version.manifest()
    fmt = pick_format(manifest, fmt)
    rel = manifest["exports"][fmt]["path"]
    _check_files(version, manifest, rel)
    sources = _images(images)
    sliced = slicing.resolve(manifest, tile or {})
    if sliced is not None:  # through the runtime itself, in batches of tiles: no Ultralytics, no torch
        names = manifest["model"]["names"]
        records, backend = slicing.predict_images(version.path / rel, fmt, sources, sliced, conf, out, names)
        return _save(out, version, manifest, fmt, backend, conf, records, sliced.as_dict())
    runtime.configure()
    from ultralytics import YOLO

    model = YOLO(str(version.path / rel), task="detect")
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    used: set[str] = set()
    imgsz = manifest["model"]["imgsz"]
    for r in model.predict([str(s) for s in sources], imgsz=imgsz, conf=conf, stream=True, verbose=False):
        stem = Path(r.path).stem
        name = f"{stem}.jpg" if stem not in used else f"{stem}_{len(used)}.jpg"
        used.add(stem)
        r.save(filename=str(out / name))
        b = r.boxes
        records.append(
            {
                "image": str(Path(r.path).resolve()),
                "annotated": name,
                "height": r.orig_shape[0],
                "width": r.orig_shape[1],
                "boxes": [
                    {
                        "class": int(c),
                        "name": r.names[int(c)],
                        "confidence": round(float(p), 4),
                        "xyxy": [round(float(v), 1) for v in xyxy],
                    }
                    for c, p, xyxy in zip(b.cls.tolist(), b.conf.tolist(), b.xyxy.tolist(), strict=True)
                ],
            }
        )
    backend = getattr(model.predictor.model, "format", None)  # Ultralytics AutoBackend's name for what ran
    return _save(out, version, manifest, fmt, backend, conf, records, None)


def _save(
    out: Path, version: Version, manifest: dict, fmt: str, backend, conf: float, records: list, tile
) -> Path:
    """Write boxes.json: what ran, with which settings, and every image's boxes."""
    doc = {
        "artifact": version.label,
        "format": fmt,
        "file": manifest["exports"][fmt]["path"],
        "runtime": manifest["exports"][fmt]["runtime"],
        "backend": backend,
        "imgsz": manifest["model"]["imgsz"],
        "conf": conf,
        "tile": tile,  # the slicing applied; null: whole frames
        "images": records,
    }
    write_json(out / "boxes.json", doc)
    return out / "boxes.json"
