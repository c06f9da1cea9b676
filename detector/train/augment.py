"""Albumentations pipelines from the ``augment`` config group: validate, build, record, find.

An option is ``transforms:`` followed by a list of ``_target_: albumentations.X`` nodes, built with
Hydra's ``instantiate``. ``transforms: null`` means Ultralytics' own default pipeline and ``[]``
means none. Ultralytics receives the list as its ``augmentations=`` train key and wraps it in an
``A.Compose`` with YOLO-format ``bbox_params`` whenever a transform is spatial, so flips, rotations
and affine changes move the boxes with the pixels.

albumentations is imported here without torch and ultralytics, so a bad pipeline fails in about
a second, before any training work.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from detector import runtime
from detector.errors import DetectorError

# Base classes and helpers that are not transforms a user means, or that Ultralytics cannot store.
_NOT_TRANSFORMS = {
    "BasicTransform",
    "DualTransform",
    "ImageOnlyTransform",
    "Transform3D",
    "BaseCompose",
    "Lambda",
}
# The arguments Ultralytics passes along with the image (ultralytics/data/augment.py Albumentations).
_BBOX_PARAMS = {"format": "yolo", "label_fields": ["class_labels", "idx"]}


def transform_names() -> list[str]:
    """Every transform and composition class albumentations exports, by name."""
    A = runtime.albumentations()
    return sorted(
        n
        for n, c in vars(A).items()
        if inspect.isclass(c)
        and issubclass(c, (A.BasicTransform, A.BaseCompose))
        and n not in _NOT_TRANSFORMS
    )


def _is_compose(cls: type) -> bool:
    return issubclass(cls, runtime.albumentations().BaseCompose)


def _locate(target: Any, where: str) -> type:
    """The class a ``_target_`` names; unknown names fail with albumentations' close matches."""
    A = runtime.albumentations()
    if not isinstance(target, str) or not target:
        raise DetectorError(
            f"{where}: `_target_` must name a class, e.g. _target_: albumentations.HorizontalFlip"
        )
    module, _, name = target.rpartition(".")
    if module == "albumentations":
        cls = getattr(A, name, None)
    else:
        try:
            cls = getattr(importlib.import_module(module), name, None) if module else None
        except ImportError:
            cls = None
    if (
        inspect.isclass(cls)
        and issubclass(cls, (A.BasicTransform, A.BaseCompose))
        and name not in _NOT_TRANSFORMS
    ):
        return cls
    names = transform_names()
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[name.lower()]] if name.lower() in by_lower else []
    close += [c for c in difflib.get_close_matches(name, names, n=3, cutoff=0.6) if c not in close]
    hint = f"did you mean {' or '.join(f'albumentations.{c}' for c in close)}?" if close else "no close match"
    what = "is not an albumentations transform" if cls is None else "is not a transform Ultralytics can run"
    if name == "Lambda":
        hint = "Ultralytics cannot store A.Lambda in checkpoints; subclass A.ImageOnlyTransform instead"
    raise DetectorError(
        f"{where}: {target!r} {what} ({hint}). The list of transforms is at "
        f"https://explore.albumentations.ai (albumentations {A.__version__} is installed)."
    )


def _arg_names(cls: type) -> set[str] | None:
    """Keyword arguments ``cls`` really accepts: its ``__init__`` plus its pydantic ``InitSchema``.

    albumentations 2 transforms take ``**kwargs`` nowhere, yet quietly drop arguments that were
    renamed since 1.x (``GaussNoise(var_limit=...)`` becomes ``std_range``) with only a warning.
    Comparing against the signature catches that. None means the class takes any keyword.
    """
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    names = {p.name for p in params if p.name != "self" and p.kind is not p.VAR_POSITIONAL}
    return names | set(getattr(getattr(cls, "InitSchema", None), "model_fields", {}))


