"""``finetune.balance``: repeat-factor sampling of rare classes, checked in the plan, run by callbacks.

``repeat_factor`` draws each training image in proportion to the LVIS repeat factor of its rarest
class (:mod:`detector.data.balance`); ``auto`` does so when the train images' class ratio is at least
:data:`detector.data.balance.SUGGEST_RATIO`; ``none`` leaves Ultralytics' shuffle.

The callbacks (one more event -> function dict, like ``finetune.ema``) hook Ultralytics 8.4.190 at:

* ``on_pretrain_routine_start``: wrap ``trainer.get_dataloader``, so every train loader the trainer
  builds (the first, and the one rebuilt after an out-of-memory retry) gets the sampler before
  anything reads its length;
* ``on_pretrain_routine_end``: move the sampler to ``trainer.start_epoch`` (set by a resume), and
  record or check the sampler's digest in ``balance.json`` beside the stage's weights;
* ``on_train_epoch_start``: ``set_epoch`` (Ultralytics calls it only under DDP), and reset the loader
  when Ultralytics re-runs an epoch (NaN recovery) so the epoch is drawn again from its start.

No torch or Ultralytics at import: the plan validates ``finetune.balance`` in milliseconds.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from detector import config
from detector.data import balance as factors
from detector.errors import DetectorError
from detector.io import write_json

OPTIONS = ("none", "repeat_factor", "auto")
EPOCHS = ("dataset", "natural")
KEYS = ("balance", "balance_threshold", "balance_epoch")  # in configs/finetune/none.yaml
RECORD = "balance.json"  # beside the stage's weights: the digest a resume must match


@dataclass(frozen=True)
class Balance:
    """What the plan decided for ``finetune.balance``, and why."""

    method: str  # repeat_factor | none (what runs)
    threshold: float
    epoch: str  # dataset: as many images per epoch as the dataset (equal compute) | natural: about sum r
    reason: str

    @property
    def on(self) -> bool:
        return self.method == "repeat_factor"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if value in choices:
        return str(value)
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f" Did you mean {key}={close[0]}?" if close else ""
    raise DetectorError(f"{key}={value!r} is not one of {', '.join(choices)}.{hint}")


def _threshold(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1
    if not ok:
        raise DetectorError(
            f"finetune.balance_threshold={value!r} must be a number in (0, 1]: a class found in a fraction "
            "f of the train images below it is drawn sqrt(t/f) times as often (0.5: a class in 5% of the "
            "images 3.2x)."
        )
    return float(value)


def _kept(n: int, fraction: Any) -> int:
    """How many of ``n`` sorted train images Ultralytics keeps for ``train.fraction`` (data/base.py 224)."""
    if isinstance(fraction, list):
        fraction = fraction[0] if fraction else 1.0
    if fraction in (0, 1):
        fraction = float(fraction)
    return fraction if isinstance(fraction, int) else max(1, round(n * float(fraction)))


def train_images(report: Any, kwargs: Mapping[str, Any], nc: int) -> tuple[list[list[int]], int]:
    """The class ids of each train image Ultralytics will train on, and how many images it skips.

    ``train.fraction`` keeps the first images in path order; ``train.classes`` drops other classes'
    boxes; ``train.single_cls`` makes every box class 0.
    """
    rows = sorted(report.image_classes.get("train", []))
    keep = min(len(rows), _kept(len(rows), kwargs.get("fraction", 1.0)))
    wanted = kwargs.get("classes")
    wanted = None if wanted is None else {int(c) for c in (wanted if isinstance(wanted, list) else [wanted])}
    out = []
    for _, ids in rows[:keep]:
        ids = [c for c in ids if wanted is None or c in wanted]
        out.append([0] * len(ids) if kwargs.get("single_cls") else ids)
    return out, len(rows) - keep


def _checked(imb: factors.Imbalance, skipped: int, kwargs: Mapping[str, Any], strict: bool) -> list[str]:
    """Classes the balanced run would never see: named in an error when ``strict`` and train.fraction
    dropped them, else in warnings."""
    if imb.absent and skipped and strict:
        raise DetectorError(
            f"train.fraction={kwargs.get('fraction')!r} leaves out {skipped} train images, and with them every "
            f"box of {imb.absent}: finetune.balance cannot repeat a class the run never sees. Raise "
            "train.fraction, re-split the dataset, or set finetune.balance=none."
        )
    return [
        f"finetune.balance: class {name!r} has no train box; nothing can repeat it." for name in imb.absent
    ]


def _settings(finetune: Any) -> tuple[str, float, str]:
    """``finetune.balance``, ``balance_threshold`` and ``balance_epoch``, each validated."""
    doc = config.require(finetune, KEYS, "finetune")
    asked = _choice("finetune.balance", doc["balance"], OPTIONS)
    return (
        asked,
        _threshold(doc["balance_threshold"]),
        _choice("finetune.balance_epoch", doc["balance_epoch"], EPOCHS),
    )


def resolve(
    finetune: Any, kwargs: Mapping[str, Any], report: Any, names: Mapping[int, str]
) -> tuple[Balance, list[str]]:
    """Validate ``finetune.balance*`` against the dataset; returns the decision and warnings.

    ``repeat_factor`` is what the user asked for: what stops it is an error or a warning. ``auto`` is
    the recipe's: it turns itself off quietly (the reason goes to summary.json) where it cannot help.

    Raises:
        DetectorError: An unknown option (with the close match), a threshold outside (0, 1], and for
            ``repeat_factor``, rect batches or a ``train.fraction`` that drops a class entirely (named).
    """
    asked, t, epoch = _settings(finetune)
    asked_for = asked == "repeat_factor"

    def off(why: str) -> Balance:
        return Balance("none", t, epoch, why)

    if asked == "none":
        return off("finetune.balance=none"), []
    if kwargs.get("rect"):
        if not asked_for:
            return off("auto: off, train.rect=true keeps batches unshuffled"), []
        raise DetectorError(
            "finetune.balance=repeat_factor needs shuffled batches; train.rect=true keeps them in "
            "aspect-ratio order. Drop train.rect or set finetune.balance=none."
        )
    labels = {0: "item"} if kwargs.get("single_cls") else dict(names)
    images, skipped = train_images(report, kwargs, len(labels))
    imb = factors.imbalance("train", images, labels)
    if imb.ratio_images is None:
        why = "one class" if len(labels) == 1 else "one class present in train"
        note = (
            f"finetune.balance=repeat_factor changes nothing here ({why}): it balances classes, so it is off."
        )
        return off(f"{'off' if asked_for else 'auto: off'}: {why}, nothing to balance"), [note] * asked_for
    ratio = f"train images' most/least frequent class ratio {imb.ratio_images:.1f}x"
    if not asked_for and not imb.suggest:
        return off(f"auto: off, {ratio} < {factors.SUGGEST_RATIO:g}x"), []
    warnings = _checked(imb, skipped, kwargs, strict=asked_for)
    per_class, _ = factors.repeat_factors(images, len(labels), t)
    if not any(r and r > 1 for r in per_class):
        rarest = min(k for k in imb.images if k) / len(images)
        warnings.append(
            f"finetune.balance_threshold={t:g} is below the rarest class's image fraction {rarest:.3f}: "
            "nothing is repeated. Raise the threshold (up to 1)."
        )
    reason = (
        f"auto: on, {ratio} >= {factors.SUGGEST_RATIO:g}x"
        if not asked_for
        else "finetune.balance=repeat_factor"
    )
    return Balance("repeat_factor", t, epoch, reason), warnings


def _image_classes(dataset: Any) -> list[list[int]]:
    return [[int(c) for c in lb["cls"].reshape(-1)] for lb in dataset.labels]


def sampler_of(trainer: Any) -> Any:
    """The repeat-factor sampler of a trainer's train loader, or None."""
    from detector.train.sampler import RepeatFactorSampler

    s = getattr(getattr(trainer, "train_loader", None), "sampler", None)
    return s if isinstance(s, RepeatFactorSampler) else None


