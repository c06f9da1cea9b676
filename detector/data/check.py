"""Check a dataset's labels before training, naming the file and line of every problem."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from detector.data.spec import DataSpec, label_path
from detector.errors import DetectorError


@dataclass
class Problem:
    """One finding. ``code`` is stable (for ``--allow``); ``line`` is 1-based, 0 for whole-file."""

    code: str
    file: str
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"[{self.severity}] {self.code}: {where}: {self.message}"


@dataclass
class Report:
    """What :func:`check_labels` found, plus per-split counts."""

    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_dict(self) -> dict:
        return {"problems": [asdict(p) for p in self.problems], "counts": self.counts}


def _check_line(parts: list[str], nc: int) -> tuple[str, str] | None:
    """Return (code, message) for a bad label line, else None. Boxes and polygons are both valid."""
    n = len(parts)
    if n != 5 and (n < 7 or n % 2 == 0):
        return (
            "field-count",
            f"{n} fields; expected 5 (class cx cy w h) or a polygon (class x1 y1 x2 y2 x3 y3 ...)",
        )
    try:
        cls = float(parts[0])
        vals = [float(v) for v in parts[1:]]
    except ValueError:
        return "not-a-number", f"non-numeric value in {' '.join(parts)[:80]!r}"
    if cls != int(cls) or cls < 0:
        return "bad-class", f"class id {parts[0]} is not a non-negative integer"
    if int(cls) >= nc:
        return "class-out-of-range", (
            f"class id {int(cls)} but data.yaml names only {nc} classes (ids 0..{nc - 1}); "
            "add the missing names or fix the label"
        )
    if any(v < 0 or v > 1 for v in vals):
        return "out-of-bounds", "coordinates must be normalised to [0, 1]"
    if n == 5 and (vals[2] <= 0 or vals[3] <= 0):
        return "zero-area", f"box width/height {vals[2]} x {vals[3]} has no area"
    return None


def check_labels(spec: DataSpec) -> Report:
    """Parse every label file of every split and report malformed lines and class-id problems."""
    report = Report()
    used: set[int] = set()
    for split, images in spec.splits.items():
        counts = {"images": len(images), "labels": 0, "boxes": 0, "backgrounds": 0}
        for image in images:
            lab = label_path(image)
            if not lab.is_file():
                counts["backgrounds"] += 1
                continue
            counts["labels"] += 1
            try:
                text = lab.read_text()
            except UnicodeDecodeError:
                report.problems.append(Problem("not-text", str(lab), 0, "label file is not UTF-8 text"))
                continue
            rows = [ln.split() for ln in text.splitlines()]
            if not any(rows):
                counts["backgrounds"] += 1
            for i, parts in enumerate(rows, 1):
                if not parts:
                    continue
                bad = _check_line(parts, spec.nc)
                if bad:
                    report.problems.append(Problem(bad[0], str(lab), i, bad[1]))
                    continue
                counts["boxes"] += 1
                used.add(int(float(parts[0])))
        report.counts[split] = counts
    unused = sorted(set(spec.names) - used)
    if unused and used:
        report.problems.append(
            Problem(
                "unused-class",
                str(spec.yaml_path),
                0,
                f"names lists classes never used in any label: {[spec.names[i] for i in unused]}",
                "warning",
            )
        )
    return report


def require_clean(spec: DataSpec, allow: list[str] | tuple[str, ...] = ()) -> Report:
    """Run :func:`check_labels` and raise on any error whose code is not in ``allow``.

    Raises:
        DetectorError: With up to 20 problems listed, each with file and line.
    """
    report = check_labels(spec)
    for p in report.problems:
        if p.code in allow:
            p.severity = "warning"
    if report.errors:
        shown = "\n".join(f"  {p}" for p in report.errors[:20])
        more = f"\n  ... and {len(report.errors) - 20} more" if len(report.errors) > 20 else ""
        raise DetectorError(
            f"Dataset {spec.yaml_path} has {len(report.errors)} label problem(s):\n{shown}{more}\n"
            "Fix the files above, or downgrade a problem code to a warning with "
            "data.allow=[code,...] (for example data.allow=[zero-area])."
        )
    return report
