"""A security-event sink that appends JSON lines to a file (setting `events_file`), for a log
shipper (Vector, Fluent Bit, the Splunk forwarder) to tail. One line per event, the JSON form
of authz.v1.SecurityEvent, written and fsynced per batch off the event loop.

Replays are deduplicated against the newest event ids this process wrote; across a restart a
replayed event can appear twice (at least once, as a log shipper expects), with the same
event_id.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from authz.config import ConfigError, Settings
from authz.events.records import Record
from authz.events.sinks import SinkContext

_REMEMBERED_IDS = 100_000

NAME = "file"
SETTINGS = ("events_file",)  # the settings it reads


def check(settings: Settings) -> None:
    if not settings.events_file:
        raise ConfigError("event_sinks includes 'file': set 'events_file' to the path to append events to")


def build(settings: Settings, context: SinkContext) -> FileSink:
    return FileSink(settings.events_file)


class FileSink:
    name = NAME

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._written: OrderedDict[str, None] = OrderedDict()

    async def write(self, records: Sequence[Record]) -> list[Record]:
        new = [r for r in records if r["event_id"] not in self._written]
        if new:
            data = "".join(r["event"] + "\n" for r in new).encode()
            await asyncio.to_thread(self._append, data)  # OSError: the writer spools and retries
            for r in new:
                self._written[r["event_id"]] = None
            while len(self._written) > _REMEMBERED_IDS:
                self._written.popitem(last=False)
        return new

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    async def close(self) -> None:
        """Each batch opens and closes the file (so log rotation by rename just works)."""
