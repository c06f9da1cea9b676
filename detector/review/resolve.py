"""What ``detector-eval`` evaluates: MODEL (a run, ``latest`` or an artifact version) and its data.

Every check here runs before any inference and fails with a :class:`DetectorError` naming the cause
and the fix: an unknown model, a tampered artifact, a split the data lacks or that holds no
images or no boxes, class names that differ between the model and the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detector.artifacts import store
from detector.artifacts.integrity import export_file
from detector.artifacts.predict import pick_format
from detector.data import spec as data_spec
from detector.errors import DetectorError
from detector.train import rundir

if TYPE_CHECKING:
    from detector.artifacts.slicing import Slicing


@dataclass
class Model:
    """A model to evaluate, and what it says about itself."""

    label: str  # as printed: the run folder or NAME/vN
    kind: str  # "run" or "artifact"
    file: Path  # what Ultralytics loads: best.pt, or the exported file through its own runtime
    runtime: str  # PyTorch, ONNX Runtime, OpenVINO, ...
    names: dict[int, str]
    imgsz: Any
    data_yaml: Path | None  # its own data: the run's staged copy, or the version's original data.yaml
    thresholds: dict | None = None  # stored by detector-export (manifest "thresholds")
    version: store.Version | None = None  # an artifact's version (its manifest may hold tile settings)
    tile: Slicing | None = None  # the slicing its evaluation applies; None: whole frames

    def as_dict(self) -> dict[str, Any]:
        keys = ("label", "kind", "runtime", "imgsz")
        tile = self.tile.as_dict() if self.tile is not None else None
        return {**{k: getattr(self, k) for k in keys}, "file": str(self.file), "tile": tile}


def _names(raw: dict | None) -> dict[int, str]:
    return {int(k): str(v) for k, v in (raw or {}).items()}


def _run(path: Path) -> Model:
    run = rundir.inspect_run(path)
    names = _names(run.summary.get("data", {}).get("names"))
    return Model(str(run.dir), "run", run.best, "PyTorch", names, run.imgsz, run.data_yaml)


def _artifact(version: store.Version) -> Model:
    m = version.manifest()
    fmt = pick_format(m, None)
    exported = export_file(version, fmt)  # a tampered export is refused before it is loaded
    data = (m.get("data") or {}).get("yaml")
    return Model(
        version.label,
        "artifact",
        exported,
        m["exports"][fmt]["runtime"],
        _names(m["model"]["names"]),
        m["model"]["imgsz"],
        Path(data) if data else None,
        m.get("thresholds"),
        version,
    )


def model(ref: str, runs_dir: str | Path, artifacts_dir: str | Path) -> Model:
    """Resolve MODEL: ``latest``, a run folder, or a version (``NAME``, ``NAME/vN``, a version folder).

    Raises:
        DetectorError: Nothing matches; the run did not finish; the version's files differ from its manifest.
    """
    ref = str(ref)
    if ref == "latest":
        return _run(rundir.find_run("latest", runs_dir))
    path = Path(ref).expanduser()
    if (path / rundir.SUMMARY).is_file():
        return _run(path)
    looks_like_path = path.is_absolute() or ref.startswith((".", "~")) or ref.count("/") > 1
    if not path.exists() and looks_like_path:
        raise DetectorError(
            f"MODEL {ref}: no such folder. Pass a run folder, latest, or an artifact version (NAME/vN)."
        )
    if (path / store.MANIFEST).is_file() or not path.exists():
        return _artifact(store.resolve(ref, artifacts_dir))
    raise DetectorError(
        f"{ref} is neither a run folder (no summary.json) nor a version folder (no manifest.json). "
        "Pass a run folder, latest, or an artifact version such as NAME/v2."
    )


def data(m: Model, override: str | None) -> data_spec.DataSpec:
    """The data to evaluate on: ``data=`` or the model's own, with the model's class names.

    Raises:
        DetectorError: No data known, or the names differ from the model's.
    """
    yaml_path = Path(str(override)).expanduser() if override else m.data_yaml
    if yaml_path is None or not data_spec.find_yaml(yaml_path).is_file():
        raise DetectorError(
            f"{m.label}: its data.yaml ({yaml_path}) is not there; pass data=/path/to/data.yaml."
        )
    spec = data_spec.load(yaml_path, strict=False)
    if spec.names != m.names:
        raise DetectorError(
            f"{m.label} predicts classes {m.names}, but {spec.yaml_path} names {spec.names}. Evaluate it on "
            "data with the same class names in the same order (or fix the data.yaml's names:)."
        )
    return spec
