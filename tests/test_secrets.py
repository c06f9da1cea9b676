"""Secrets never reach disk: a sweep with a password in its storage URL and a W&B API key leaves neither
in any file it writes, while the live process still uses both."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from helpers import cli

from detector import redact

KEY = "wandbkey0123456789abcdef0123456789abcdef"  # a W&B API key's shape (40 characters)


def test_passwords_and_keys_are_masked_in_text_and_structures(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    line = f"detector-sweep sweep.storage=postgresql://u:hunter22@db:5432/s WANDB_API_KEY={KEY} token=abc"
    assert (
        redact.text(line)
        == "detector-sweep sweep.storage=postgresql://u:***@db:5432/s WANDB_API_KEY=*** token=***"
    )
    doc = {
        "sweep": {"storage": "mysql://a:b@h/d"},
        "logger": {"init": {"api_key": "k", "tags": ["x"]}},
        "n": 3,
    }
    assert redact.value(doc) == {
        "sweep": {"storage": "mysql://a:***@h/d"},
        "logger": {"init": {"api_key": "***", "tags": ["x"]}},
        "n": 3,
    }
    assert (
        redact.text("http://plain.example/weights and sqlite:////tmp/x.db")
        == "http://plain.example/weights and sqlite:////tmp/x.db"
    )


@pytest.mark.slow
def test_a_tracked_sweep_writes_no_password_and_no_api_key(tmp_path, postgres_url, monkeypatch):
    password = postgres_url.split(":")[2].split("@")[0]
    monkeypatch.setenv("WANDB_API_KEY", KEY)  # W&B cannot be reached here: the runs are recorded offline
    monkeypatch.delenv("WANDB_MODE", raising=False)
    args = ["debug=smoke", "sweep.study_name=s", "sweep.n_trials=1", f"sweep.storage={postgres_url}"]
    args += ["logger=wandb", "logger.table_images=2"]
    res = cli("detector-sweep", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(optuna.load_study(study_name="s", storage=postgres_url).trials) == 1  # the live URL worked
    written = [p for p in Path(tmp_path).rglob("*") if p.is_file()]
    assert any(p.name == "summary.json" for p in written) and any("offline-run-" in str(p) for p in written)
    logs = [
        p for p in written if p.suffix == ".wandb"
    ]  # W&B's own record: config, metadata (the command), history
    assert logs and all(b"postgresql://detector_test:***@" in p.read_bytes() for p in logs)
    leaks = [str(p) for p in written if password.encode() in p.read_bytes() or KEY.encode() in p.read_bytes()]
    assert leaks == []
    hydra_files = [p for p in written if p.parent.name == ".hydra"]
    assert hydra_files and all(
        "***@127.0.0.1" in p.read_text() for p in hydra_files if "storage" in p.read_text()
    )
