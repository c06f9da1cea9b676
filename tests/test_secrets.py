"""Secrets are masked wherever they would be written. That a real tracked sweep with a password in its
storage URL and a W&B API key leaves neither on disk is checked by test_sweep's two-worker PostgreSQL
test, which runs that sweep anyway."""

from __future__ import annotations

from helpers import WANDB_KEY as KEY

from detector import redact


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
