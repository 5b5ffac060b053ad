"""The disk spool: security events the sink could not take yet, kept until it can.

Append-only JSON-lines files, one per process, each held under an exclusive flock; a file whose
lock can be taken belongs to a process that died, and is replayed (then removed) first, so a
killed process loses at most what was still queued in memory.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import structlog

from authz import metrics
from authz.events.records import Record

log = structlog.get_logger("authz.events.spool")


class Spool:
    """Append-only JSON-lines files holding events Redis could not take yet.

    Each process appends to its own file, held under an exclusive flock; a file whose lock
    can be taken belongs to a process that died, and is replayed (then removed) first.
    """

    def __init__(self, directory: str | Path, max_bytes: int, rescan_s: float = 1.0):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.rescan_s = rescan_s
        self._file: IO[bytes] | None = None
        self._offset = 0  # bytes of our own file already replayed
        self._claimed: dict[Path, IO[bytes]] = {}  # dead processes' spools we hold the lock of
        self._scanned_at = float("-inf")

    @property
    def _own(self) -> IO[bytes]:
        if self._file is None:
            raise RuntimeError("the spool is not open: call open() first")
        return self._file

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"events-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._file = open(path, "a+b")  # noqa: SIM115 - held (and locked) until close()
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self, remove_if_empty: bool = True) -> None:
        for f in self._claimed.values():
            f.close()
        self._claimed.clear()
        if self._file is None:
            return
        path = Path(self._file.name)
        empty = self._size() <= self._offset
        self._file.close()
        self._file = None
        if remove_if_empty and empty:
            path.unlink(missing_ok=True)

    def _size(self) -> int:
        return os.fstat(self._own.fileno()).st_size

    def _claim_orphans(self) -> None:
        """Lock (and so own) the spools of dead processes; looked for every `rescan_s`."""
        now = time.monotonic()
        if now - self._scanned_at < self.rescan_s:
            return
        self._scanned_at = now
        own = Path(self._own.name).name
        for path in sorted(self.directory.glob("events-*.jsonl")):
            if path.name == own or path in self._claimed:
                continue
            try:
                f = open(path, "rb")  # noqa: SIM115 - held (and locked) until done()
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except FileNotFoundError:
                continue
            except BlockingIOError:
                f.close()  # a live process owns it
                continue
            self._claimed[path] = f

    def pending(self) -> bool:
        self._claim_orphans()
        return self._size() > self._offset or bool(self._claimed)

    def append(self, records: list[dict[str, str]]) -> int:
        """Write records durably; returns how many fit under max_bytes (the rest are dropped)."""
        data, kept = bytearray(), 0
        room = self.max_bytes - self._size()
        for r in records:
            line = (json.dumps(r, separators=(",", ":")) + "\n").encode()
            if len(data) + len(line) > room:
                break
            data += line
            kept += 1
        if data:
            self._own.write(data)
            self._own.flush()
            os.fsync(self._own.fileno())
        return kept

    def orphan_batches(self) -> Iterator[tuple[Path, list[Record]]]:
        """(path, records) for each claimed spool of a dead process; call done(path) after."""
        for path, f in list(self._claimed.items()):
            f.seek(0)
            yield path, _parse_lines(f.read(), path)

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._claimed.pop(path).close()

    def own_batch(self, limit: int) -> tuple[list[dict[str, str]], int]:
        """Up to `limit` records from our own file after what was replayed; (records, end offset)."""
        self._own.seek(self._offset)
        records, end = [], self._offset
        for line in self._own:
            if not line.endswith(b"\n"):
                break  # being written
            end += len(line)
            records.extend(_parse_lines(line, Path(self._own.name)))
            if len(records) >= limit:
                break
        self._own.seek(0, os.SEEK_END)
        return records, end

    def consumed(self, end: int) -> None:
        self._offset = end
        if self._offset >= self._size():
            self._own.truncate(0)
            self._offset = 0


def _parse_lines(data: bytes, path: Path) -> list[dict[str, str]]:
    records = []
    for line in data.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            # Only a write cut by a crash can leave a partial line; count it, keep the rest.
            metrics.EVENTS["dropped"].inc()
            log.error("security_event_spool_line_unreadable", spool=str(path), bytes=len(line))
    return records
