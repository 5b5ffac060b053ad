"""Where security events go: the sink interface, and the Redis stream sink.

A sink takes a batch of records (events.record) in order and returns the ones it newly stored
(a replay of an already stored event is not new: listeners such as alerts.BlockCounter then
never count it twice). A sink that cannot take a batch raises SinkUnavailable (or the
OSError/RedisError underneath); the writer spools the batch and replays it later, so every
sink sees every event at least once, in order. docs/contributing.md has the recipe for a new
sink (file_sink.py is the example).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from authz.events import Record
from authz.store import RedisClient, hash_tag, org_index


class SinkUnavailable(Exception):
    """The sink cannot take events now; they are spooled and replayed."""


class EventSink(Protocol):
    name: str  # in logs and the sink setting

    async def write(self, records: Sequence[Record]) -> list[Record]:
        """Store `records` in order; return those not stored before (idempotent per event_id)."""
        ...

    async def close(self) -> None: ...


# XADD once per event id: ids are remembered in one set per hour of event time (KEYS[2]),
# which expires `dedupe window + 1 h` after it was created, so a replay within the window
# adds no duplicate and the memory per event is one set member (~60 B), not a key.
# The event also goes to the org's own bounded stream (KEYS[3]), so one org's flood can never
# push another org's events out of its listing; the shared stream stays whole for SIEM export.
# Returns 1 for a new event, 0 for one already written. Every key shares the stream's hash
# slot ({tag}), so the script also runs on Redis Cluster.
_XADD_ONCE = """
if redis.call('SADD', KEYS[2], ARGV[3]) == 1 then
  if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
             'event_id', ARGV[3], 'org_id', ARGV[4], 'event', ARGV[5])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'event', ARGV[5])
  return 1
end
return 0
"""
_DEDUPE_BUCKET_S = 3600


class RedisStreamSink:
    """The shared `events:security` stream (for export) plus each org's bounded listing."""

    name = "redis"

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        *,
        maxlen: int,
        org_maxlen: int = 10_000,
        dedupe_window_s: int = 24 * 3600,
    ):
        self._redis = redis
        self._stream = stream
        self._maxlen = maxlen
        self._org_maxlen = org_maxlen
        self._dedupe_window_s = dedupe_window_s
        self._sha = redis.register_script(_XADD_ONCE).sha
        self._script_loaded = False

    async def write(self, records: Sequence[Record]) -> list[Record]:
        # EVALSHA directly: redis-py's Script in a pipeline sends SCRIPT EXISTS before every
        # batch. The script is loaded once, and again if Redis lost it (restart, failover);
        # replaying the batch then is safe, since the script is idempotent per event id.
        try:
            if not self._script_loaded:
                await self._redis.script_load(_XADD_ONCE)
                self._script_loaded = True
            try:
                added = await self._pipeline(records)
            except NoScriptError:
                await self._redis.script_load(_XADD_ONCE)
                added = await self._pipeline(records)
        except Exception:
            self._script_loaded = False  # a restarted Redis has forgotten it
            raise
        return [r for r, new in zip(records, added, strict=True) if new == 1]

    async def _pipeline(self, records: Sequence[Record]) -> list[int]:
        tag = hash_tag(self._stream)
        now = int(time.time())
        calls = []
        for r in records:
            seen = f"{tag}:seen:{int(r.get('created_s') or now) // _DEDUPE_BUCKET_S}"
            calls.append(
                (
                    self._sha,
                    3,
                    self._stream,
                    seen,
                    org_index(self._stream, r["org_id"]),
                    self._maxlen,
                    self._dedupe_window_s + _DEDUPE_BUCKET_S,
                    r["event_id"],
                    r["org_id"],
                    r["event"],
                    self._org_maxlen,
                )
            )
        if isinstance(self._redis, RedisCluster):
            # redis-py cannot pipeline EVALSHA on a cluster: one call each, in order.
            return [await self._redis.evalsha(*call) for call in calls]
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(*call)
            return list(await pipe.execute())

    async def close(self) -> None:
        """The Redis client is the app's; nothing of its own to close."""


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
