"""Console entry points: tiny Hydra apps. Heavy imports happen inside the task functions.

Each app runs its task under :func:`_guarded`: bad input prints one message (no traceback), removes
the folder Hydra made for a run that produced nothing, and exits with status 2.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from detector import redact, runtime
from detector.config import CONFIG_DIR, passthrough_overrides, user_configs
from detector.errors import DetectorError


def _run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def _remove_run_dir(run_dir: Path, runs_dir: str | Path) -> None:
    """Delete a folder Hydra made for a run that produced nothing, and the folders above it that are
    left empty, up to and including ``runs_dir`` (never the working directory or one above it): a
    refused command leaves the tree as it found it."""
    shutil.rmtree(run_dir, ignore_errors=True)
    top, here = Path(runs_dir).resolve(), Path.cwd().resolve()
    folder = run_dir.resolve().parent
    while (folder == top or top in folder.parents) and folder != here and folder not in here.parents:
        if not folder.is_dir() or any(folder.iterdir()):
            break
        folder.rmdir()
        folder = folder.parent


def _guarded(
    task: Callable[[DictConfig, Path], object], cfg: DictConfig, keep: tuple[str, ...] = ("summary.json",)
) -> object:
    """Run ``task``; on bad input print the message and exit 2; on any failure remove the run folder
    unless it holds one of ``keep`` (what makes it a real run)."""
    run_dir = _run_dir()
    redact.files(run_dir / ".hydra")  # Hydra saved the command line and config: no password stays there
    try:
        return task(cfg, run_dir)
    except DetectorError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        _remove_if_empty(run_dir, cfg, keep)
        sys.exit(2)
    except BaseException:  # a real crash (or Ctrl-C): its traceback stays, the empty folder goes
        _remove_if_empty(run_dir, cfg, keep)
        raise


def _remove_if_empty(run_dir: Path, cfg: DictConfig, keep: tuple[str, ...]) -> None:
    """A folder with no summary must not look like a run."""
    if run_dir.is_dir() and not any((run_dir / k).exists() for k in keep):
        _remove_run_dir(run_dir, cfg.paths.runs_dir)


def _start(app: Callable[[], object]) -> None:
    """Run a Hydra app on the command line: ``train.X=`` keys passed through without a ``+``, and the
    user's own ``./configs`` on the search path."""
    runtime.register_resolvers()
    args = passthrough_overrides(sys.argv[1:])
    sys.argv[1:] = [*user_configs(args), *args]
    app()


# Hydra's own flags that take a value (``--cfg job``): that value is not a MODEL.
_HYDRA_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn"}
_HYDRA_VALUE_FLAGS |= {"--config-dir", "-cd", "--info", "-i", "--experimental-rerun"}


def _positional(args: list[str]) -> list[str]:
    """``detector-eval A B k=v``: the bare arguments become one ``models=['A','B']`` override."""
    bare, rest = [], []
    for i, a in enumerate(args):
        value_of_flag = i > 0 and args[i - 1] in _HYDRA_VALUE_FLAGS
        (bare if "=" not in a and not a.startswith("-") and not value_of_flag else rest).append(a)
    # data=/path/to/data.yaml is short for the data group's data=custom data.yaml=/path/to/data.yaml
    path = re.compile(r"^data=(.*(\.ya?ml|/)|[./~].*)$")
    rest = [x for a in rest for x in (["data=custom", f"data.yaml={a[5:]}"] if path.match(a) else [a])]
    if not bare:
        return rest
    quoted = ",".join("'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'" for a in bare)
    return [f"models=[{quoted}]", *rest]


def _resume_config(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, Path]:
    """``resume=<run folder>``: that run's own config and folder; this command's own folder goes."""
    from detector.train.rundir import load_run_config

    extra = [o for o in HydraConfig.get().overrides.task if not o.startswith("resume=")]
    if extra:
        raise DetectorError(
            f"resume continues a run with its own config; drop {' '.join(o.lstrip('+') for o in extra)} "
            "(to change settings, start a new run from its weights with model.weights=<run>/weights/last.pt)."
        )
    runs_dir = cfg.paths.runs_dir
    cfg = load_run_config(Path(str(cfg.resume)))
    _remove_run_dir(run_dir, runs_dir)  # Hydra's folder for this command: the run goes on in its own folder
    return cfg, Path(str(cfg.resume))


