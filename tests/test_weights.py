"""Checkpoint resolution: explicit path, weights cache, bundled, bounded download; clear errors otherwise.

Downloads are tested against a real HTTP server on 127.0.0.1 (helpers.http_server), as a site mirror
would serve them: a good file, a 404, a mirror that stalls mid-file, and a file whose sha256 is wrong.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from helpers import cli, files_under, http_server

from detector import io
from detector.errors import DetectorError
from detector.train import download, weights

BUNDLED_SHA = "55ed65c56c91713d23e8402371c6c49a6fd84f257f7dce452e8d70e41dcbe152"


@pytest.fixture
def online(monkeypatch):
    """Downloads allowed (the tests switch them off by default), bounded at 2 s to keep the stall test short."""
    monkeypatch.delenv("DETECTOR_OFFLINE", raising=False)
    monkeypatch.setenv("DETECTOR_DOWNLOAD_TIMEOUT", "2")


def test_explicit_path_wins(tmp_path):
    ckpt = tmp_path / "mine.pt"
    ckpt.write_bytes(b"x")
    p = weights.resolve(str(ckpt), tmp_path / "cache")
    assert (p.path, p.source, p.sha256) == (ckpt, "explicit path", hashlib.sha256(b"x").hexdigest())


def test_cache_folder_is_searched_for_bare_names_before_the_bundled_copy(tmp_path):
    cache = tmp_path / "weights"
    cache.mkdir()
    (cache / "yolo26s.pt").write_bytes(b"x")
    (cache / "yolo11n-seg.pt").write_bytes(b"mine")
    assert weights.resolve("yolo26s.pt", cache).source == "weights cache"
    p = weights.resolve("yolo11n-seg.pt", cache)
    assert (p.path, p.source) == (cache / "yolo11n-seg.pt", "weights cache")


def test_the_bundled_coco_checkpoint_is_found_offline_with_its_sha256(tmp_path):
    p = weights.resolve("yolo11n-seg.pt", tmp_path / "empty-cache")
    assert (p.source, p.path, p.sha256) == ("bundled", weights.BUNDLED / "yolo11n-seg.pt", BUNDLED_SHA)
    assert weights.known_sha256() == {"yolo11n-seg.pt": BUNDLED_SHA}
    assert not (tmp_path / "empty-cache").exists()  # nothing was written


def test_a_damaged_bundled_copy_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "bundled"
    fake.mkdir()
    (fake / "yolo11n-seg.pt").write_bytes(b"not the COCO checkpoint")
    (fake / "SHA256SUMS").write_text(f"{BUNDLED_SHA}  yolo11n-seg.pt\n")
    monkeypatch.setattr(weights, "BUNDLED", fake)
    with pytest.raises(DetectorError, match=r"does not match its sha256 .* Reinstall detector"):
        weights.resolve("yolo11n-seg.pt", tmp_path / "cache")


def test_an_unknown_name_offline_is_an_error_naming_every_fix(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(DetectorError) as e:
        weights.resolve("yolo26x.pt", tmp_path / "w")  # DETECTOR_OFFLINE=1 in the tests
    message = str(e.value)
    assert "yolo26x.pt is not available" in message and "downloads are off" in message
    assert f"put yolo26x.pt in {tmp_path / 'w'}/" in message and "DETECTOR_WEIGHTS_URL" in message
    assert "model=yolo11n_coco" in message and "model.weights=null" in message
    assert time.monotonic() - t0 < 5


def test_missing_explicit_path_is_an_error(tmp_path):
    with pytest.raises(DetectorError, match="Checkpoint not found"):
        weights.resolve(str(tmp_path / "nope" / "best.pt"), tmp_path)


def test_null_means_random_init_on_purpose(tmp_path):
    p = weights.resolve(None, tmp_path)
    assert not p.found and p.source == "none" and p.requested is None


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "fake.pt"
    bad.write_text("this is not a checkpoint")
    with pytest.raises(DetectorError, match="cannot be loaded: it is empty or not a PyTorch checkpoint"):
        weights.load_checkpoint(bad)


@pytest.mark.slow
def test_the_pre_flight_and_the_transfer_load_a_checkpoint_once(tiny_ckpt, tmp_path):
    import os
    import shutil

    from detector.safeload import LOADS

    ckpt = tmp_path / "c.pt"
    shutil.copy(tiny_ckpt, ckpt)
    loads = lambda: sum(p == str(ckpt.resolve()) or p == str(ckpt) for p, _ in LOADS)  # noqa: E731
    first = weights.load_checkpoint(ckpt)
    assert weights.load_checkpoint(ckpt) is first and loads() == 1
    st = ckpt.stat()
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the file changed: read again
    assert weights.load_checkpoint(ckpt) is not first and loads() == 2


def test_sha256_matches_hashlib(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc" * 1000)
    assert io.sha256(f) == hashlib.sha256(b"abc" * 1000).hexdigest()


# --- downloads, from a real server on 127.0.0.1 ----------------------------------------------------------


def test_a_mirror_download_lands_in_the_cache_with_its_sha256(tmp_path, online, monkeypatch):
    payload = b"pretend checkpoint bytes" * 1000
    with http_server({"yolo26n.pt": payload}) as url:
        monkeypatch.setenv("DETECTOR_WEIGHTS_URL", url + "/")
        p = weights.resolve("yolo26n.pt", tmp_path / "w")
    assert (p.source, p.url, p.path) == ("download", f"{url}/yolo26n.pt", tmp_path / "w" / "yolo26n.pt")
    assert p.sha256 == hashlib.sha256(payload).hexdigest() and p.path.read_bytes() == payload
    assert files_under(tmp_path / "w") == [p.path.relative_to(tmp_path / "w")]  # no partial file left
    assert weights.resolve("yolo26n.pt", tmp_path / "w").source == "weights cache"  # the second time


@pytest.mark.parametrize(
    ("files", "stall", "reason"),
    [
        ({}, (), "HTTP 404"),
        ({"yolo26n.pt": b"x" * 10_000}, ("yolo26n.pt",), "no answer within the 2 s bound"),
    ],
    ids=["404", "stalls"],
)
def test_a_failing_mirror_is_an_error_in_seconds_and_caches_nothing(
    files, stall, reason, tmp_path, online, monkeypatch
):
    with http_server(files, stall) as url:
        monkeypatch.setenv("DETECTOR_WEIGHTS_URL", url)
        t0 = time.monotonic()
        with pytest.raises(DetectorError) as e:
            weights.resolve("yolo26n.pt", tmp_path / "w")
        seconds = time.monotonic() - t0
    assert reason in str(e.value) and f"{url}/yolo26n.pt" in str(e.value)
    assert seconds < 6, f"the download bound did not hold: {seconds:.1f} s"
    assert files_under(tmp_path / "w") == []


def test_a_file_with_the_wrong_sha256_is_refused_and_not_cached(tmp_path, online, monkeypatch):
    with http_server({"yolo26n.pt": b"tampered"}) as url:
        monkeypatch.setenv("DETECTOR_WEIGHTS_URL", url)
        with pytest.raises(download.DownloadError, match=r"is not the known .* refused, nothing was cached"):
            download.fetch("yolo26n.pt", tmp_path / "w", known={"yolo26n.pt": "0" * 64})
    assert files_under(tmp_path / "w") == []


def test_an_unwritable_weights_cache_is_named_before_connecting(tmp_path, online):
    (tmp_path / "a_file").write_text("a file, so no folder can be made under it (even as root)")
    with pytest.raises(
        DetectorError, match=r"the weights cache .*a_file/w is not writable.*paths.weights_dir"
    ):
        weights.resolve("yolo26n.pt", tmp_path / "a_file" / "w")


@pytest.mark.parametrize("case", ["offline name", "mirror 404", "mirror stalls", "unwritable cache"])
def test_detector_train_refuses_an_unavailable_checkpoint_with_exit_2_and_no_run_folder(
    case, tmp_path, online, monkeypatch, no_training
):
    (tmp_path / "a_file").write_text("x")
    args = ["model=yolo26s"]
    if case == "offline name":
        monkeypatch.setenv("DETECTOR_OFFLINE", "1")
    if case == "unwritable cache":
        args.append(f"paths.weights_dir={tmp_path / 'a_file' / 'w'}")
    with http_server(
        {"yolo26s.pt": b"y" * 5000}, stall=("yolo26s.pt",) if case == "mirror stalls" else ()
    ) as url:
        monkeypatch.setenv("DETECTOR_WEIGHTS_URL", url + ("/missing" if case == "mirror 404" else ""))
        res = cli("detector-train", *args)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Checkpoint yolo26s.pt is not available" in res.stderr and "model=yolo11n_coco" in res.stderr
    assert files_under(tmp_path / "runs") == []
