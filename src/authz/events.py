"""Security events: built from a verdict, written off the Check path, never lost.

The Check path only puts the event on a bounded in-memory queue (it never awaits Redis or
the disk). A writer task logs each event as a structlog JSON line and XADDs batches to the
`events:security` stream. While Redis is unreachable the writer appends events to a local
spool file instead (so a killed process loses at most what was still queued), and when Redis
returns it replays the spool, oldest first, before anything newer. Each XADD goes through a
script that records the event id first, so a replay after a partial write adds no duplicate.
Events carry ids and metadata only: never the body, the prompt or a credential.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from google.protobuf import json_format
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from authz import alerts, metrics
from authz.clip import ADDRESS, MODEL, ORG, PROVIDER, REQUEST_ID, USER_AGENT, clip
from authz.decision import Verdict
from authz.reasons import OUTCOMES
from authz.request import RequestFacts
from authz.store import Keys, hash_tag, org_index
from authz.v1 import events_pb2

log = structlog.get_logger("authz.events")

_BATCH = 500
# Providers named in one event: a model has a handful; the catalog bounds it anyway.
_MAX_PROVIDERS = 64
_MIN_BACKOFF, _MAX_BACKOFF = 0.05, 1.0


def security_event(verdict: Verdict, facts: RequestFacts, decision_id: str, api_key_id: str) -> dict:
    """The event as the JSON form of authz.v1.SecurityEvent (built directly: json_format's
    MessageToDict would cost more than the rest of a blocked Check). Every client-controlled
    field is clipped, so one request can never write more than a few KB anywhere."""
    providers = [{"provider": clip(p, PROVIDER), "failed_requirements": [u.requirement for u in unmet]}
                 for p, unmet in verdict.blocked[:_MAX_PROVIDERS]]
    if verdict.provider and not verdict.blocked:
        providers.append({"provider": clip(verdict.provider, PROVIDER), "failed_requirements": []})
    return {
        "event_id": uuid.uuid4().hex,
        "time": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "org_id": clip(verdict.org_id, ORG),
        "api_key_id": api_key_id,
        "request_id": clip(facts.request_id, REQUEST_ID),
        "decision_id": decision_id,
        "model": clip(verdict.model, MODEL),
        "routing": verdict.routing,
        "reason": verdict.reason.value,
        "providers": providers,
        "policy_version": verdict.policy_version,
        "enforced": verdict.enforced,
        "client_address": clip(facts.client_address, ADDRESS),
        "user_agent": clip(facts.user_agent, USER_AGENT),
        "http_status": OUTCOMES[verdict.reason].http_status if verdict.enforced else 200,
        "failed_requirements": verdict.failed_requirements,
        "method": clip(facts.method, PROVIDER),
        "path": clip(facts.path, MODEL),
        "custom_id": clip(verdict.item, MODEL),
        "client_requirements": list(verdict.client_requirements),
    }


def to_proto(event: dict) -> events_pb2.SecurityEvent:
    return json_format.ParseDict(event, events_pb2.SecurityEvent())


# XADD once per event id: ids are remembered in one set per hour of event time (KEYS[2]),
# which expires `dedupe window + 1 h` after it was created, so a replay within the window
# adds no duplicate and the memory per event is one set member (~60 B), not a key.
# The event also goes to the org's own bounded stream (KEYS[4]), so one org's flood can never
# push another org's events out of its listing; the shared stream stays whole for SIEM export.
# It also counts the org's blocks in the current alert window (KEYS[3]) when the org has a
# threshold, returning the count (0 without a threshold, -1 for an event already written).
# Every key shares the stream's hash slot ({tag}), so the script also runs on Redis Cluster.
_XADD_ONCE = """
if redis.call('SADD', KEYS[2], ARGV[3]) == 1 then
  if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
             'event_id', ARGV[3], 'org_id', ARGV[4], 'event', ARGV[5])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*', 'event', ARGV[5])
  if tonumber(ARGV[6]) > 0 then
    local n = redis.call('INCR', KEYS[3])
    if n == 1 then redis.call('EXPIRE', KEYS[3], ARGV[6]) end
    return n
  end
  return 0
end
return -1
"""
_DEDUPE_BUCKET_S = 3600


def record(event: dict, alert_threshold: int = 0, alert_window_s: int = 0, alert_webhook: str = "") -> dict:
    """What the writer sends (and spools) for an event: the stream entry, when it was made
    (its dedupe bucket) and the org's alert settings as they were when it was blocked."""
    return {"event_id": event["event_id"], "org_id": event["org_id"], "event": json.dumps(event),
            "created_s": int(time.time()), "alert_threshold": alert_threshold, "alert_window_s": alert_window_s,
            "alert_webhook": alert_webhook}


