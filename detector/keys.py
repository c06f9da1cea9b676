"""Validate config keys against Ultralytics' own schema (``ultralytics/cfg/default.yaml``).

The schema file is read directly, without importing ultralytics (and torch), so that a typo
fails in well under 2 seconds.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from detector.errors import DetectorError

# Keys the app sets itself from other config groups; setting them under train/export would be
# silently overridden, so they are refused with a pointer to the right place.
RESERVED = {
    "model": "choose the model with model=yolo26s or model.arch=/model.weights=",
    "data": "choose the dataset with data=custom data.yaml=/path/to/data.yaml",
    "project": "runs land in paths.runs_dir; change that instead",
    "name": "set the run name with the top-level key name=...",
    "exist_ok": "each run gets its own folder",
    "pretrained": "set model.weights=... (or model.weights=null for random init)",
    "freeze": "use finetune.freeze=backbone|neck|none|N|[i,j,...]",
    "resume": "resume a run with detector-train resume=<run folder>",
    "mode": "the entry point sets it",
    "task": "detector trains detection models",
    "augmentations": "use the augment config group",
}


@functools.cache
def ultralytics_keys() -> frozenset[str]:
    """All keys of Ultralytics' ``cfg/default.yaml``, read without importing ultralytics."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("ultralytics is not installed: run `pip install -e .`")
    path = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "default.yaml"
    return frozenset(yaml.safe_load(path.read_text()))


def validate(group: str, keys: Iterable[str], allowed: Mapping[str, str] | None = None) -> None:
    """Fail with close-match suggestions when a key is not an Ultralytics key.

    Args:
        group: Config group the keys come from (``train`` or ``export``), named in the message.
        keys: Keys to check.
        allowed: Reserved keys and why they are refused; defaults to :data:`RESERVED`.

    Raises:
        DetectorError: Listing every bad key with a suggestion.
    """
    reserved = RESERVED if allowed is None else allowed
    valid = ultralytics_keys()
    problems = []
    for key in keys:
        if key in reserved:
            problems.append(f"  {group}.{key}: not set here; {reserved[key]}")
        elif key not in valid:
            close = difflib.get_close_matches(key, sorted(valid - reserved.keys()), n=3, cutoff=0.6)
            hint = (
                f"did you mean {' or '.join(f'{group}.{c}' for c in close)}?" if close else "no close match"
            )
            problems.append(f"  {group}.{key}: not an Ultralytics key ({hint})")
    if problems:
        raise DetectorError(
            f"Unknown or misplaced {group} keys:\n"
            + "\n".join(problems)
            + "\nValid keys are those of Ultralytics' cfg/default.yaml (https://docs.ultralytics.com/usage/cfg/)."
        )
