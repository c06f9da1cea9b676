"""Read one YOLO label file into boxes, naming the line of every problem.

A line is ``class cx cy w h`` (a box) or ``class x1 y1 x2 y2 x3 y3 ...`` (a polygon, which
Ultralytics turns into its bounding box for detection). Everything is normalised to [0, 1].
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from detector.data.problems import Problem

Box = tuple[int, float, float, float, float]  # class, cx, cy, w, h (normalised)


@dataclass
class Labels:
    """One label file: its valid boxes, its problems, and a digest of its normalised text."""

    exists: bool
    boxes: list[Box] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    digest: str = hashlib.sha256(b"").hexdigest()  # a missing file reads as an empty one
    polygons: int = 0  # how many boxes came from polygon rows


def polygon_box(cls: int, xy: list[float]) -> Box:
    """The bounding box of a polygon given as ``x1 y1 x2 y2 ...`` (normalised)."""
    xs, ys = xy[0::2], xy[1::2]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    return cls, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0


def _parse(parts: list[str], nc: int) -> Box | tuple[str, str]:
    """A valid line's box, else (problem code, message)."""
    n = len(parts)
    if n != 5 and (n < 7 or n % 2 == 0):
        return "field-count", (
            f"{n} fields; expected 5 (class cx cy w h) or a polygon (class x1 y1 x2 y2 x3 y3 ...)"
        )
    try:
        cls = float(parts[0])
        vals = [float(v) for v in parts[1:]]
    except ValueError:
        return "not-a-number", f"non-numeric value in {' '.join(parts)[:80]!r}"
    if cls != cls or cls in (float("inf"), float("-inf")) or cls != int(cls) or cls < 0:
        return "bad-class", f"class id {parts[0]} is not a non-negative integer"
    if int(cls) >= nc:
        return "class-out-of-range", (
            f"class id {int(cls)} but data.yaml names only {nc} classes (ids 0..{nc - 1}); "
            "add the missing names or fix the label"
        )
    if not all(0 <= v <= 1 for v in vals):  # also catches nan
        return "out-of-bounds", f"coordinates must be normalised to [0, 1], got {' '.join(parts[1:])[:80]}"
    box = (int(cls), *vals) if n == 5 else polygon_box(int(cls), vals)
    if box[3] <= 0 or box[4] <= 0:
        return "zero-area", f"box width/height {box[3]:g} x {box[4]:g} has no area"
    return box


def _text(path: Path, data: bytes) -> tuple[str | None, Problem | None]:
    if b"\x00" in data:
        return None, Problem("not-text", str(path), 0, "binary data, not a text label file")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        return None, Problem("not-text", str(path), 0, f"not UTF-8 text ({e.reason} at byte {e.start})")


def read(path: Path, nc: int) -> Labels:
    """Parse the label file at ``path`` for a dataset with ``nc`` classes. Never raises."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Labels(exists=False)
    except OSError as e:
        p = Problem("unreadable-label", str(path), 0, e.strerror or str(e))
        return Labels(exists=True, problems=[p])
    out = Labels(exists=True, digest=hashlib.sha256(data).hexdigest())
    text, bad = _text(path, data)
    if text is None:
        out.problems.append(bad)
        return out
    rows = [(i, line.split()) for i, line in enumerate(text.splitlines(), 1)]
    rows = [(i, parts) for i, parts in rows if parts]
    # Normalised text: line endings, spacing and a BOM do not change what the labels mean.
    out.digest = hashlib.sha256("\n".join(" ".join(p) for _, p in rows).encode()).hexdigest()
    seen: dict[tuple[str, ...], int] = {}
    shaped = [(i, len(p) == 5) for i, p in rows if len(p) == 5 or len(p) > 6]  # (line, is a box row)
    for i, parts in rows:
        got = _parse(parts, nc)
        if isinstance(got[0], str):
            out.problems.append(Problem(got[0], str(path), i, got[1]))
            continue
        key = tuple(parts)
        if key in seen:
            out.problems.append(Problem("duplicate-box", str(path), i, f"same as line {seen[key]}"))
            continue
        seen[key] = i
        out.boxes.append(got)
        out.polygons += len(parts) != 5
    if len({is_box for _, is_box in shaped}) == 2:
        first = next(i for i, is_box in shaped if is_box != shaped[0][1])
        out.problems.append(
            Problem(
                "mixed-rows",
                str(path),
                first,
                "mixes box rows (5 fields) and polygon rows; Ultralytics drops such an image. "
                "Convert it with: detector-data convert polygons",
            )
        )
    return out