class Spool:
    """Append-only JSON-lines files holding events Redis could not take yet.

    Each process appends to its own file, held under an exclusive flock; a file whose lock
    can be taken belongs to a process that died, and is replayed (then removed) first.
    """

    def __init__(self, directory: str | Path, max_bytes: int, rescan_s: float = 1.0):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.rescan_s = rescan_s
        self._file = None
        self._offset = 0  # bytes of our own file already replayed
        self._claimed: dict[Path, object] = {}  # dead processes' spools we hold the lock of
        self._scanned_at = float("-inf")

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"events-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._file = open(path, "a+b")
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
        return os.fstat(self._file.fileno()).st_size

    def _claim_orphans(self) -> None:
        """Lock (and so own) the spools of dead processes; looked for every `rescan_s`."""
        now = time.monotonic()
        if now - self._scanned_at < self.rescan_s:
            return
        self._scanned_at = now
        own = Path(self._file.name).name
        for path in sorted(self.directory.glob("events-*.jsonl")):
            if path.name == own or path in self._claimed:
                continue
            try:
                f = open(path, "rb")
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
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        return kept

    def orphan_batches(self):
        """(path, records) for each claimed spool of a dead process; call done(path) after."""
        for path, f in list(self._claimed.items()):
            f.seek(0)
            yield path, _parse_lines(f.read(), path)

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._claimed.pop(path).close()

    def own_batch(self, limit: int) -> tuple[list[dict[str, str]], int]:
        """Up to `limit` records from our own file after what was replayed; (records, end offset)."""
        self._file.seek(self._offset)
        records, end = [], self._offset
        for line in self._file:
            if not line.endswith(b"\n"):
                break  # being written
            end += len(line)
            records.extend(_parse_lines(line, Path(self._file.name)))
            if len(records) >= limit:
                break
        self._file.seek(0, os.SEEK_END)
        return records, end

    def consumed(self, end: int) -> None:
        self._offset = end
        if self._offset >= self._size():
            self._file.truncate(0)
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


