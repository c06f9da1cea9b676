"""Sweeps: the search space, bad input, real tiny Optuna studies (SQLite and PostgreSQL), pruning,
several workers on one study, a killed worker, and Hydra multirun with the joblib launcher."""

from __future__ import annotations

import csv
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from helpers import WANDB_KEY, cli, run_cli
from helpers.wandb_records import OfflineRun, offline_runs
from optuna.trial import TrialState

from detector.config import compose, passthrough_overrides
from detector.errors import DetectorError
from detector.sweep import run as sweep
from detector.sweep import space as search_space

TINY = ["debug=smoke", "train.epochs=1"]  # 64 px, batch 16, one epoch: ~3 s a trial on 2 cores
QUIET = ["sweep.plots=false", "sweep.compare=false"]  # for the studies that check neither (~6 s a worker)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SWEEP = "import sys; from detector.cli import sweep; sys.argv[0] = 'detector-sweep'; sweep()"


def _args(runs: Path, *extra: str) -> list[str]:
    return [*TINY, f"paths.runs_dir={runs}", "sweep.study_name=t", *extra]


def _popen(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-c", SWEEP, *args], stdout=out, stderr=subprocess.STDOUT)


def _in_process(runs: Path, *extra: str) -> tuple[float | None, Path]:
    args = passthrough_overrides(_args(runs, *extra))
    cfg = compose("sweep", args)
    return sweep.run(cfg, Path(cfg.sweep.dir), sweep.train_overrides(args)), Path(cfg.sweep.dir)


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="t", storage=url)


# --- the search space, no training ------------------------------------------------------------


def test_space_forms_and_overrides():
    params = search_space.parse(
        {
            "train.lr0": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "train.imgsz": {"type": "int", "low": 64, "high": 128, "step": 32},
            "finetune.freeze": ["none", 6, "backbone"],
            "augment": ["none", "light"],
            "sharpen": {"choices": [0.1, 0.2], "optional": True},
        }
    )
    assert [(p.key, p.kind) for p in params] == [
        ("train.lr0", "float"), ("train.imgsz", "int"), ("finetune.freeze", "categorical"), ("augment", "categorical"),
        ("sharpen", "categorical"),
    ]  # fmt: skip
    assert params[0].override(0.00316) == "train.lr0=0.00316"
    assert params[2].override(6) == "finetune.freeze=6" and params[2].edges() == ["none", 6, "backbone"]
    assert params[4].optional and params[1].edges() == [64, 128]
    base = compose("train", TINY)
    kept, notes = search_space.resolve(params, base)
    assert [p.key for p in kept] == [
        "train.lr0",
        "train.imgsz",
        "finetune.freeze",
        "augment",
    ]  # sharpen: absent
    assert notes == ["hparams_search.space.sharpen skipped: it is optional and not in this config."]
    assert kept[3].group and kept[3].override("light") == "augment=light"  # a group choice picks its option
    model = search_space.resolve(search_space.parse({"model": ["yolo26n", "yolo26s"]}), base)[0][0]
    assert model.group and model.override("yolo26s") == "model=yolo26s"


def test_sweep_config_keeps_every_train_override():
    args = passthrough_overrides(["data=solar_pv", "model=yolo26s", "train.lr0=0.01", "sweep.n_trials=3"])
    cfg = compose("sweep", args)
    assert (cfg.data.name, cfg.model.arch, cfg.train.lr0, cfg.sweep.n_trials) == (
        "solar_pv",
        "yolo26s.yaml",
        0.01,
        3,
    )
    assert (
        sweep.train_overrides([*args, "hparams_search=solar_panels", "++hparams_search.pruner=none"])
        == args[:3]
    )
    for option in ("default", "solar_panels"):  # every option resolves against the sample config
        params, base, _ = sweep.prepare(compose("sweep", [*TINY, f"hparams_search={option}"]), TINY)
        assert params and "train.optimizer=AdamW" in base


