"""Weights & Biases tracking: one W&B run per training run, owned by the app, never fatal.

What ``detector-train`` does::

    with tracking.session(cfg, run_dir) as tracker:
        summary = run(cfg, run_dir, callbacks=[tracker.callbacks])  # detector.train.run
        tracker.record_training(summary)
        tracker.log_artifact(path, name="...", type="exported-model")  # later steps join the same run

The W&B run opens when Ultralytics starts training (its first callback), so input that fails
validation leaves no W&B run behind. It is finished when the ``with`` block ends: exit code 0
on success, non-zero (W&B shows the run as failed) when the block raised. While the session
is open, SIGTERM raises ``SystemExit(143)`` so a killed run is finished and marked failed too.

Any W&B problem (package missing, bad setting, unwritable folder, a call that raises) logs
exactly one warning and turns tracking off for the rest of the run; training goes on.
Ultralytics' own W&B callback never runs: :mod:`detector.runtime` switches it off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from detector import redact, runtime
from detector.errors import DetectorError
from detector.tracking import settings

log = logging.getLogger(__name__)

FINAL_PREFIX = "final/"  # summary keys for the metrics of the best weights (summary.json "metrics")
TEST_PREFIX = "test/"  # ... and for best.pt on the test split (summary.json "test"), apart from val


def held_out_keys(summary: dict[str, Any]) -> dict[str, float]:
    """``test/mAP50-95`` and its interval ends (``test/mAP50-95_low``, ``_high``), from summary.json."""
    out = {}
    for k, iv in (summary.get("test") or {}).get("overall", {}).items():
        out[TEST_PREFIX + k] = iv["value"]
        out |= {f"{TEST_PREFIX}{k}_{end}": iv[end] for end in ("low", "high") if iv.get(end) is not None}
    return out


def artifact_name(text: str) -> str:
    """A valid W&B artifact name (letters, digits, ``-``, ``_``, ``.``) from any text."""
    return re.sub(r"[^\w.-]+", "-", text).strip("-.") or "run"


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 2 if isinstance(exc, DetectorError) else 1


def _warn(reason: str) -> None:
    log.warning(
        f"W&B tracking is off for the rest of this run: {reason}. Training goes on; fix the cause or "
        "run with logger=none."
    )


class Tracker:
    """The W&B side of one training run. Every method is a no-op when tracking is off."""

    def __init__(self, init: dict[str, Any] | None = None, table: tuple[int, float] = (16, 0.25)):
        """Use :func:`session` rather than building one.

        Args:
            init: ``wandb.init`` keyword arguments; None = tracking off.
            table: Val images in the predictions table, and the confidence threshold of its boxes.
        """
        self._init = init
        self.run = None  # the wandb Run, once training starts
        self.epoch = 0  # the last epoch logged, counted across stages: the W&B step
        self._offset = 0  # epochs of the stages already trained in this process
        self._in_epoch = False
        self._table = table

    @property
    def active(self) -> bool:
        """True while tracking is on (it turns off for good after any W&B error)."""
        return self._init is not None

    @property
    def callbacks(self) -> dict[str, Callable]:
        """Ultralytics callbacks, event -> function, one entry of ``run(..., callbacks=[...])``."""
        if not self.active:
            return {}
        return {
            "on_pretrain_routine_start": lambda trainer: self._call("start the W&B run", self._open),
            "on_train_epoch_end": self._on_train_epoch_end,
            "on_fit_epoch_end": lambda trainer: self._call("log epoch metrics", self._log_epoch, trainer),
            "on_train_end": self._on_train_end,
        }

    def _disable(self, reason: str) -> None:
        if self.active:
            _warn(reason)
        self._init = None

    def _call(self, what: str, fn: Callable, *args: Any) -> Any:
        """Run ``fn`` if tracking is on; the first failure warns once and turns tracking off."""
        if not self.active:
            return None
        try:
            return fn(*args)
        except Exception as e:
            self._disable(f"could not {what} ({type(e).__name__}: {e})")
            return None

    def _open(self) -> Any:
        if self.run is None:
            import wandb

            with redact.argv():  # wandb records the command line in its metadata
                self.run = wandb.init(**self._init)
        return self.run

    def _on_train_epoch_end(self, trainer) -> None:
        self._in_epoch = True

    def _on_train_end(self, trainer) -> None:
        self._offset += trainer.epochs  # a two-stage run's stage 2 goes on from stage 1's epoch count

    def _log_epoch(self, trainer) -> None:
        if not self._in_epoch:  # Ultralytics' final validation of best.pt: recorded from summary.json
            return
        self._in_epoch = False
        self.epoch = self._offset + trainer.epoch + 1  # trainer.epoch is 0-based; absolute on resume
        row = {
            **trainer.label_loss_items(trainer.tloss, prefix="train"),
            **(trainer.metrics or {}),  # val losses and metrics/precision(B) ... metrics/mAP50-95(B)
            **(getattr(trainer, "lr", None) or {}),
        }
        row = {k: float(v) for k, v in row.items()}
        self._open().log({**row, "epoch": self.epoch}, step=self.epoch)

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        """Log ``data`` to the run's history (e.g. test metrics after training)."""
        self._call("log to W&B", lambda: self._open().log(data, step=step))

    def update_summary(self, data: dict[str, Any]) -> None:
        """Set keys of the run's summary (the values shown in the W&B runs table)."""
        self._call("update the W&B summary", lambda: self._open().summary.update(data))

    def log_artifact(
        self,
        paths: str | Path | Sequence[str | Path],
        name: str,
        type: str,
        metadata: dict[str, Any] | None = None,
        aliases: list[str] | None = None,
    ) -> Any | None:
        """Log files or folders as an artifact output of this run, so it joins the run's lineage.

        Files are referenced in place (W&B's ``immutable`` policy), not copied, so keep the run
        folder where it is until an offline run is synced.

        Args:
            paths: A file, a folder (e.g. an OpenVINO export) or a list of them.
            name: Artifact name; other characters than letters, digits, ``-_.`` become ``-``.
            type: Artifact type, e.g. ``model`` or ``exported-model``.
            metadata: JSON-serialisable facts shown with the artifact.
            aliases: Extra aliases (W&B always adds ``latest``).

        Returns:
            The logged ``wandb.Artifact``, or None when tracking is off.
        """

        def _log():
            import wandb

            art = wandb.Artifact(artifact_name(name), type=type, metadata=metadata or {})
            for p in [paths] if isinstance(paths, (str, Path)) else paths:
                p = Path(p)
                if p.is_dir():
                    art.add_dir(str(p), name=p.name, policy="immutable")
                else:
                    art.add_file(str(p), name=p.name, policy="immutable")
            return self._open().log_artifact(art, aliases=aliases)

        return self._call(f"log artifact {name}", _log)

    def record_training(self, summary: dict[str, Any]) -> None:
        """Record what training produced: facts, final metrics, best weights, plots, predictions.

        Args:
            summary: What ``train.run`` returned (the content of summary.json).
        """
        self._call("record the training results", self._record, summary)

    def _record(self, summary: dict[str, Any]) -> None:
        from detector.tracking import media

        facts = media.run_facts(summary)
        self._open().config.update({"resolved": facts})
        best = Path(summary["weights"]["best"])
        if best.exists():
            meta = {**facts, "metrics": summary["metrics"]}
            cfg_name = summary["config"].get("name") or "run"
            self.log_artifact(best, name=f"{cfg_name}-model", type="model", metadata=meta)
        self.update_summary(
            {
                **{FINAL_PREFIX + k: v for k, v in summary["metrics"].items()},
                **held_out_keys(summary),
                "frozen_params": summary["freeze"]["frozen_params"],
                "trainable_params": summary["freeze"]["trainable_params"],
                "pretrained": summary["pretrained"],
                "wall_time_s": summary["wall_time_s"],
            }
        )
        step = self.epoch or None  # join the last epoch's row
        self._call("log the plots", lambda: self._log_media(media.plots(Path(summary["run_dir"])), step))
        n, conf = self._table
        if n and best.exists():
            self._call(
                "log the validation predictions table",
                lambda: self._log_media({"val/predictions": media.predictions_table(summary, n, conf)}, step),
            )

    def _log_media(self, media: dict[str, Any], step: int | None) -> None:
        if media:
            self._open().log(media, step=step)

    def finish(self, exit_code: int = 0) -> None:
        """Finish the W&B run (non-zero = failed). Quiet: a failure here must not mask the real one."""
        run, self.run = self.run, None
        if run is not None:
            try:
                run.finish(exit_code=exit_code)
            except Exception as e:
                log.debug(f"wandb finish failed: {e}")


