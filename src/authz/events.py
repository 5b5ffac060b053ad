"""Security events: built from a verdict, written off the Check path.

The Check path only puts the event on a bounded in-memory queue (never awaits Redis). A
writer task logs each event as a structlog JSON line and XADDs batches to the
`events:security` stream; while Redis is unreachable it keeps the batch and retries in order.
Events carry ids and metadata only: never the body, the prompt or a credential.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import redis.asyncio as aioredis
import structlog
from google.protobuf import json_format
from redis.exceptions import RedisError

from authz import metrics
from authz.decision import Verdict
from authz.reasons import OUTCOMES
from authz.request import RequestFacts
from authz.v1 import events_pb2

log = structlog.get_logger("authz.events")

_BATCH = 500


def security_event(verdict: Verdict, facts: RequestFacts, decision_id: str, api_key_id: str) -> events_pb2.SecurityEvent:
    event = events_pb2.SecurityEvent(
        event_id=uuid.uuid4().hex,
        org_id=verdict.org_id,
        api_key_id=api_key_id,
        request_id=facts.request_id,
        decision_id=decision_id,
        model=verdict.model,
        routing=verdict.routing,
        reason=verdict.reason.value,
        providers=[
            events_pb2.ProviderVerdict(provider=p, failed_requirements=[u.requirement for u in unmet])
            for p, unmet in verdict.blocked
        ],
        policy_version=verdict.policy_version,
        enforced=verdict.enforced,
        client_address=facts.client_address,
        user_agent=facts.user_agent,
        http_status=OUTCOMES[verdict.reason].http_status if verdict.enforced else 200,
    )
    if verdict.provider and not verdict.blocked:
        event.providers.add(provider=verdict.provider)
    event.time.FromNanoseconds(time.time_ns())
    return event


def to_dict(event: events_pb2.SecurityEvent) -> dict:
    return json_format.MessageToDict(
        event, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class EventEmitter:
    def __init__(self, redis: aioredis.Redis, stream: str, *, maxlen: int, queue_size: int):
        self._redis = redis
        self._stream = stream
        self._maxlen = maxlen
        self._queue: asyncio.Queue[events_pb2.SecurityEvent] = asyncio.Queue(queue_size)
        self._pending: list[events_pb2.SecurityEvent] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None

    def emit(self, event: events_pb2.SecurityEvent) -> None:
        """Never blocks. A full queue (Redis down for long) drops, counted and logged."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            metrics.EVENTS["dropped"].inc()
            log.error("security_event_dropped", event_id=event.event_id, org_id=event.org_id)
            return
        self._idle.clear()
        metrics.EVENTS["emitted"].inc()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="authz-events")

    async def flush(self, timeout: float) -> bool:
        """Wait until every emitted event is written; False if Redis did not take them in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self, timeout: float) -> bool:
        flushed = await self.flush(timeout)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if not flushed:
            left = len(self._pending) + self._queue.qsize()
            log.error("security_events_unwritten_at_exit", count=left)
        return flushed

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self._pending:
                self._pending.append(await self._queue.get())
                while len(self._pending) < _BATCH and not self._queue.empty():
                    self._pending.append(self._queue.get_nowait())
                for event in self._pending:
                    log.warning("security_event", **to_dict(event))
            try:
                await self._write(self._pending)
            except (RedisError, OSError) as exc:
                metrics.REDIS_ERRORS.labels("xadd").inc()
                metrics.EVENTS["retried"].inc(len(self._pending))
                log.warning("security_events_write_failed", error=str(exc), pending=len(self._pending))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            metrics.EVENTS["written"].inc(len(self._pending))
            self._pending = []
            if self._queue.empty():
                self._idle.set()

    async def _write(self, batch: list[events_pb2.SecurityEvent]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in batch:
                pipe.xadd(
                    self._stream,
                    {"event_id": event.event_id, "org_id": event.org_id, "event": json.dumps(to_dict(event))},
                    maxlen=self._maxlen,
                    approximate=True,
                )
            await pipe.execute()
