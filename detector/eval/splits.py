"""The split an evaluation scores: ``test`` when the data has one, else ``val`` (which chose the weights).

Checked before any inference: a split the data lacks, or one that holds no images or no boxes, is a
:class:`DetectorError` naming the fix.
"""

from __future__ import annotations

from detector.data import spec as data_spec
from detector.data.labels import read as read_labels
from detector.errors import DetectorError

CHOSE_WEIGHTS = (
    "the data has no test split, so this is the val split, which chose the weights (best.pt): "
    "its figures are optimistic. Add a `test:` split to the data.yaml for held-out figures."
)


def split(spec: data_spec.DataSpec, name: str | None) -> tuple[str, list[str]]:
    """The split to evaluate (``test`` when the data has one, else ``val``) and the warnings to print.

    Raises:
        DetectorError: The data lacks the split, or it holds no images or no boxes.
    """
    declared = [s for s in data_spec.SPLITS if spec.raw.get(s) is not None]
    chosen = str(name) if name else ("test" if "test" in declared else "val")
    if chosen not in declared:
        raise DetectorError(
            f"{spec.yaml_path} has no `{chosen}:` split (it has {', '.join(declared) or 'none'}). "
            f"Pick one of those with split=..., or add `{chosen}: images/{chosen}` to it."
        )
    problems = [p.message for p in spec.problems if f"{chosen} split" in p.message]
    if chosen not in spec.splits or problems:
        raise DetectorError(
            f"{spec.yaml_path}: {problems[0] if problems else f'the {chosen} split is empty'}"
        )
    if not any(read_labels(data_spec.label_path(p), spec.nc).boxes for p in spec.splits[chosen]):
        raise DetectorError(
            f"{spec.yaml_path}: the {chosen} split has {len(spec.splits[chosen])} images but no labelled "
            "box, so there is nothing to score. Check its labels with detector-data check."
        )
    return chosen, [CHOSE_WEIGHTS] if chosen == "val" and not name and "test" not in declared else []
