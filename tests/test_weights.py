"""Checkpoint resolution: explicit path, project cache, offline fallback, clear errors."""

from __future__ import annotations

import pytest

from detector import io
from detector.errors import DetectorError
from detector.train import weights


def test_explicit_path_wins(tmp_path):
    ckpt = tmp_path / "mine.pt"
    ckpt.write_bytes(b"x")
    p = weights.resolve(str(ckpt), tmp_path / "cache")
    assert (p.path, p.source) == (ckpt, "explicit path")


def test_cache_folder_is_searched_for_bare_names(tmp_path):
    (tmp_path / "yolo26s.pt").write_bytes(b"x")
    p = weights.resolve("yolo26s.pt", tmp_path)
    assert (p.path, p.source) == (tmp_path / "yolo26s.pt", "weights cache")


def test_missing_offline_falls_back_with_banner(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "true")
    p = weights.resolve("yolo26x.pt", tmp_path)
    assert not p.found and p.source == "missing"
    banner = weights.missing_banner(p, tmp_path)
    assert "yolo26x.pt" in banner and str(tmp_path) in banner and "RANDOM" in banner


def test_require_pretrained_turns_it_into_an_error(tmp_path):
    with pytest.raises(
        DetectorError, match=rf"yolo26x.pt is not available offline. Put yolo26x.pt in {tmp_path}"
    ):
        weights.resolve("yolo26x.pt", tmp_path, require=True)


def test_missing_explicit_path_is_an_error(tmp_path):
    with pytest.raises(DetectorError, match="Checkpoint not found"):
        weights.resolve(str(tmp_path / "nope" / "best.pt"), tmp_path)


def test_null_means_random_init_on_purpose(tmp_path):
    p = weights.resolve(None, tmp_path)
    assert not p.found and p.source == "none" and p.requested is None


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "fake.pt"
    bad.write_text("this is not a checkpoint")
    with pytest.raises(DetectorError, match="is not a loadable Ultralytics checkpoint"):
        weights.load_checkpoint(bad)


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    f = tmp_path / "f.bin"
    f.write_bytes(b"abc" * 1000)
    assert io.sha256(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
