"""Read an offline W&B run's ``run-<id>.wandb`` file with wandb's own protobuf schema.

wandb 0.31 ships no Python reader (``wandb.sdk.internal.datastore`` is gone), so this unpacks
the file's framing, LevelDB's log format (a 7-byte ``:W&B`` header, then 32 KiB blocks of
``crc32 | length | type | data`` chunks), and parses each record as
``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[pb.Record]:
    """Every record of a ``.wandb`` file, in order; checksums are verified."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out, pos, chunks = [], HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # block trailer: too short for a header, zero-filled
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        assert zlib.crc32(bytes([kind]) + chunk) == crc, f"bad checksum at byte {pos} of {path}"
        chunks = chunk if kind in (FULL, FIRST) else chunks + chunk
        if kind in (FULL, LAST):
            rec = pb.Record()
            rec.ParseFromString(chunks)
            out.append(rec)
    return out


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class OfflineRun:
    """What an offline run holds, folded from its records."""

    run: pb.RunRecord | None = None
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    artifacts: list[pb.ArtifactRecord] = field(default_factory=list)
    exit_code: int | None = None

    @classmethod
    def load(cls, run_folder: Path) -> OfflineRun:
        """Fold the records of ``run_folder/run-*.wandb``."""
        (path,) = run_folder.glob("run-*.wandb")
        r = cls()
        for rec in records(path):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                r.run = rec.run
                r.config.update({_key(i): json.loads(i.value_json) for i in rec.run.config.update})
            elif kind == "config":
                r.config.update({_key(i): json.loads(i.value_json) for i in rec.config.update})
            elif kind == "history":
                r.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
            elif kind == "summary":
                r.summary.update({_key(i): json.loads(i.value_json) for i in rec.summary.update})
            elif kind == "artifact":
                r.artifacts.append(rec.artifact)
            elif kind == "exit":
                r.exit_code = rec.exit.exit_code
        return r

    def artifact(self, type: str, name: str | None = None) -> pb.ArtifactRecord:
        """The one artifact of ``type`` (and ``name``, where given)."""
        (art,) = [a for a in self.artifacts if a.type == type and name in (None, a.name)]
        return art


def offline_runs(*roots: Path) -> list[Path]:
    """Every ``offline-run-*`` folder under ``roots``."""
    return sorted(p for root in roots if root.exists() for p in root.rglob("offline-run-*") if p.is_dir())