def _install(trainer: Any, b: Balance) -> None:
    """Wrap ``trainer.get_dataloader`` so each train loader it builds samples by repeat factor."""
    from detector.train.sampler import attach

    build = trainer.get_dataloader

    def get_dataloader(dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train") -> Any:
        loader = build(dataset_path, batch_size, rank, mode)
        if mode == "train":
            _, per_image = factors.repeat_factors(
                _image_classes(loader.dataset), int(trainer.data["nc"]), b.threshold
            )
            length = len(loader.dataset) if b.epoch == "dataset" else None
            epoch = trainer.start_epoch if getattr(trainer, "epoch", None) is None else trainer.epoch
            attach(loader, per_image, int(trainer.args.seed), length, int(epoch))
        return loader

    trainer.get_dataloader = get_dataloader


def _check_digest(trainer: Any, digest: str) -> None:
    """Write the sampler's digest beside the weights; a resumed stage must find the same one there."""
    path = trainer.save_dir / RECORD
    if trainer.start_epoch > 0 and path.is_file():
        before = json.loads(path.read_text()).get("digest")
        if before != digest:
            raise DetectorError(
                f"resume: the repeat factors changed (digest {digest}, the interrupted run drew with {before}): "
                "the dataset's train labels differ from the run's start. Restore them, or start a new run."
            )
    write_json(path, {"digest": digest, "start_epoch": trainer.start_epoch})


def callbacks(b: Balance | None) -> dict[str, Callable[[Any], None]]:
    """Ultralytics callbacks, event -> function, that train with repeat-factor sampling (none when off)."""
    if b is None or not b.on:
        return {}

    def found(trainer: Any) -> Any:
        s = sampler_of(trainer)
        if s is None:  # a loader built around get_dataloader would train unbalanced, silently
            raise RuntimeError("the repeat-factor sampler is missing from the train loader")
        return s

    def align(trainer: Any) -> None:  # after resume set start_epoch, before nb = len(train_loader)
        s = found(trainer)
        s.set_epoch(trainer.start_epoch)
        s.started = None
        _check_digest(trainer, s.digest())

    def epoch_start(trainer: Any) -> None:
        s, e = found(trainer), int(trainer.epoch)
        rerun = s.started is not None and e <= s.started  # NaN recovery repeats an epoch on the same iterator
        s.set_epoch(e)
        s.started = e
        if rerun:
            trainer.train_loader.reset()  # drops the pass already pulled; rewinds to epoch e

    return {
        "on_pretrain_routine_start": lambda trainer: _install(trainer, b),
        "on_pretrain_routine_end": align,
        "on_train_epoch_start": epoch_start,
    }


def record(trainer: Any, b: Balance | None) -> dict[str, Any] | None:
    """What ``summary.json`` records: the decision, and with the sampler on, its per-class factors."""
    s = sampler_of(trainer) if b is not None and b.on else None
    if s is None:
        return None if b is None else b.to_dict()
    names = trainer.data["names"]
    classes = _image_classes(trainer.train_loader.dataset)
    per_class, per_image = factors.repeat_factors(classes, len(names), b.threshold)
    images = factors.images_per_class(classes, len(names))
    before = factors.class_shares(classes, len(names), [1.0] * len(classes))
    after = factors.class_shares(classes, len(names), per_image)
    return {
        **b.to_dict(),
        "digest": s.digest(),
        "seed": s.seed,
        "images": len(classes),
        "images_per_epoch": round(s.expected_length, 2),
        "images_per_epoch_natural": round(sum(per_image), 2),  # every repeat: what epoch=natural draws
        "images_repeated": sum(r > 1 for r in per_image),
        "classes": {
            names[c]: {
                "images": images[c],
                "repeat_factor": None if per_class[c] is None else round(per_class[c], 4),
                "image_share_before": round(before[c], 4),
                "image_share_after": round(after[c], 4),
            }
            for c in range(len(names))
        },
    }