class EventEmitter:
    def __init__(self, redis: aioredis.Redis, stream: str, *, maxlen: int, queue_size: int, spool: Spool,
                 dedupe_window_s: int = 24 * 3600, org_maxlen: int = 10_000, keys: Keys | None = None):
        self._redis = redis
        self._stream = stream
        self._keys = keys or Keys()  # where block alerts are queued
        self._maxlen = maxlen
        self._org_maxlen = org_maxlen
        self._dedupe_window_s = dedupe_window_s
        self._script = redis.register_script(_XADD_ONCE)  # for its sha
        self._script_loaded = False
        self._queue: asyncio.Queue[tuple[dict, tuple]] = asyncio.Queue(queue_size)
        self._spool = spool
        self._inflight: list[dict[str, str]] = []
        self._redis_down = False
        self._idle = asyncio.Event()
        self._task: asyncio.Task | None = None

    def emit(self, event: dict, alert: tuple[int, int, str] = (0, 0, "")) -> None:
        """Never blocks. A full queue (Redis and the disk both failing) drops, counted and logged.
        `alert`: the org's (block threshold, window in s, webhook URL) for block alerts."""
        try:
            self._queue.put_nowait((event, alert))
        except asyncio.QueueFull:
            metrics.EVENTS["dropped"].inc()
            log.error("security_event_dropped", event_id=event["event_id"], org_id=event["org_id"])
            return
        self._idle.clear()
        metrics.EVENTS["emitted"].inc()

    def start(self) -> None:
        self._spool.open()
        if self._spool.pending():
            self._idle.clear()
        else:
            self._idle.set()
        self._task = asyncio.create_task(self._run(), name="authz-events")

    async def flush(self, timeout: float) -> bool:
        """Wait until every event (queued or spooled) is in Redis; False if not in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self, timeout: float) -> bool:
        """Flush what Redis will take in `timeout`; spool the rest for the next start."""
        flushed = await self.flush(timeout)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if not flushed:
            left = self._inflight + self._take_all()
            self._inflight = []
            self._spool_records(left)
            log.warning("security_events_spooled_at_exit", count=len(left))
        self._spool.close()
        return flushed

    # --- the writer ---------------------------------------------------------------------

    def _take_all(self) -> list[dict[str, str]]:
        """Everything queued, logged once here as it leaves memory."""
        records = []
        while not self._queue.empty():
            event, alert = self._queue.get_nowait()
            log.warning("security_event", **event)
            records.append(record(event, *alert))
        return records

    def _spool_records(self, records: list[dict[str, str]]) -> None:
        if not records:
            return
        kept = self._spool.append(records)
        metrics.EVENTS["spooled"].inc(kept)
        if kept < len(records):
            metrics.EVENTS["dropped"].inc(len(records) - kept)
            log.error("security_events_dropped_spool_full", count=len(records) - kept)

    async def _run(self) -> None:
        backoff = _MIN_BACKOFF
        while True:
            if self._spool.pending():
                # Whatever is queued is newer than the spool: it goes behind it, keeping order.
                self._spool_records(self._take_all())
                if await self._replay():
                    backoff = _MIN_BACKOFF
                    continue
                await self._sleep_unless_event(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            first, alert = await self._queue.get()
            log.warning("security_event", **first)
            self._inflight = [record(first, *alert)] + self._take_all()[: _BATCH - 1]
            try:
                await self._write(self._inflight)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                self._spool_records(self._inflight)
            except Exception:  # noqa: BLE001 - the writer must outlive any bug: keep the events
                log.exception("security_events_write_error")
                self._redis_failed(RuntimeError("unexpected error"))
                self._spool_records(self._inflight)
            else:
                metrics.EVENTS["written"].inc(len(self._inflight))
            self._inflight = []
            if self._queue.empty() and not self._spool.pending():
                self._idle.set()

    def _redis_failed(self, exc: Exception) -> None:
        metrics.REDIS_ERRORS.labels("xadd").inc()
        self._script_loaded = False  # a restarted Redis has forgotten it
        if not self._redis_down:  # once per outage, not once per retry
            self._redis_down = True
            log.warning("security_events_spooling", error=str(exc), spool=str(self._spool.directory))

    async def _sleep_unless_event(self, seconds: float) -> None:
        """Back off, but wake for a new event so it reaches the disk without waiting."""
        try:
            event, alert = await asyncio.wait_for(self._queue.get(), seconds)
        except asyncio.TimeoutError:
            return
        log.warning("security_event", **event)
        self._spool_records([record(event, *alert)])

    async def _replay(self) -> bool:
        """Send spooled events to Redis, oldest first. True once the spool is empty."""
        try:
            for path, records in self._spool.orphan_batches():
                for start in range(0, len(records), _BATCH):
                    await self._write(records[start : start + _BATCH])
                self._spool.done(path)
                metrics.EVENTS["replayed"].inc(len(records))
                log.info("security_events_replayed", count=len(records), spool=str(path))
            while True:
                records, end = self._spool.own_batch(_BATCH)
                if not records:
                    self._spool.consumed(end)
                    break
                await self._write(records)
                self._spool.consumed(end)
                metrics.EVENTS["replayed"].inc(len(records))
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            return False
        except Exception:  # noqa: BLE001 - keep the spool, retry later
            log.exception("security_events_replay_error")
            return False
        if self._redis_down:
            self._redis_down = False
            log.info("security_events_redis_back")
        if self._queue.empty():
            self._idle.set()
        return True

    async def _write(self, records: list[dict[str, str]]) -> None:
        # EVALSHA directly: redis-py's Script in a pipeline sends SCRIPT EXISTS before every
        # batch. The script is loaded once, and again if Redis lost it (restart, failover);
        # replaying the batch then is safe, since the script is idempotent per event id.
        if not self._script_loaded:
            await self._redis.script_load(_XADD_ONCE)
            self._script_loaded = True
        try:
            await self._pipeline(records)
        except NoScriptError:
            await self._redis.script_load(_XADD_ONCE)
            await self._pipeline(records)

    async def _pipeline(self, records: list[dict]) -> None:
        tag = hash_tag(self._stream)
        now = int(time.time())
        calls = []
        for r in records:
            window = int(r.get("alert_window_s") or 0) if r.get("alert_threshold") else 0
            # Fixed windows; the counter expires with its window.
            counter = f"{tag}:blocks:{r['org_id']}:{now // window if window else 0}"
            seen = f"{tag}:seen:{int(r.get('created_s') or now) // _DEDUPE_BUCKET_S}"
            calls.append((self._script.sha, 4, self._stream, seen, counter, org_index(self._stream, r["org_id"]),
                          self._maxlen, self._dedupe_window_s + _DEDUPE_BUCKET_S, r["event_id"], r["org_id"],
                          r["event"], window, self._org_maxlen))
        if isinstance(self._redis, RedisCluster):
            # redis-py cannot pipeline EVALSHA on a cluster: one call each, in order.
            counts = [await self._redis.evalsha(*call) for call in calls]
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    pipe.evalsha(*call)
                counts = await pipe.execute()
        for r, count in zip(records, counts):
            threshold = int(r.get("alert_threshold") or 0)
            if threshold and count == threshold + 1:  # crossed just now: one alert per window
                message = alerts.block_alert(r["org_id"], threshold, int(r["alert_window_s"]), json.loads(r["event"]))
                await alerts.enqueue(self._redis, self._keys, r["org_id"], r["alert_webhook"], "blocks", message)
