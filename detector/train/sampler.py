"""The repeat-factor sampler inside Ultralytics' train loader (``finetune.balance=repeat_factor``).

Ultralytics 8.4.190 builds a ``torch.utils.data.RandomSampler`` inside the ``BatchSampler`` that its
``InfiniteDataLoader`` repeats forever (``data/build.py`` 70-127). :func:`attach` puts a
:class:`RepeatFactorSampler` in its place before the loader is first iterated, so the trainer's
batches per epoch (``nb``, read once at ``engine/trainer.py`` 474) already count the repeats, and
makes Mosaic's extra tiles (and MixUp/CutMix partners) follow the same factors.

Imports torch and Ultralytics: only :mod:`detector.train.balance`'s callbacks import this module.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import BatchSampler, RandomSampler, Sampler

SALT = 0x1F5BA1A7  # keeps these draws apart from any other stream seeded with the run seed


class RepeatFactorSampler(Sampler[int]):
    """Each epoch, image i ``floor(r_i)`` times plus once more with probability ``frac(r_i)``, shuffled.

    The draw for epoch e is a pure function of (seed, e), so a resumed run redraws epoch e exactly as
    the uninterrupted run did. Ultralytics' loader keeps one iterator for the whole run and pulls one
    pass of the sampler per epoch; with workers > 0 it pulls the next pass while the current epoch is
    still running (prefetch), before ``set_epoch``. Hence ``__iter__`` draws epoch ``next_draw`` and
    moves it on; ``set_epoch(e)`` keeps a pass already pulled for e; ``rewind`` (on ``loader.reset()``,
    which drops the iterator and what it prefetched) makes the next pass the current epoch's again.
    """

    def __init__(self, factors: Sequence[float], seed: int, epoch_length: int | None, epoch: int = 0) -> None:
        """Args: per-image factors (each >= 1), the run seed, images per epoch (None: about sum r), epoch."""
        f = np.asarray(factors, dtype=np.float64)
        if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f)) or f.min() < 1.0:
            raise ValueError("repeat factors must be a non-empty list of finite values >= 1")
        self.factors = f
        self.seed = int(seed) % (1 << 63)
        self.epoch_length = epoch_length
        self.epoch = epoch
        self.next_draw = epoch
        self.started: int | None = None  # the last epoch the trainer started (kept by the callbacks)
        self._cache: dict[int, np.ndarray] = {}

    def _pass(self, epoch: int, k: int) -> np.ndarray:
        """One shuffled repeat-factor pass over the dataset (k > 0 only when a fixed length needs more)."""
        rng = np.random.default_rng(np.random.SeedSequence([SALT, self.seed, epoch, k]))
        base = np.floor(self.factors)
        counts = (base + (rng.random(self.factors.size) < self.factors - base)).astype(np.int64)
        idx = np.repeat(np.arange(self.factors.size), counts)
        rng.shuffle(idx)
        return idx

    def indices(self, epoch: int) -> np.ndarray:
        """The image indices of ``epoch``, in order: with a fixed length, the first that many of its passes."""
        got = self._cache.get(epoch)
        if got is None:
            parts = [self._pass(epoch, 0)]
            while self.epoch_length is not None and sum(p.size for p in parts) < self.epoch_length:
                parts.append(self._pass(epoch, len(parts)))
            got = np.concatenate(parts)[: self.epoch_length]
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[epoch] = got
        return got

    def __iter__(self) -> Iterator[int]:
        """The indices of the next pass (an epoch ahead when a prefetching loader asks early)."""
        e, self.next_draw = self.next_draw, self.next_draw + 1
        return iter(self.indices(e).tolist())

    def __len__(self) -> int:
        """Images in the current epoch."""
        return int(self.indices(self.epoch).size)

    def set_epoch(self, epoch: int) -> None:
        """Make ``epoch`` current; the next pass is that epoch's unless a prefetch already pulled it."""
        self.epoch = int(epoch)
        if self.next_draw != self.epoch + 1:
            self.next_draw = self.epoch

    def rewind(self) -> None:
        """The next pass is the current epoch's again (the loader dropped its iterator)."""
        self.next_draw = self.epoch

    @property
    def expected_length(self) -> float:
        """Expected images per epoch."""
        return float(self.epoch_length if self.epoch_length is not None else self.factors.sum())

    def digest(self) -> str:
        """A short hash of the factors, seed and epoch length: a resumed run must sample alike."""
        h = hashlib.sha256(np.round(self.factors, 12).tobytes())
        h.update(f"{self.seed}|{self.epoch_length}".encode())
        return h.hexdigest()[:16]


