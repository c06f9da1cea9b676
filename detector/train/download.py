"""Fetch a checkpoint over HTTP(S) into the weights cache, bounded in time, checked before it is kept.

Where from: ``$DETECTOR_WEIGHTS_URL/<name>`` when that mirror is set (a site without internet access
serves its own copies), else Ultralytics' release assets. Every step is bounded: connecting
(name lookup included) must finish within the timeout, and so must every read, so a host that is
unreachable, refuses, or stalls mid-file ends the attempt in at most that long. The file lands in a
temporary name beside the cache entry; it is kept (renamed into place) only once its sha256 matches
the one the project knows for that name, if it knows one. Nothing half-written is ever left.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from detector.errors import DetectorError
from detector.io import sha256, within

# Ultralytics' own release (ultralytics/utils/downloads.py attempt_download_asset, 8.4.190).
OFFICIAL = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
TIMEOUT_S = 10.0  # connect, and each read: offline, a download gives up within this
CHUNK = 1 << 20


class DownloadError(DetectorError):
    """A checkpoint could not be fetched; the message says from where and why."""


def source() -> tuple[str, str]:
    """(base URL, what it is): the mirror in ``$DETECTOR_WEIGHTS_URL``, else Ultralytics' release assets."""
    mirror = os.environ.get("DETECTOR_WEIGHTS_URL", "").strip()
    if mirror:
        return mirror.rstrip("/"), "mirror ($DETECTOR_WEIGHTS_URL)"
    return OFFICIAL, "Ultralytics' release assets"


def timeout_s() -> float:
    """The bound on connecting and on each read (``$DETECTOR_DOWNLOAD_TIMEOUT``, seconds; default 10)."""
    try:
        return float(os.environ.get("DETECTOR_DOWNLOAD_TIMEOUT") or TIMEOUT_S)
    except ValueError as e:
        raise DetectorError(
            f"DETECTOR_DOWNLOAD_TIMEOUT={os.environ['DETECTOR_DOWNLOAD_TIMEOUT']!r} is not a number of seconds."
        ) from e


def _open(url: str, timeout: float):
    """``urlopen(url)``, connected within ``timeout`` seconds in all (the name lookup included)."""
    return within(timeout, lambda: urllib.request.urlopen(url, timeout=timeout))


def _reason(e: BaseException) -> str:
    """What went wrong, in a few words."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    cause = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(cause, TimeoutError):
        return f"no answer within the {timeout_s():g} s bound"
    if isinstance(e, urllib.error.URLError):
        return f"cannot connect ({cause})"
    return f"{type(e).__name__}: {e}"


def fetch(name: str, cache_dir: Path, known: dict[str, str]) -> tuple[Path, str]:
    """Download ``name`` into ``cache_dir``; returns (the cached file, the URL it came from).

    Args:
        name: A checkpoint file name, e.g. ``yolo26s.pt``.
        cache_dir: The weights cache (``paths.weights_dir``); created if needed.
        known: Known sha256 per file name; a download of a known name must match.

    Raises:
        DownloadError: The cache is not writable, the source fails, stalls or answers an error, or the
            file's sha256 is not the known one (nothing is cached then).
    """
    base, what = source()
    if not base.startswith(("http://", "https://")):
        raise DownloadError(f"DETECTOR_WEIGHTS_URL={base!r} must be an http:// or https:// URL")
    _require_writable(cache_dir)
    url = f"{base}/{name}"
    tmp = cache_dir / f".{name}.{os.getpid()}.part"
    try:
        _copy(url, tmp, timeout_s())
        digest = sha256(tmp)
        if name in known and digest != known[name]:
            raise DownloadError(
                f"{url} sent a file whose sha256 {digest[:16]}... is not the known {known[name][:16]}... of {name}: "
                "refused, nothing was cached (check the mirror's copy)"
            )
        os.replace(tmp, cache_dir / name)
    except DownloadError:
        raise
    except (OSError, ValueError) as e:
        raise DownloadError(f"downloading {name} from {what} ({url}) failed: {_reason(e)}") from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return cache_dir / name, url


def _require_writable(folder: Path) -> None:
    """Refuse a cache folder that cannot be written (checked before connecting; nothing is created)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise DownloadError(
            f"the weights cache {folder} is not writable ({existing} is not a writable folder): set "
            "paths.weights_dir=<a writable folder>, or pass model.weights=/path/to/file.pt"
        )


def _copy(url: str, dst: Path, timeout: float) -> None:
    """Stream ``url`` into ``dst`` (its folder created once connected); each read waits at most ``timeout`` s."""
    with _open(url, timeout) as response:
        dst.parent.mkdir(parents=True, exist_ok=True)
        _stream(response, dst)


def _stream(response, dst: Path) -> None:
    with open(dst, "wb") as out:
        expected = response.headers.get("Content-Length")
        while block := response.read(CHUNK):
            out.write(block)
        if expected is not None and out.tell() != int(expected):
            raise ValueError(f"the connection closed after {out.tell()} of {expected} bytes")
