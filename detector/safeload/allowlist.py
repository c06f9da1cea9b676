"""What a YOLO checkpoint may contain, and the guards that keep an allowed class from running code.

torch's weights-only unpickler lets an allowlisted *class* be called by the REDUCE opcode, i.e. its
``__init__`` runs with arguments from the file: ``DetectionModel(cfg)`` runs ``parse_model(cfg)``,
which ``eval()``s ``cfg["activation"]``. So the usual ``add_safe_globals([DetectionModel, ...])`` is
not safe for Ultralytics. Real checkpoints never call a constructor: modules are pickled as
NEWOBJ + BUILD (``cls.__new__(cls)``, then ``__dict__`` update). Each class is therefore registered as
a :class:`ClassGuard` that answers NEWOBJ with no arguments and refuses REDUCE; the real class is
registered under a name containing a newline (a pickled GLOBAL name never can), only so that torch's
BUILD step accepts its instances. While loading, the only code that runs is ``object.__new__``,
``nn.Module.__setstate__``, an empty ``SimpleNamespace()`` and a strict ``getattr``.

Names are exact (``module.Qualname`` as pickled), nothing by module prefix: the union of what real
checkpoints need (the COCO yolo11n-seg.pt saved by 8.2.100, 8.4.190 YOLO26/YOLO11 best.pt and
last.pt, and freshly built YOLOv8/11/26 detect and segment models).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from detector.safeload.errors import UnsafeCheckpointError

TORCH_MODULES = [
    "torch.nn.modules.activation.SiLU",
    "torch.nn.modules.batchnorm.BatchNorm2d",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.conv.Conv2d",
    "torch.nn.modules.conv.ConvTranspose2d",
    "torch.nn.modules.linear.Identity",
    "torch.nn.modules.pooling.MaxPool2d",
    "torch.nn.modules.upsampling.Upsample",
]
ULTRALYTICS_MODULES = [
    "ultralytics.nn.modules.block.Attention",
    "ultralytics.nn.modules.block.Bottleneck",
    "ultralytics.nn.modules.block.C2PSA",
    "ultralytics.nn.modules.block.C2f",  # YOLOv8
    "ultralytics.nn.modules.block.C3k",
    "ultralytics.nn.modules.block.C3k2",
    "ultralytics.nn.modules.block.DFL",
    "ultralytics.nn.modules.block.PSABlock",
    "ultralytics.nn.modules.block.Proto",
    "ultralytics.nn.modules.block.Proto26",  # YOLO26-seg
    "ultralytics.nn.modules.block.SPPF",
    "ultralytics.nn.modules.conv.Concat",
    "ultralytics.nn.modules.conv.Conv",
    "ultralytics.nn.modules.conv.DWConv",
    "ultralytics.nn.modules.head.Detect",
    "ultralytics.nn.modules.head.Segment",
    "ultralytics.nn.modules.head.Segment26",  # YOLO26-seg
]
MODEL_CLASSES = ["ultralytics.nn.tasks.DetectionModel", "ultralytics.nn.tasks.SegmentationModel"]
# model.args of an unstripped last.pt; SimpleNamespace pickles itself as REDUCE(cls, ()) + BUILD(dict),
# so a call with no arguments is allowed for this one class.
NOARG_REDUCE = ["ultralytics.utils.IterableSimpleNamespace"]
# builtins.getattr becomes strict_getattr, which allows exactly these (class, attribute) pairs: 8.2.x
# Segment heads store `self.detect = Detect.forward`, which protocol 2 pickles as getattr(Detect, "forward").
GETATTR_PAIRS = {("ultralytics.nn.modules.head.Detect", "forward")}
ALLOWLIST = [*TORCH_MODULES, *ULTRALYTICS_MODULES, *MODEL_CLASSES, *NOARG_REDUCE, "builtins.getattr"]
HIDDEN = "\n"  # GLOBAL reads module and name with readline(): no name from a file can contain "\n"


def resolve(name: str) -> type:
    """The class an allowlist entry names; an alias that would widen the list is refused."""
    module, _, attr = name.rpartition(".")
    obj = getattr(importlib.import_module(module), attr)
    if f"{obj.__module__}.{obj.__qualname__}" != name:
        raise RuntimeError(f"allowlist entry {name} resolves to {obj.__module__}.{obj.__qualname__}")
    return obj


class ClassGuard:
    """Stands in for an allowlisted class on the unpickler's stack (pushed by GLOBAL).

    torch's unpickler does ``cls.__new__(cls, *args)`` for NEWOBJ and ``cls(*args)`` for REDUCE. The
    guard answers NEWOBJ (through an instance attribute ``__new__``) with ``real.__new__(real)`` and
    refuses REDUCE, so no ``__init__`` of an allowlisted class ever runs with arguments from a file.
    """

    def __init__(self, cls: type, name: str, path: str, noarg_reduce: bool = False) -> None:
        self.cls, self.name, self.noarg_reduce, self._path = cls, name, noarg_reduce, path

        def new(_guard: Any, *args: Any) -> Any:
            if args:
                how = f"it creates {name} with arguments {args!r:.80} (real checkpoints never pass any)"
                raise UnsafeCheckpointError(path, [name], how)
            return cls.__new__(cls)

        self.__new__ = new  # looked up on the instance: object.__new__ is not a data descriptor

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # REDUCE
        if self.noarg_reduce and not args and not kwargs:
            return self.cls()
        raise UnsafeCheckpointError(
            self._path,
            [self.name],
            f"it calls the constructor {self.name}(...) with arguments from the file (real checkpoints never "
            "do; DetectionModel(cfg) would eval() cfg['activation'])",
        )

    def __repr__(self) -> str:
        return f"<guard {self.name}>"


def strict_getattr(path: str) -> Callable[..., Any]:
    """``getattr`` for the unpickler: only the :data:`GETATTR_PAIRS`, read off the class itself."""

    def getattr_(obj: Any, attr: str, *default: Any) -> Any:
        cls = obj.cls if isinstance(obj, ClassGuard) else None
        cname = f"{cls.__module__}.{cls.__qualname__}" if cls is not None else type(obj).__qualname__
        how = f"it uses getattr({cname}, {attr!r}), which is not an attribute lookup a checkpoint needs"
        if cls is None or default or (cname, attr) not in GETATTR_PAIRS:
            raise UnsafeCheckpointError(path, [f"getattr({cname}, {attr!r})"], how)
        value = cls.__dict__[attr]  # a plain function defined on the class itself
        if not callable(value) or isinstance(value, staticmethod | classmethod | type):
            raise UnsafeCheckpointError(path, [f"getattr({cname}, {attr!r})"], how)
        return value

    return getattr_


def entries_for(names: list[str], path: str) -> list[tuple[Any, str]]:
    """torch safe-globals entries for the allowlisted names a file needs (fewer entries load faster)."""
    entries: list[tuple[Any, str]] = []
    for name in names:
        if name == "builtins.getattr":
            entries.append((strict_getattr(path), "builtins.getattr"))
            continue
        cls = resolve(name)
        entries.append((ClassGuard(cls, name, path, name in NOARG_REDUCE), name))
        entries.append((cls, HIDDEN + name))  # unreachable by GLOBAL; lets BUILD accept instances of cls
    if "builtins.getattr" in names:  # getattr's first argument is a guard: its class must be there too
        entries += [(resolve(c), HIDDEN + c) for c, _ in GETATTR_PAIRS if c not in names]
    return entries
