"""``finetune.ema``: the decay schedule of the weight average Ultralytics saves and scores.

Ultralytics keeps an EMA of the weights (``ModelEMA``) whose decay ramps as
``decay * (1 - exp(-updates / tau))`` with ``decay=0.9999`` and ``tau=2000`` optimizer steps, sized
for COCO. A fine-tune of 400 images at batch 16 makes about 6 optimizer steps per epoch, so after
10-30 epochs (80-205 steps) the decay is still 0.04-0.1: the "EMA" weights are the raw weights.
A smaller ``tau`` (and a ``decay`` whose horizon, ``1 / (1 - decay)`` steps, is an epoch or two)
makes it an average again. ``null`` keeps Ultralytics' schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from detector.errors import DetectorError

KEYS = {"decay", "tau"}


def resolve(setting: Any) -> dict[str, float] | None:
    """Validate ``finetune.ema`` (``null`` or ``{decay, tau}``); returns it as floats."""
    if setting is None:
        return None
    if not isinstance(setting, dict) or set(setting) != KEYS:
        raise DetectorError(
            f"finetune.ema={setting!r}: give both keys, e.g. finetune.ema={{decay:0.95,tau:20}}, "
            "or null for Ultralytics' own schedule (decay 0.9999, tau 2000)."
        )
    try:
        decay, tau = float(setting["decay"]), float(setting["tau"])
    except (TypeError, ValueError) as e:
        raise DetectorError(f"finetune.ema={setting!r}: decay and tau must be numbers.") from e
    if not (0 < decay < 1 and tau > 0):
        raise DetectorError(
            f"finetune.ema={setting!r}: decay must be in (0, 1) and tau (optimizer steps) above 0."
        )
    return {"decay": decay, "tau": tau}


def schedule(decay: float, tau: float) -> Callable[[int], float]:
    """Ultralytics' decay ramp, with our constants."""
    return lambda updates: decay * (1 - math.exp(-updates / tau))


def callbacks(ema: dict[str, float] | None) -> dict[str, Callable[[Any], None]]:
    """Ultralytics callbacks, event -> function, giving the trainer's EMA this schedule (none for ``None``).

    They run after Ultralytics built the EMA and, on resume, restored its update count, so only
    the decay function changes; the averaged weights and the count carry on. Ultralytics builds a
    new EMA when it recovers from a NaN loss, hence once more at every epoch start.
    """

    if ema is None:
        return {}

    def apply(trainer) -> None:
        if trainer.ema is not None:
            trainer.ema.decay = schedule(ema["decay"], ema["tau"])

    return {"on_pretrain_routine_end": apply, "on_train_epoch_start": apply}