SPACE_ERRORS = {
    "empty range": ({"train.lr0": {"type": "float", "low": 0.01, "high": 0.01}}, "empty range"),
    "inverted range": (
        {"train.lr0": {"type": "float", "low": 0.1, "high": 0.01}},
        "inverted range low=0.1 > high=0.01",
    ),
    "log of zero": (
        {"train.lr0": {"type": "float", "low": 0, "high": 0.1, "log": True}},
        "log: true needs low > 0",
    ),
    "float for int": ({"train.imgsz": {"type": "int", "low": 64.5, "high": 128}}, "must be an integer"),
    "unknown type": ({"train.lr0": {"type": "loguniform", "low": 1, "high": 2}}, "type='loguniform'"),
    "unknown field": ({"train.lr0": {"type": "float", "lo": 1, "high": 2}}, "unknown field(s) ['lo']"),
    "empty choices": ({"finetune.freeze": []}, "choices must be a non-empty list"),
    "empty space": ({}, "hparams_search.space is empty"),
}


@pytest.mark.parametrize("case", SPACE_ERRORS, ids=list(SPACE_ERRORS))
def test_bad_space_is_refused(case):
    space, message = SPACE_ERRORS[case]
    with pytest.raises(DetectorError, match=None) as e:
        search_space.parse(space)
    assert message in str(e.value)


def _direction_clash(runs: Path) -> list[str]:
    (runs / "sweeps" / "t").mkdir(parents=True)
    optuna.create_study(study_name="t", storage=f"sqlite:///{runs}/sweeps/t/study.db", direction="minimize")
    return []


