"""What the dataset doctor can find: one stable code per kind of problem, and the finding itself."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from detector.errors import DetectorError

# code -> (default severity, what it means). Codes are stable: users name them in data.allow.
CODES: dict[str, tuple[str, str]] = {
    # data.yaml and splits
    "missing-split": ("error", "data.yaml has no train: or val: entry"),
    "split-not-found": ("error", "a split path in data.yaml does not exist"),
    "empty-split": ("error", "a split holds no images"),
    "no-labels": ("error", "no image of a split has a label file (wrong labels folder?)"),
    # images
    "unreadable-image": ("error", "the image file cannot be read (permissions, broken link, symlink loop)"),
    "corrupt-image": ("error", "Pillow cannot decode the image"),
    "truncated-image": ("error", "the image data ends early (truncated JPEG or PNG)"),
    "unsupported-format": ("error", "the file is an image format Ultralytics does not load"),
    "image-too-small": ("error", "width or height under 10 pixels (Ultralytics drops it)"),
    "jpeg-missing-eoi": ("warning", "JPEG does not end with FFD9; Ultralytics re-saves it"),
    "duplicate-image": ("warning", "byte-identical images within one split"),
    "duplicate-across-splits": ("error", "byte-identical images in two splits (leaks into validation)"),
    # label files
    "missing-label": ("warning", "an image has no label file (trained as a background image)"),
    "orphan-label": ("warning", "a label file has no image"),
    "unreadable-label": ("error", "the label file cannot be read"),
    "not-text": ("error", "the label file is not UTF-8 text"),
    "field-count": ("error", "a label line has the wrong number of fields"),
    "not-a-number": ("error", "a label line has a non-numeric field"),
    "bad-class": ("error", "a class id is not a non-negative integer"),
    "class-out-of-range": ("error", "a class id is not below the number of names"),
    "out-of-bounds": ("error", "a coordinate is outside [0, 1]"),
    "zero-area": ("error", "a box has zero width or height"),
    "mixed-rows": ("error", "one file mixes box and polygon rows (Ultralytics drops the image)"),
    "duplicate-box": ("warning", "the same label line twice in one file"),
    # names vs ids
    "unused-class": ("warning", "names lists a class no label uses"),
    "class-not-in-train": ("warning", "a class is labelled in val/test but never in train"),
    "duplicate-name": ("warning", "two class ids share one name"),
}


def show(path: object) -> str:
    """A path as printable text, even when its name is not valid UTF-8 (bytes become \\xNN)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class Problem:
    """One finding. ``code`` is stable (for ``allow``); ``line`` is 1-based, 0 for a whole file."""

    code: str
    file: str
    line: int
    message: str
    severity: str = ""  # "" -> the code's default from CODES

    def __post_init__(self) -> None:
        self.file, self.message = show(self.file), show(self.message)
        self.severity = self.severity or CODES.get(self.code, ("error", ""))[0]

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"[{self.severity}] {self.code}: {where}: {self.message}"


def validate_allow(allow: list[str] | tuple[str, ...]) -> list[str]:
    """Return ``allow`` as a list, refusing codes that do not exist (a typo would silently do nothing).

    Raises:
        DetectorError: Naming the unknown code, the closest known one, and every known code.
    """
    for code in allow:
        if code not in CODES:
            near = difflib.get_close_matches(str(code), CODES, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise DetectorError(
                f"Unknown dataset problem code {code!r} in allow{hint}. Known codes: {', '.join(CODES)}."
            )
    return list(allow)
