"""The security-event writer: takes events off the Check path and gets them into the sink,
never losing one.

The Check path only puts the block on a bounded in-memory queue (it never awaits the sink or
the disk); the writer makes each into its event as it takes them, in batches (a Check queues a
Deferred: check.security_event.Blocked). A writer task logs each event as a structlog JSON line
and hands batches to the sink (events.sinks). While the sink is unavailable the writer appends
events to the disk spool (events.spool) instead, and when the sink returns it replays the
spool, oldest first, before anything newer. After each stored batch, listeners (alerts.BlockCounter) hear about the
events the sink newly stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Protocol

import structlog
from redis.exceptions import RedisError

from authz import metrics
from authz.events.records import Deferred, Event, Record, record
from authz.events.sinks import EventSink, SinkUnavailable
from authz.events.spool import Spool
from authz.policy.rules import NO_BLOCK_ALERTS, BlockAlerts

log = structlog.get_logger("authz.events.writer")

_BATCH = 500
_LINGER_S = 0.01
_MIN_BACKOFF, _MAX_BACKOFF = 0.05, 1.0
# What makes the writer spool and retry rather than log an unexpected error.
_UNAVAILABLE = (SinkUnavailable, RedisError, OSError)


class Listener(Protocol):
    def written(self, records: Sequence[Record]) -> Awaitable[None]:
        """Events a sink newly stored (never called twice for one event by one process)."""
        ...


class EventWriter:
    def __init__(self, sink: EventSink, spool: Spool, *, queue_size: int, listeners: Sequence[Listener] = ()):
        self.sink = sink
        self._spool = spool
        self._listeners = tuple(listeners)
        self._queue: asyncio.Queue[tuple[Event | Deferred, BlockAlerts]] = asyncio.Queue(queue_size)
        self._inflight: list[Record] = []
        self._sink_down = False
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def emit(self, event: Event | Deferred, alerts: BlockAlerts = NO_BLOCK_ALERTS) -> None:
        """Never blocks. A full queue (the sink and the disk both failing) drops, counted and
        logged. `event`: the event, or the block it is made from when taken (a Check's).
        `alerts`: the org's block-alert settings, as they are now."""
        try:
            self._queue.put_nowait((event, alerts))
        except asyncio.QueueFull:
            metrics.EVENTS["dropped"].inc()
            if isinstance(event, dict):
                log.error("security_event_dropped", event_id=event["event_id"], org_id=event["org_id"])
            else:
                log.error("security_event_dropped", decision_id=event.decision_id)
            return
        self._idle.clear()
        metrics.EVENTS["emitted"].inc()

    def start(self) -> None:
        self._spool.open()
        if self._spool.pending() or not self._queue.empty():  # events emitted before the start too
            self._idle.clear()
        else:
            self._idle.set()
        self._task = asyncio.create_task(self._run(), name="authz-events")

    async def flush(self, timeout: float) -> bool:
        """Wait until every event (queued or spooled) is in the sink; False if not in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self, timeout: float) -> bool:
        """Flush what the sink will take in `timeout`; spool the rest for the next start."""
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
        await self.sink.close()
        return flushed

    # --- the writer ---------------------------------------------------------------------

    def _take_all(self, limit: int | None = None) -> list[Record]:
        """Everything queued (or its first `limit`), logged once here as it leaves memory."""
        records: list[Record] = []
        while not self._queue.empty() and (limit is None or len(records) < limit):
            records.append(_taken(*self._queue.get_nowait()))
        return records

    def _spool_records(self, records: list[Record]) -> None:
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
            first, alerts = await self._queue.get()
            if self._queue.qsize() < _BATCH - 1:
                # Linger a moment so that a burst of blocks shares one sink call: each call
                # costs far more client CPU than the events in it (measured: ~1/3 of a block).
                await asyncio.sleep(_LINGER_S)
            # One batch; the rest stays queued for the next (taking all and slicing lost them).
            self._inflight = [_taken(first, alerts)] + self._take_all(_BATCH - 1)
            try:
                await self._write(self._inflight)
            except _UNAVAILABLE as exc:
                self._sink_failed(exc)
                self._spool_records(self._inflight)
            except Exception:
                log.exception("security_events_write_error")
                self._sink_failed(RuntimeError("unexpected error"))
                self._spool_records(self._inflight)
            else:
                metrics.EVENTS["written"].inc(len(self._inflight))
            self._inflight = []
            if self._queue.empty() and not self._spool.pending():
                self._idle.set()

    def _sink_failed(self, exc: Exception) -> None:
        metrics.REDIS_ERRORS.labels("xadd").inc()
        if not self._sink_down:  # once per outage, not once per retry
            self._sink_down = True
            log.warning(
                "security_events_spooling", sink=self.sink.name, error=str(exc), spool=str(self._spool.directory)
            )

    async def _sleep_unless_event(self, seconds: float) -> None:
        """Back off, but wake for a new event so it reaches the disk without waiting."""
        try:
            event, alerts = await asyncio.wait_for(self._queue.get(), seconds)
        except TimeoutError:
            return
        self._spool_records([_taken(event, alerts)])

    async def _replay(self) -> bool:
        """Send spooled events to the sink, oldest first. True once the spool is empty."""
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
        except _UNAVAILABLE as exc:
            self._sink_failed(exc)
            return False
        except Exception:
            log.exception("security_events_replay_error")
            return False
        if self._sink_down:
            self._sink_down = False
            log.info("security_events_sink_back", sink=self.sink.name)
        if self._queue.empty():
            self._idle.set()
        return True

    async def _write(self, records: list[Record]) -> None:
        new = await self.sink.write(records)
        for listener in self._listeners:
            try:
                await listener.written(new)
            except Exception as exc:
                log.warning("security_event_listener_failed", listener=type(listener).__name__, error=str(exc))


def _taken(event: Event | Deferred, alerts: BlockAlerts) -> Record:
    """A queued event as it leaves memory: built (from a Check's block), logged, recorded."""
    if not isinstance(event, dict):
        event = event.event()
    log.warning("security_event", **event)
    return record(event, alerts)