def _check_node(node: Any, where: str) -> None:
    """Check one ``_target_`` node (and, for compositions, its children) without building it."""
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise DetectorError(
            f"{where}: each transform is a mapping with `_target_`, e.g. "
            f"{{_target_: albumentations.HorizontalFlip, p: 0.5}}; got {node!r}."
        )
    cls = _locate(node["_target_"], where)
    where = f"{where} ({cls.__name__})"
    kwargs = {k: v for k, v in node.items() if not (k.startswith("_") and k.endswith("_"))}
    allowed = _arg_names(cls)
    unknown = sorted(set(kwargs) - allowed) if allowed is not None else []
    if unknown:
        bits = []
        for k in unknown:
            close = difflib.get_close_matches(k, sorted(allowed), n=2, cutoff=0.6)
            bits.append(f"{k!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
        raise DetectorError(
            f"{where}: unknown argument(s) {', '.join(bits)}. albumentations 2.x would ignore them and train "
            f"with its defaults; many were renamed from 1.x. {cls.__name__} accepts: "
            f"{', '.join(sorted(allowed - {'strict'}))}."
        )
    p = kwargs.get("p")
    if p is not None and (isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1):
        raise DetectorError(f"{where}: probability p={p!r} must be a number between 0 and 1.")
    if _is_compose(cls):
        children = kwargs.get("transforms")
        if not isinstance(children, Sequence) or isinstance(children, str):
            raise DetectorError(f"{where}: needs `transforms:` with a list of transforms.")
        for i, child in enumerate(children):
            _check_node(child, f"{where}.transforms[{i}]")


def _instantiate(node: dict, where: str) -> Any:
    from hydra.utils import instantiate

    try:
        t = instantiate(node, _convert_="all")
    except Exception as e:  # pydantic's ValidationError (a ValueError) arrives wrapped by Hydra
        cause = e.__cause__ or e
        lines = [ln for ln in str(cause).splitlines() if ln.strip() and "errors.pydantic.dev" not in ln]
        raise DetectorError(
            f"{where} ({str(node['_target_']).rpartition('.')[2]}): bad argument: "
            + "\n  ".join(lines[:8])
            + "\nSee the transform's arguments at https://explore.albumentations.ai"
        ) from e
    invalid = getattr(t, "invalid_args", None)  # albumentations 2 keeps the arguments it ignored here
    if invalid:
        raise DetectorError(f"{where}: albumentations ignored argument(s) {invalid}; remove or rename them.")
    return t


def _dry_run(transforms: list) -> None:
    """Push a tiny square image with one box through the pipeline, every transform forced on.

    Ultralytics batches images of one size and expects uint8; a transform that resizes, crops or
    converts to float would otherwise fail only inside the first training epoch.
    """
    import numpy as np

    A = runtime.albumentations()
    forced = copy.deepcopy(transforms)
    stack = list(forced)
    while stack:
        t = stack.pop()
        t.p = 1.0
        stack += getattr(t, "transforms", [])
    with warnings.catch_warnings():  # photometric-only lists: "processor for bboxes, but no transform"
        warnings.simplefilter("ignore", UserWarning)
        pipe = A.Compose(forced, bbox_params=A.BboxParams(**_BBOX_PARAMS), seed=0)
    image = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    try:
        out = pipe(image=image, bboxes=np.array([[0.5, 0.5, 0.3, 0.2]]), class_labels=[0], idx=[0])
    except Exception as e:
        raise DetectorError(f"augment.transforms fail on a 96x96 test image: {type(e).__name__}: {e}") from e
    img = out["image"]
    if img.shape != image.shape or img.dtype != np.uint8:
        raise DetectorError(
            f"augment.transforms turn a 96x96x3 uint8 image into {'x'.join(map(str, img.shape))} "
            f"{img.dtype}. Ultralytics needs the size and dtype kept (it batches imgsz x imgsz uint8 images): "
            "drop resizing/cropping/Normalize/ToFloat transforms and use Affine(scale=...) for scale changes."
        )


def build(augment: DictConfig | Mapping | None) -> list | None:
    """Validate the ``augment`` config group and build its transforms.

    Args:
        augment: ``cfg.augment``: a mapping with ``transforms`` (None or a list of ``_target_`` nodes).

    Returns:
        None for Ultralytics' own default pipeline, else the list of albumentations transforms
        (empty for ``augment=none``), ready for ``YOLO.train(augmentations=...)``.

    Raises:
        DetectorError: Unknown transform (with close matches), unknown or bad argument, or a
            probability outside [0, 1]; the message names the transform.
    """
    if augment is None:
        return None
    doc = OmegaConf.to_container(augment, resolve=True) if isinstance(augment, DictConfig) else dict(augment)
    unknown = set(doc) - {"transforms"}
    if unknown:
        raise DetectorError(
            f"augment has unknown key(s) {sorted(unknown)}; an option holds only `transforms:`."
        )
    nodes = doc.get("transforms")
    if nodes is None:
        return None
    if isinstance(nodes, ListConfig):
        nodes = OmegaConf.to_container(nodes, resolve=True)
    if not isinstance(nodes, list):
        raise DetectorError(f"augment.transforms must be a list of transforms (or null), got {nodes!r}.")
    for i, node in enumerate(nodes):
        _check_node(node, f"augment.transforms[{i}]")
    transforms = [_instantiate(node, f"augment.transforms[{i}]") for i, node in enumerate(nodes)]
    if transforms:
        _dry_run(transforms)
    return transforms


def to_dict(transforms: list | None) -> dict | None:
    """albumentations' own serialisation of the pipeline (``A.to_dict(A.Compose(...))``); None = default."""
    if transforms is None:
        return None
    A = runtime.albumentations()
    return A.to_dict(A.Compose(transforms))


def applied(dataset: Any) -> Any:
    """The ``A.Compose`` that an Ultralytics training dataset really runs, or None if it runs none.

    Read off the dataset's transform chain (``ultralytics.data.augment.Albumentations``), i.e. the
    object the dataloader calls, not our config.
    """
    from ultralytics.data.augment import Albumentations

    for t in getattr(getattr(dataset, "transforms", None), "transforms", []):
        if isinstance(t, Albumentations):
            return t.transform
    return None