class WeightedPick:
    """Picklable stand-in for ``BaseMixTransform.get_indexes``: partners drawn in proportion to weights.

    With Ultralytics' own choice (uniform over the dataset, or over its buffer of recent images) 3 of
    Mosaic's 4 tiles ignore the factors: a rare image's tile share rises by (r + 3k)/(1 + 3k), not r.
    Uses Python's ``random`` as Ultralytics does (seeded per worker by ``seed_worker``).
    """

    def __init__(self, weights: Sequence[float], k: int | None) -> None:
        self.population = range(len(weights))
        self.cum = np.cumsum(np.asarray(weights, dtype=np.float64)).tolist()
        self.k = k  # None: one int (MixUp, CutMix, CopyPaste); n: a list (Mosaic wants n - 1)

    def __call__(self) -> int | list[int]:
        picks = random.choices(self.population, cum_weights=self.cum, k=self.k or 1)
        return picks if self.k is not None else picks[0]


def mix_transforms(root: Any) -> list[Any]:
    """Every ``BaseMixTransform`` reachable from a dataset's transforms (Compose lists, pre_transforms)."""
    from ultralytics.data.augment import BaseMixTransform, Compose

    out, seen, stack = [], set(), [root]
    while stack:
        t = stack.pop()
        if t is None or id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t, BaseMixTransform):
            out.append(t)
        if isinstance(t, Compose):
            stack.extend(t.transforms)
        stack.append(getattr(t, "pre_transform", None))
    return out


def attach(
    loader: Any, factors: Sequence[float], seed: int, epoch_length: int | None, epoch: int
) -> RepeatFactorSampler:
    """Put a repeat-factor sampler into a train ``InfiniteDataLoader`` that was never iterated.

    Its ``RandomSampler`` is replaced, ``loader.sampler`` points at the new one (the trainer reads
    ``len(train_loader.sampler)``), ``loader.reset`` also rewinds it, and the dataset's mix transforms
    draw their partner images with the same factors.

    Raises:
        RuntimeError: Not the single-device shuffled loader (``rect=True``, several devices), or iterated.
    """
    batches = getattr(loader.batch_sampler, "sampler", None)
    if not isinstance(batches, BatchSampler) or not isinstance(batches.sampler, RandomSampler):
        found = type(getattr(batches, "sampler", batches)).__name__
        raise RuntimeError(
            f"repeat-factor sampling needs the single-device shuffled train loader, found {found}"
        )
    if getattr(loader, "iterator", None) is not None:
        raise RuntimeError("the repeat-factor sampler must be attached before the loader is first iterated")
    sampler = RepeatFactorSampler(factors, seed, epoch_length, epoch)
    batches.sampler = sampler
    object.__setattr__(loader, "sampler", sampler)  # DataLoader refuses to set 'sampler' after init
    from ultralytics.data.augment import Mosaic

    for m in mix_transforms(getattr(loader.dataset, "transforms", None)):
        m.get_indexes = WeightedPick(factors, m.n - 1 if isinstance(m, Mosaic) else None)
    reset = loader.reset

    def reset_and_rewind() -> None:
        sampler.rewind()
        reset()

    loader.reset = reset_and_rewind
    return sampler