def from_config(cfg: DictConfig, run_dir: str | Path, group: str | None = None) -> Tracker:
    """A :class:`Tracker` for ``cfg.logger``; off (with one warning) if W&B cannot work here."""
    lg = cfg.logger
    if lg.backend == "none":
        return Tracker()
    try:
        init = settings.init_kwargs(cfg, run_dir, group)
    except Exception as e:
        _warn(str(e) if isinstance(e, DetectorError) else f"{type(e).__name__}: {e}")
        return Tracker()
    table = (int(lg.table_images), float(lg.table_conf))
    return Tracker(init, table) if init else Tracker()


@contextlib.contextmanager
def session(cfg: DictConfig, run_dir: str | Path, group: str | None = None) -> Iterator[Tracker]:
    """Track one training run (and whatever follows it in the block) as one W&B run.

    Args:
        cfg: The composed config; ``cfg.logger`` selects and configures tracking.
        run_dir: The run folder; W&B writes ``<run_dir>/wandb/`` unless ``logger.dir`` is set.
        group: W&B group, e.g. an in-process sweep's study name; default :func:`settings.default_group`.

    Yields:
        The :class:`Tracker`; pass ``[tracker.callbacks]`` to :func:`detector.train.run.run`.
    """
    tracker = from_config(cfg, run_dir, group)
    staging = None  # wandb stages artifact files (tables, images) in WANDB_DATA_DIR until they are synced
    if tracker.active and "WANDB_DATA_DIR" not in os.environ:  # keep them in the run folder, not in ~
        staging = os.environ["WANDB_DATA_DIR"] = str(Path(tracker._init["dir"]) / "wandb" / "data")
    code = 0
    # While tracking, SIGTERM raises SystemExit(143), so the run below is finished and marked failed.
    sigterm = runtime.on_sigterm(lambda n: SystemExit(128 + n), only_if_default=True)
    try:
        with sigterm if tracker.active else contextlib.nullcontext():
            yield tracker
    except BaseException as e:
        code = _exit_code(e)
        if tracker.run is not None:
            tracker.update_summary({"error": f"{type(e).__name__}: {e}"[:1000]})
        raise
    finally:
        tracker.finish(code)
        if staging:
            os.environ.pop("WANDB_DATA_DIR", None)