BAD = {
    "unknown key": (["++hparams_search.space={train.lr00: [0.1, 0.01]}"], "train.lr00: not an Ultralytics key (did you mean train.lr0?)"),
    "unknown config key": (["++hparams_search.space={finetune.frozen: [none]}"], "(did you mean finetune.freeze"),
    "group option": (["++hparams_search.space={model: [yolo26n, yolo99]}"], "['yolo99'] not options of the model group"),
    "inverted range": (["++hparams_search.space={train.lr0: {type: float, low: 0.1, high: 0.001}}"], "inverted range"),
    "unknown sampler": (["hparams_search.sampler=bayes"], "hparams_search.sampler='bayes' is unknown"),
    "unknown pruner": (["hparams_search.pruner=early"], "hparams_search.pruner='early' is unknown"),
    "pruner arguments": (["++hparams_search.pruner_args={patience: 2}"], "do not fit the median pruner"),
    "unreachable storage": (["sweep.storage=postgresql://u:secret@127.0.0.1:9/db"], "Cannot open the study storage postgresql://u:***@127.0.0.1:9/db"),
    "unknown database": (["sweep.storage=nosuchdb://x/y"], "Cannot open the study storage nosuchdb://x/y"),
    "direction clash": (_direction_clash, "already exists in this storage with direction minimize"),
    "lr0 with optimizer auto": (["hparams_search.overrides=[]", "train.optimizer=auto"], "with train.optimizer=auto has no effect"),
    "no trials": (["sweep.n_trials=0"], "sweep.n_trials=0 must be"),
    "several devices (DDP)": (["train.device=[0,1]"], "detector-train runs on one device"),
    "bad train value": (["train.batch=big"], "train.batch: 'batch=big' is of invalid type str"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_fails_before_any_trial(case, tmp_path):
    extra, message = BAD[case]
    runs = tmp_path / "runs"
    if callable(extra):
        extra = extra(runs)
    with pytest.raises(DetectorError) as e:
        _in_process(runs, *extra)
    assert message in str(e.value)
    assert not (runs / "sweeps" / "t" / "trials").exists(), "a trial started"
    assert "secret" not in str(e.value)


def test_cli_error_exits_2_and_leaves_no_folder(tmp_path):
    res = cli("detector-sweep", *_args(tmp_path / "runs", "hparams_search.sampler=bayes"))
    assert res.returncode == 2, res.stderr[-1500:]
    assert "error: hparams_search.sampler='bayes' is unknown" in res.stderr
    assert not (tmp_path / "runs" / "sweeps" / "t").exists()


# --- real tiny studies -----------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_writes_results_and_best_command_reproduces(tmp_path):
    runs = tmp_path / "runs"
    res = cli("detector-sweep", *_args(runs, "sweep.n_trials=2"))  # real processes: the tests below
    assert res.returncode == 0, res.stderr[-3000:]
    out = Path(res.last_line)
    assert out == runs / "sweeps" / "t"
    best = yaml.safe_load((out / "best.yaml").read_text())
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["COMPLETE"] * 2 and {r["number"] for r in rows} == {"0", "1"}
    assert {"train.lr0", "finetune.freeze", "epochs", "run_dir"} <= set(rows[0])
    for name in ("history", "importances", "parallel_coordinates", "intermediate_values"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 10_000, name
    for r in rows:
        assert json.loads((Path(r["run_dir"]) / "summary.json").read_text())["status"] == "complete"
    study = _study(best["storage"])
    assert best["value"] == study.best_value and best["params"] == study.best_params
    assert study.user_attrs["workers"] == 1 and study.user_attrs["storage"] == f"sqlite:///{out}/study.db"
    # whether the best trial stands out from the runner-up: a paired bootstrap on val (which chose them)
    v = best["versus_runner_up"]
    assert (v["best"], v["split"]) == (best["trial"], "val") and "optimistic" in v["note"]
    assert v["verdict"].startswith(("distinguishable", "not distinguishable", "the runner-up"))
    assert f"against the runner-up (trial {v['runner_up']})" in res.stdout

    # The command in best.yaml, run as a user would (detector-train is this interpreter here).
    cmd = shlex.split(best["command"])
    assert cmd[0] == "detector-train" and f"train.lr0={best['params']['train.lr0']!r}" in cmd
    again = cli("detector-train", *cmd[1:])
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((Path(again.last_line) / "summary.json").read_text())
    trial = json.loads((Path(best["run_dir"]) / "summary.json").read_text())
    assert summary["config"]["train"] == trial["config"]["train"]
    assert summary["config"]["finetune"] == trial["config"]["finetune"]
    assert summary["metrics"]["mAP50-95"] == pytest.approx(best["value"], rel=1e-6)


@pytest.mark.slow
def test_two_tracked_workers_share_one_postgres_study_prune_and_write_no_secret(
    tmp_path, postgres_url, monkeypatch
):
    """Two workers on one PostgreSQL study, with a password in the URL and a W&B API key: the live
    processes use both, and no file they write holds either (W&B records offline here). A pruner that
    must prune (mAP50-95 never exceeds 1, so a threshold of 2 prunes every trial at its first report)
    stops each 3-epoch trial after one epoch, and W&B groups the trials by study."""
    password = postgres_url.split(":")[2].split("@")[0]
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)  # inherited by the workers
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_DATA_DIR", raising=False)
    args = _args(
        tmp_path / "runs", "sweep.n_trials=2", f"sweep.storage={postgres_url}", *QUIET, "train.epochs=3",
        "hparams_search.pruner=threshold", "++hparams_search.pruner_args={lower: 2.0}",
        "logger=wandb", "logger.table_images=2",
    )  # fmt: skip
    workers = [_popen(args, tmp_path / f"worker{i}.log") for i in range(2)]
    for i, w in enumerate(workers):
        assert w.wait(timeout=400) == 0, (tmp_path / f"worker{i}.log").read_text()[-3000:]
    study = _study(postgres_url)  # two trials: a trial each, or both in the first worker to start
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert sorted(t.number for t in study.trials) == [0, 1]
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 2, "two trials drew the same point"
    assert study.user_attrs["workers"] == 2
    assert study.user_attrs["storage"] == postgres_url.replace(f":{password}@", ":***@")
    for t in study.trials:
        assert t.user_attrs["epochs"] == 1 and list(t.intermediate_values) == [0]
        results = (Path(t.user_attrs["run_dir"]) / "results.csv").read_text().splitlines()
        assert len(results) == 2  # header + 1 epoch
    out = tmp_path / "runs" / "sweeps" / "t"
    assert not (out / "best.yaml").exists()
    runs = [OfflineRun.load(f) for f in offline_runs(out / "trials")]
    assert len(runs) == 2 and {r.run.run_group for r in runs} == {"t"}  # one W&B run per trial

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "summary.json" for p in written) and any("offline-run-" in str(p) for p in written)
    logs = [p for p in written if p.suffix == ".wandb"]  # W&B's own record: config, the command, history
    assert len(logs) == 2 and all(b"postgresql://detector_test:***@" in p.read_bytes() for p in logs)
    leaks = [
        p for p in written if password.encode() in p.read_bytes() or WANDB_KEY.encode() in p.read_bytes()
    ]
    assert leaks == []
    hydra_files = [p for p in written if p.parent.name == ".hydra" and "storage" in p.read_text()]
    assert hydra_files and all("***@127.0.0.1" in p.read_text() for p in hydra_files)


@pytest.mark.slow
def test_killed_worker_loses_no_finished_trial_and_a_restart_finishes(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    args = _args(tmp_path / "runs", "sweep.n_trials=2", f"sweep.storage={url}", "train.epochs=2", *QUIET)
    args += ["sweep.heartbeat_s=1", "sweep.grace_s=3"]
    worker = _popen(args, tmp_path / "first.log")
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it while its second trial trains
        time.sleep(1)
        try:
            trials = _study(url).trials
        except KeyError:  # the study is not created yet
            trials = []
        if [t.state for t in trials] == [TrialState.COMPLETE, TrialState.RUNNING]:
            break
        assert worker.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    time.sleep(2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    first = _study(url).trials
    assert [t.state for t in first] == [TrialState.COMPLETE, TrialState.RUNNING]

    again = cli("detector-sweep", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = _study(url).trials
    assert trials[0].value == first[0].value and trials[0].state == TrialState.COMPLETE
    assert trials[1].state == TrialState.FAIL  # the killed trial, failed once its heartbeat stopped ...
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert retried and retried[0].params == first[1].params  # ... and run again with the same point
    assert sum(t.state in FINISHED for t in trials) == 2


@pytest.mark.slow
def test_multirun_grid_with_joblib_writes_a_summary_table_and_one_wandb_group(tmp_path):
    res = run_cli(
        "detector-train",
        "-m", *TINY, "train.lr0=0.001,0.01", "train.optimizer=AdamW", f"paths.runs_dir={tmp_path}",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "logger=wandb", "logger.table_images=0",
        env={"WANDB_MODE": "offline", "WANDB_DATA_DIR": None},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    (multirun,) = (tmp_path / "multirun").iterdir()
    rows = list(csv.DictReader((multirun / "summary.csv").open()))
    assert [(r["job"], r["status"]) for r in rows] == [("0", "complete"), ("1", "complete")]
    assert "train.lr0=0.001" in rows[0]["overrides"] and "train.lr0=0.01" in rows[1]["overrides"]
    for r in rows:
        summary = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        assert float(r["mAP50-95"]) == summary["metrics"]["mAP50-95"]
    assert "job  status    overrides" in res.stdout
    # one W&B run per job (each in its own joblib process), grouped by the multirun folder
    recs = [OfflineRun.load(f) for f in offline_runs(tmp_path)]
    assert len(recs) == 2 and {r.run.run_group for r in recs} == {str(multirun.relative_to(tmp_path))}
    assert len({r.run.run_id for r in recs}) == 2
    assert sorted(r.config["train"]["lr0"] for r in recs) == [0.001, 0.01]
