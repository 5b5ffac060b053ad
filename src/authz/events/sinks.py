"""Where security events go: the sink interface, and the fan-out to every configured sink.

A sink takes a batch of records (records.record) in order and returns the ones it newly stored
(a replay of an already stored event is not new: listeners such as alerts.triggers.BlockCounter then
never count it twice). A sink that cannot take a batch raises SinkUnavailable (or the
OSError/RedisError underneath); the writer spools the batch and replays it later, so every
sink sees every event at least once, in order. docs/contributing.md has the recipe for a new
sink: add events/<name>_sink.py (file_sink.py and redis_sink.py are the examples) and list it
in events/registry.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from authz.events.records import Record
from authz.state.layout import RedisClient


class SinkUnavailable(Exception):
    """The sink cannot take events now; they are spooled and replayed."""


class EventSink(Protocol):
    name: str  # in logs and the sink setting

    async def write(self, records: Sequence[Record]) -> list[Record]:
        """Store `records` in order; return those not stored before (idempotent per event_id)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What the service hands a sink's `build` besides the settings."""

    redis: RedisClient  # the service's Redis client
    stream: str  # the shared security-event stream's key


class FanOut:
    """Several sinks as one: a batch is stored only when every sink took it (a failing sink
    makes the writer spool and replay the batch to all; each sink deduplicates by event id).
    What counts as new is what the first sink newly stored, so a replay caused by a later
    sink is never counted twice by listeners."""

    def __init__(self, sinks: Sequence[EventSink]):
        if not sinks:
            raise ValueError("at least one event sink is needed")
        self.sinks = tuple(sinks)
        self.name = "+".join(s.name for s in sinks)

    async def write(self, records: Sequence[Record]) -> list[Record]:
        first, *rest = self.sinks
        new = await first.write(records)
        for sink in rest:
            await sink.write(records)
        return new

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.close()
