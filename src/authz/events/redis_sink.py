"""The Redis stream sink: the shared `events:security` stream (for export) plus each org's
bounded listing, each event written once however often a batch is replayed."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.exceptions import NoScriptError

from authz.config import Settings
from authz.events.records import Record
from authz.events.sinks import SinkContext
from authz.state.layout import RedisClient, hash_tag, org_index

# XADD once per event id, a whole batch in one script call (per-command client overhead, not
# Redis, was the cost of a blocked request): ids are remembered in one set per hour of event
# time, which expires `dedupe window + 1 h` after it was created, so a replay within the window
# adds no duplicate and the memory per event is one set member (~60 B), not a key.
# Each event also goes to its org's own bounded stream, so one org's flood can never push
# another org's events out of its listing; the shared stream stays whole for SIEM export.
# KEYS[1]: the shared stream; then per event i: KEYS[2i] its seen set, KEYS[2i+1] its org stream.
# ARGV[1..3]: stream maxlen, seen-set TTL, org-stream maxlen; then per event: id, org, event.
# Returns, per event, 1 if new, 0 if already written. Every key shares the stream's hash slot
# ({tag}), so the script also runs on Redis Cluster.
_XADD_ONCE = """
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local seen, org_stream, a = KEYS[2 * i], KEYS[2 * i + 1], 3 * i
  if redis.call('SADD', seen, ARGV[a + 1]) == 1 then
    if redis.call('TTL', seen) < 0 then redis.call('EXPIRE', seen, ARGV[2]) end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
               'event_id', ARGV[a + 1], 'org_id', ARGV[a + 2], 'event', ARGV[a + 3])
    redis.call('XADD', org_stream, 'MAXLEN', '~', ARGV[3], '*', 'event', ARGV[a + 3])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
_DEDUPE_BUCKET_S = 3600

NAME = "redis"
SETTINGS = ("events_stream_maxlen", "events_org_maxlen", "events_dedupe_window_s")  # the settings it reads


def check(settings: Settings) -> None:
    """Its settings are whole numbers config already bounds: nothing more to check."""


def build(settings: Settings, context: SinkContext) -> RedisStreamSink:
    return RedisStreamSink(
        context.redis,
        context.stream,
        maxlen=settings.events_stream_maxlen,
        org_maxlen=settings.events_org_maxlen,
        dedupe_window_s=settings.events_dedupe_window_s,
    )


class RedisStreamSink:
    """The shared `events:security` stream (for export) plus each org's bounded listing."""

    name = NAME

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
        keys: list[str] = [self._stream]
        args: list[object] = [self._maxlen, self._dedupe_window_s + _DEDUPE_BUCKET_S, self._org_maxlen]
        for r in records:
            keys.append(f"{tag}:seen:{int(r.get('created_s') or now) // _DEDUPE_BUCKET_S}")
            keys.append(org_index(self._stream, r["org_id"]))
            args.extend((r["event_id"], r["org_id"], r["event"]))
        added = await self._redis.evalsha(self._sha, len(keys), *keys, *args)
        return [int(a) for a in added]

    async def close(self) -> None:
        """The Redis client is the app's; nothing of its own to close."""
