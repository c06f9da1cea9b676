"""Check a dataset before training, naming the file and line of every problem.

It reads every image (decoding it fully) and every label once, then reports: split problems,
unreadable, corrupt or truncated images, images without labels and labels without images,
malformed label lines, duplicate images within and across splits, and class names that disagree
with the ids in use; plus per-split counts, a per-class table and the dataset fingerprint.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from detector.data import balance
from detector.data import fingerprint as fp
from detector.data.problems import CODES, Problem, validate_allow
from detector.data.scan import Item, image_for, orphan_labels, scan
from detector.data.spec import DataSpec
from detector.errors import DetectorError

__all__ = ["CODES", "Problem", "Report", "check_dataset", "require_clean"]


@dataclass
class Report:
    """What :func:`check_dataset` found."""

    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # split -> images/labels/boxes/backgrounds
    classes: list[dict] = field(default_factory=list)  # one row per class id (see _class_table)
    fingerprint: str | None = None
    yaml: str = ""
    names: dict[int, str] = field(default_factory=dict)
    # split -> (image, the class id of each of its boxes), in path order: balancing and its checks read it
    image_classes: dict[str, list[tuple[str, tuple[int, ...]]]] = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def allow(self, codes: list[str] | tuple[str, ...]) -> Report:
        """Downgrade problems with these codes to warnings (in place); returns self."""
        for p in self.problems:
            if p.code in codes:
                p.severity = "warning"
        return self

    def imbalance(self) -> balance.Imbalance | None:
        """How uneven the train split's classes are (the first split's without a train split)."""
        split = "train" if "train" in self.image_classes else next(iter(self.image_classes), None)
        if split is None:
            return None
        return balance.imbalance(split, [ids for _, ids in self.image_classes[split]], self.names)

    def to_dict(self) -> dict:
        imb = self.imbalance()
        return {
            "data_yaml": self.yaml,
            "usable": not self.errors,
            "fingerprint": self.fingerprint,
            "counts": self.counts,
            "classes": self.classes,
            "class_balance": imb.to_dict() if imb else None,
            "problems": [asdict(p) for p in self.problems],
        }

    def summary_lines(self, severity: str, per_code: int | None = 5) -> list[str]:
        """Problems of one severity, grouped by code, at most ``per_code`` of each (None: all)."""
        groups: dict[str, list[Problem]] = defaultdict(list)
        for p in self.problems:
            if p.severity == severity:
                groups[p.code].append(p)
        out = []
        for code, ps in groups.items():
            out += [str(p).split("] ", 1)[1] for p in ps[:per_code]]
            if per_code is not None and len(ps) > per_code:
                out.append(f"... and {len(ps) - per_code} more {code} ({CODES[code][1]})")
        return out


def _broken(it: Item) -> bool:
    """The image itself has an error (so its missing label or its duplicates are beside the point)."""
    return it.info.error is not None and CODES[it.info.error[0]][0] == "error"


def _item_problems(items: list[Item], spec: DataSpec) -> list[Problem]:
    out: list[Problem] = []
    labelled = defaultdict(int)
    for it in items:
        labelled[it.split] += it.labels.exists
    for it in items:
        if it.info.error:
            out.append(Problem(it.info.error[0], str(it.image), 0, it.info.error[1]))
        if not it.labels.exists and labelled[it.split] and not _broken(it):
            out.append(
                Problem("missing-label", str(it.image), 0, f"no label file {it.label}; trained as background")
            )
        out += it.labels.problems
    first = {}
    for it in items:
        first.setdefault(it.split, it)
    for split, it in first.items():
        if not labelled[split]:
            msg = (
                f"none of the {len(spec.splits[split])} {split} images has a label file; expected e.g. "
                f"{it.label} for {it.image} (an image's label is its path with the last /images/ "
                "replaced by /labels/ and the suffix by .txt)"
            )
            out.append(Problem("no-labels", str(spec.yaml_path), 0, msg))
    for lab in orphan_labels(items):
        out.append(Problem("orphan-label", str(lab), 0, f"no image {image_for(lab)}"))
    return out


def _duplicates(items: list[Item]) -> list[Problem]:
    by_hash: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        if it.info.sha256 and not _broken(it):
            by_hash[it.info.sha256].append(it)
    out = []
    for group in by_hash.values():
        first = group[0]
        for it in group[1:]:
            code = "duplicate-image" if it.split == first.split else "duplicate-across-splits"
            fix = "" if code == "duplicate-image" else "; it leaks into evaluation: delete one, or re-split"
            out.append(
                Problem(code, str(it.image), 0, f"same bytes as {first.split} image {first.image}{fix}")
            )
    return out


def _class_problems(spec: DataSpec, items: list[Item]) -> list[Problem]:
    used: dict[str, set[int]] = defaultdict(set)
    for it in items:
        used[it.split].update(b[0] for b in it.labels.boxes)
    everywhere = set().union(*used.values()) if used else set()
    yaml = str(spec.yaml_path)
    out = []
    unused = sorted(set(spec.names) - everywhere)
    if unused and everywhere:
        out.append(
            Problem(
                "unused-class",
                yaml,
                0,
                f"names lists classes no label uses: {[spec.names[i] for i in unused]}",
            )
        )
    if "train" in spec.splits:
        missing = sorted(everywhere - used["train"])
        if missing:
            out.append(
                Problem(
                    "class-not-in-train",
                    yaml,
                    0,
                    f"classes labelled in val/test but never in train: {[spec.names[i] for i in missing]}",
                )
            )
    seen: dict[str, int] = {}
    for i, name in spec.names.items():
        if name in seen:
            out.append(
                Problem("duplicate-name", yaml, 0, f"ids {seen[name]} and {i} are both named {name!r}")
            )
        seen.setdefault(name, i)
    return out


def _counts(spec: DataSpec, items: list[Item]) -> dict[str, dict[str, int]]:
    counts = {s: {"images": 0, "labels": 0, "boxes": 0, "backgrounds": 0} for s in spec.splits}
    for it in items:
        c = counts[it.split]
        c["images"] += 1
        c["labels"] += it.labels.exists
        c["boxes"] += len(it.labels.boxes)
        c["backgrounds"] += not (it.labels.boxes or it.labels.problems or _broken(it))
    return counts


def _class_table(spec: DataSpec, items: list[Item]) -> list[dict]:
    """Per class: images holding it, boxes (in all and per split), median box width and height in px."""
    rows = {
        i: {"id": i, "name": n, "images": 0, "boxes": 0, "per_split": {s: 0 for s in spec.splits}}
        for i, n in spec.names.items()
    }
    sizes: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for it in items:
        for cls in {b[0] for b in it.labels.boxes}:
            rows[cls]["images"] += 1
        for cls, _, _, w, h in it.labels.boxes:
            rows[cls]["boxes"] += 1
            rows[cls]["per_split"][it.split] += 1
            if it.info.width:
                sizes[cls].append((w * it.info.width, h * it.info.height))
    for cls, row in rows.items():
        ws, hs = [s[0] for s in sizes[cls]], [s[1] for s in sizes[cls]]
        row["median_w_px"] = round(statistics.median(ws), 1) if ws else None
        row["median_h_px"] = round(statistics.median(hs), 1) if hs else None
    return list(rows.values())


def _image_classes(spec: DataSpec, items: list[Item]) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    out: dict[str, list[tuple[str, tuple[int, ...]]]] = {s: [] for s in spec.splits}
    for it in items:
        if not _broken(it):
            out[it.split].append((str(it.image), tuple(b[0] for b in it.labels.boxes)))
    return out


def check_dataset(spec: DataSpec, decode: bool = True) -> Report:
    """Read every image and label of ``spec`` and report every problem found.

    Args:
        spec: A parsed dataset (``spec.problems`` from a non-strict load are included).
        decode: Fully decode images (finds corrupt and truncated files). False only hashes them.

    Returns:
        A :class:`Report`; problems carry their code's default severity.
    """
    items = scan(spec, decode)
    problems = (
        list(spec.problems) + _item_problems(items, spec) + _duplicates(items) + _class_problems(spec, items)
    )
    return Report(
        problems=problems,
        counts=_counts(spec, items),
        classes=_class_table(spec, items),
        fingerprint=fp.from_items(spec.names, items),
        yaml=str(spec.yaml_path),
        names=dict(spec.names),
        image_classes=_image_classes(spec, items),
    )


def require_clean(spec: DataSpec, allow: list[str] | tuple[str, ...] = ()) -> Report:
    """Run :func:`check_dataset` and raise on any error whose code is not in ``allow``.

    Raises:
        DetectorError: Listing the problems grouped by code, each with file and line, and the fix;
            also when ``allow`` names a code that does not exist.
    """
    report = check_dataset(spec).allow(validate_allow(allow))
    if report.errors:
        shown = "\n".join(f"  {line}" for line in report.summary_lines("error"))
        raise DetectorError(
            f"Dataset {spec.yaml_path} has {len(report.errors)} problem(s)"
            f" (and {len(report.warnings)} warning(s)):\n{shown}\n"
            f"See all of them with: detector-data check {spec.yaml_path}\n"
            "Fix the files above, or downgrade a problem code to a warning with "
            "data.allow=[code,...] (for example data.allow=[zero-area])."
        )
    return report
