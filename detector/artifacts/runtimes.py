"""An exported detector run by its own runtime (ONNX Runtime or OpenVINO), without Ultralytics or torch.

What a sliced prediction needs from the file: one call that takes a float32 RGB batch
``(N, 3, imgsz, imgsz)`` in [0, 1] and returns the model's first output, the size the model was
exported for, whether its batch is free (``dynamic=True``) or fixed, and which output layout it has:

- end-to-end ``(N, 300, 6)``: ``x1, y1, x2, y2, score, class``, no NMS needed. Ultralytics 8.4.190
  exports YOLO26 this way only with ``nms=False``;
- raw ``(N, 4 + nc, anchors)``: ``cx, cy, w, h`` then class scores (YOLO11, and YOLO26 with the
  default ``nms=None``), decoded here with class-wise NMS as Ultralytics' predictor does.

Both facts come from the metadata Ultralytics writes into the export (ONNX custom metadata,
``metadata.yaml`` beside an OpenVINO IR).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.artifacts import boxes
from detector.errors import DetectorError

FORMATS = ("onnx", "openvino")  # what sliced prediction can run
NMS_IOU = 0.7  # Ultralytics' predict default (cfg/default.yaml `iou`), for raw outputs within one tile
MAX_DET = 300  # Ultralytics' default `max_det`, per tile


@dataclass
class Model:
    """An exported file ready to run."""

    call: Callable[[np.ndarray], np.ndarray]
    imgsz: int
    batch: int | None  # None: any batch (dynamic export); an int: the static export batch
    end2end: bool | None  # from the export's metadata; None: told by the output's shape
    backend: str  # what ran: "onnxruntime" or "openvino"


def _facts(meta: dict, shape: Sequence[object]) -> tuple[int, bool | None]:
    """(imgsz, end2end) from the input shape and Ultralytics' metadata (a dynamic input has no size)."""
    side = shape[2]
    if isinstance(side, int) and side > 0:
        imgsz = side
    elif "imgsz" in meta:
        value = meta["imgsz"]
        imgsz = int((ast.literal_eval(value) if isinstance(value, str) else value)[0])
    else:
        raise DetectorError(
            "The export's input size is dynamic and it carries no Ultralytics imgsz metadata."
        )
    e2e = meta.get("end2end")
    return imgsz, None if e2e is None else str(e2e).lower() == "true"


def _onnx(path: Path) -> Model:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    imgsz, e2e = _facts(session.get_modelmeta().custom_metadata_map, inp.shape)
    batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
    return Model(lambda x: session.run(None, {inp.name: x})[0], imgsz, batch, e2e, "onnxruntime")


def _openvino(path: Path) -> Model:
    import openvino as ov
    import yaml

    xml = next(path.glob("*.xml")) if path.is_dir() else path
    core = ov.Core()
    model = core.read_model(xml)
    shape = model.input(0).get_partial_shape()
    meta_file = xml.parent / "metadata.yaml"
    meta = yaml.safe_load(meta_file.read_text()) if meta_file.is_file() else {}
    imgsz, e2e = _facts(meta, [d.get_length() if d.is_static else None for d in shape])
    batch = None if shape[0].is_dynamic else shape[0].get_length()
    # LATENCY gives the one request all cores: what a single batched call wants
    request = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY"}).create_infer_request()

    def call(x: np.ndarray) -> np.ndarray:
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()

    return Model(call, imgsz, batch, e2e, "openvino")


def open_model(path: str | Path, fmt: str) -> Model:
    """Load an exported file with its runtime.

    Raises:
        DetectorError: A format sliced prediction cannot run.
    """
    if fmt not in FORMATS:
        raise DetectorError(
            f"Sliced prediction runs {' or '.join(FORMATS)} exports; this one is {fmt}. "
            "Pick another with --format, or export the run with export=onnx."
        )
    return (_onnx if fmt == "onnx" else _openvino)(Path(path))


def infer(model: Model, x: np.ndarray) -> np.ndarray:
    """One runtime call per batch; a static-batch export gets chunks of its size, the last zero-padded."""
    if model.batch is None or model.batch == len(x):
        return model.call(x)
    outs = []
    for start in range(0, len(x), model.batch):
        chunk = x[start : start + model.batch]
        pad = model.batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        outs.append(model.call(chunk)[: len(chunk) - pad])
    return np.concatenate(outs)


def to_input(tiles: np.ndarray, imgsz: int) -> np.ndarray:
    """uint8 BGR (N, S, S, 3) or grey (N, S, S) tiles -> float32 RGB (N, 3, imgsz, imgsz) in [0, 1].

    Tiles are square, so a square input needs a resize and no letterbox; at native scale
    (``S == imgsz``) there is no resize at all. A grey frame (a third of the memory of BGR) gets
    its three channels here, one batch at a time.
    """
    import cv2

    if tiles.shape[1] != imgsz:
        tiles = np.stack([cv2.resize(t, (imgsz, imgsz), interpolation=cv2.INTER_LINEAR) for t in tiles])
    if tiles.ndim == 3:
        x = np.broadcast_to(tiles[:, None], (len(tiles), 3, imgsz, imgsz))
    else:
        x = tiles[..., ::-1].transpose(0, 3, 1, 2)  # BGR -> RGB, NHWC -> NCHW (views)
    return np.ascontiguousarray(x, dtype=np.float32) * np.float32(1 / 255)


def decode(output: np.ndarray, conf: float, end2end: bool | None) -> list[np.ndarray]:
    """Per-image detections (K, 6) in model-input pixels, from either output layout."""
    if end2end is None:
        end2end = output.shape[2] == 6 and output.shape[1] != 6
    if end2end:
        return [d[d[:, 4] >= conf].astype(np.float32) for d in output]
    out = []
    for pred in output.transpose(0, 2, 1):  # (anchors, 4 + nc)
        scores = pred[:, 4:]
        cls = scores.argmax(1)
        best = scores[np.arange(len(cls)), cls]
        keep = best > conf  # Ultralytics' non_max_suppression keeps scores above conf
        xywh, best, cls = pred[keep, :4], best[keep], cls[keep]
        xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
        dets = np.concatenate([xyxy, best[:, None], cls[:, None]], 1).astype(np.float32)
        out.append(boxes.nms(dets, NMS_IOU, limit=MAX_DET))
    return out
