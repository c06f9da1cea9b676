"""Why a checkpoint was not loaded. Both are DetectorErrors: the CLI prints the message and exits 2.

They are deliberately not RuntimeError, EOFError, UnpicklingError or ModuleNotFoundError: those are
the types Ultralytics' ``torch_safe_load`` catches and rewrites into a misleading message.
"""

from __future__ import annotations

from pathlib import Path

from detector.errors import DetectorError

TRUST_HINT = (
    "Only if you trust where this file comes from, load it as trusted with model.trust_checkpoint=true "
    "(any code in it will then run)."
)


class CheckpointError(DetectorError):
    """A checkpoint that was not loaded; ``path`` names it."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = str(path)
        super().__init__(message)


class UnsafeCheckpointError(CheckpointError):
    """The file needs a global outside the allowlist, or uses an allowed one as checkpoints never do."""

    def __init__(self, path: str | Path, names: list[str] | set[str], how: str | None = None) -> None:
        self.names = sorted(set(names))
        what = how or (
            f"it references {', '.join(self.names)}, which {'is' if len(self.names) == 1 else 'are'} not on the "
            "allowlist of classes a YOLO checkpoint may contain"
        )
        super().__init__(
            path, f"Refusing to load checkpoint {path}: {what}. Nothing from the file was run. {TRUST_HINT}"
        )


class CorruptCheckpointError(CheckpointError):
    """The file cannot be loaded for another reason: damaged, empty, not a PyTorch checkpoint, a legacy format."""

    def __init__(self, path: str | Path, cause: BaseException, reason: str | None = None) -> None:
        text = str(cause).strip()
        self.cause = f"{type(cause).__name__}: {text.splitlines()[0][:160]}" if text else type(cause).__name__
        reason = reason or "the file is empty, truncated or damaged, or not a PyTorch checkpoint"
        super().__init__(path, f"Checkpoint {path} cannot be loaded: {reason} ({self.cause}).")


def find(exc: BaseException | None) -> CheckpointError | None:
    """The CheckpointError in an exception's cause chain (Ultralytics wraps some errors), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, CheckpointError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