def _train_task(cfg: DictConfig, run_dir: Path) -> float | None:
    from detector.artifacts import export, target
    from detector.eval.run import operating_settings
    from detector.tracking.tracker import session
    from detector.train.run import run

    resume = bool(cfg.get("resume"))
    if resume:
        cfg, run_dir = _resume_config(cfg, run_dir)
    fmt = target.target(cfg.export)  # export=onnx etc.: a bad option fails now, before training
    operating = operating_settings(cfg.eval) if fmt else None  # and a bad eval.threshold rule
    with session(cfg, run_dir) as tracker:  # one W&B run (logger=wandb), failed if this raises
        summary = run(cfg, run_dir, callbacks=[tracker.callbacks], resume=resume)
        tracker.record_training(summary)
        if fmt:
            version = export.publish(run_dir, fmt, cfg.paths.artifacts_dir, operating=operating)
            tracker.log_artifact(  # W&B adds the `latest` alias itself
                version.path, name=version.name, type="model", aliases=[f"v{version.number}"]
            )
            print(version.path)
    print(run_dir)  # last line: scripts can capture the run folder
    return summary["metrics"].get("mAP50-95")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _train_app(cfg: DictConfig) -> float | None:
    return _guarded(_train_task, cfg)


def train() -> None:
    """``detector-train``: fine-tune a detector (see configs/train.yaml)."""
    _start(_train_app)


def _preview_task(cfg: DictConfig, run_dir: Path) -> Path:
    from detector.train.preview import render

    p = cfg.preview
    out = render(cfg, p.out or run_dir / "augment_preview.png", n=int(p.n), seed=int(p.seed))
    print(out)  # last line: the PNG
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="augment_preview")
def _preview_app(cfg: DictConfig) -> Path:
    return _guarded(_preview_task, cfg)


def augment_preview() -> None:
    """``detector-augment-preview``: a PNG grid of augmented training images with boxes drawn."""
    _start(_preview_app)


def _export_task(cfg: DictConfig, log_dir: Path) -> str:
    from detector.artifacts import export, target
    from detector.eval.run import operating_settings
    from detector.train.rundir import find_run

    t = target.target(cfg.export)
    if t is None:
        raise DetectorError("export=none selects no format: pick one, e.g. export=onnx or export=openvino.")
    operating = operating_settings(cfg.eval)
    run_dir = find_run(cfg.run, cfg.paths.runs_dir)
    version = export.publish(run_dir, t, cfg.paths.artifacts_dir, operating=operating)
    print(version.path)  # last line: scripts can capture the version folder
    return str(version.path)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def _export_app(cfg: DictConfig) -> str:
    return _guarded(_export_task, cfg)


def export() -> None:
    """``detector-export``: export a finished run, check it, publish a version (see configs/export.yaml)."""
    _start(_export_app)


def _sweep_task(cfg: DictConfig, sweep_dir: Path) -> float | None:
    from detector.sweep.run import run, train_overrides

    try:
        return run(cfg, sweep_dir, train_overrides(HydraConfig.get().overrides.task))
    except KeyboardInterrupt:  # Ctrl-C or kill: results are written; the same command continues the study
        print(f"\ninterrupted: {sweep_dir}", file=sys.stderr)
        sys.exit(130)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="sweep")
def _sweep_app(cfg: DictConfig) -> float | None:
    return _guarded(_sweep_task, cfg, keep=("trials", "study.db"))


def sweep() -> None:
    """``detector-sweep``: an Optuna hyperparameter search over detector-train runs (configs/sweep.yaml)."""
    _start(_sweep_app)


def _eval_task(cfg: DictConfig, out_dir: Path) -> str:
    from detector.review.app import main

    out = main(cfg, out_dir)
    print(out)  # last line: scripts can capture the eval folder
    return str(out)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _eval_app(cfg: DictConfig) -> str:
    return _guarded(_eval_task, cfg, keep=("metrics.json",))


def evaluate() -> None:
    """``detector-eval``: metrics with intervals, thresholds, report.html; or compare two models (configs/eval.yaml)."""
    sys.argv[1:] = _positional(sys.argv[1:])
    _start(_eval_app)
