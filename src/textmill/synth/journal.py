"""An append-only journal that makes synth resumable: kill it at any point, run it again, and it
continues with no duplicate and no lost row.

The journal is JSONL: a header with the run's config hash, then per chunk its kept rows followed by
a commit record (label, chunk index, how many were generated, what each filter removed). A chunk is
written with one `write` and `fsync`ed, so after a crash the file holds whole committed chunks and
perhaps the torn start of one more, which `open` cuts off. Chunks are seeded by (seed, label,
index), so the cut chunk is regenerated exactly.

Before the output file is renamed into place, an output record stores its SHA-256: the proof that
synth wrote the file at `--out`, which is all that a later run may replace without `--overwrite`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError


@dataclass
class LabelProgress:
    kept: int = 0
    generated: int = 0
    chunks: int = 0
    fruitless: int = 0  # consecutive chunks that kept nothing
    removed: Counter[str] = field(default_factory=Counter)


@dataclass
class JournalState:
    config_hash: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, LabelProgress] = field(default_factory=dict)
    output_sha256: str | None = None  # of the output file synth wrote last

    @property
    def generated(self) -> bool:
        """Whether any chunk was committed."""
        return bool(self.labels)

    def progress(self, label: str) -> LabelProgress:
        return self.labels.setdefault(label, LabelProgress())

    def apply(self, label: str, chunk: int, rows: list[dict[str, Any]], generated: int, removed: dict[str, int]) -> None:
        """Count one committed chunk (replayed from the journal, or just written)."""
        p = self.progress(label)
        p.kept += len(rows)
        p.generated += generated
        p.chunks = chunk + 1
        p.fruitless = 0 if rows else p.fruitless + 1
        p.removed.update(removed)
        self.rows += rows


class Journal:
    def __init__(self, path: Path, config_hash: str) -> None:
        self.path, self.config_hash = path, config_hash

    def read(self) -> JournalState | None:
        """The committed state as the file holds it (None without a journal), touching nothing."""
        if not self.path.exists():
            return None
        return self._parse(self.path.read_bytes())[0]

    def open(self) -> JournalState:
        """The committed state (a new journal gets its header); a torn tail is cut off the file."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append([{"header": {"config_hash": self.config_hash, "version": 1}}])
            return JournalState(self.config_hash)
        data = self.path.read_bytes()
        state, good = self._parse(data)
        if state.config_hash != self.config_hash:
            raise DataError(f"{self.path} belongs to an unfinished synth run with other options or data; rerun "
                            "that command to finish it, or pass --overwrite to start again")
        if good < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)
        return state

    def _parse(self, data: bytes) -> tuple[JournalState, int]:
        """The state of whole committed records, and the byte length they take."""
        state = JournalState()
        good, pending, offset = 0, [], 0
        for line in data.split(b"\n")[:-1]:  # the last piece has no newline: torn or empty
            offset += len(line) + 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if not isinstance(record, dict):
                break
            if "header" in record:
                state.config_hash = record["header"].get("config_hash")
                good = offset
            elif "commit" in record:
                c = record["commit"]
                state.apply(c["label"], c["chunk"], pending, c["generated"], c["removed"])
                pending, good = [], offset
            elif "output" in record:
                state.output_sha256 = record["output"]["sha256"]
                good = offset
            else:
                pending.append(record)
        if good == 0:
            raise DataError(f"{self.path} is not a synth journal; pass --overwrite to start again")
        return state, good

    def record_output(self, sha256: str) -> None:
        self._append([{"output": {"sha256": sha256}}])

    def commit(self, label: str, chunk: int, rows: list[dict[str, Any]], generated: int, removed: dict[str, int]) -> None:
        self._append([*rows, {"commit": {"label": label, "chunk": chunk, "generated": generated, "removed": removed}}])

    def _append(self, records: list[dict[str, Any]]) -> None:
        blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while blob:
                blob = blob[os.write(fd, blob):]
            os.fsync(fd)
        finally:
            os.close(fd)
