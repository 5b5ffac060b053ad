"""Delivers queued alerts to each org's Slack- or Discord-compatible webhook.

Whichever authz process takes an alert from the `alerters` consumer group sends it, so each
alert is sent once whatever the number of processes. Delivery retries with exponential
backoff; an alert left pending by a dead process is claimed by another after a minute.
Everything here runs beside the Check path, never on it: a slow or failing receiver only
delays alerts. The webhook URL is tenant input: every delivery goes through
`alerts.webhook_guard.WebhookGuard` (public addresses over https only, resolved and connected
by us, no redirects).
"""

from __future__ import annotations

import asyncio
import os
import time
from asyncio import FIRST_COMPLETED

import aiohttp
import structlog
from redis.exceptions import RedisError, ResponseError

from authz import metrics
from authz.alerts.messages import Message, payload
from authz.alerts.webhook_guard import AddressRefused, WebhookGuard, WebhookRefused
from authz.state.layout import Keys, RedisClient

log = structlog.get_logger("authz.alerts.dispatcher")

GROUP = "alerters"
MAX_ATTEMPTS = 8
_BACKOFF_S = (1, 2, 4, 8, 15, 30, 60)
_TIMEOUT_S = 5.0
_CLAIM_IDLE_MS = 60_000
# Deliveries in flight at once (one connection each): a hanging receiver holds one of them for
# its timeout, never the other orgs' alerts.
_CONCURRENCY = 20


class AlertDispatcher:
    def __init__(self, redis: RedisClient, keys: Keys, guard: WebhookGuard):
        self._redis = redis
        self._keys = keys
        self._guard = guard
        self._consumer = f"{os.uname().nodename}-{os.getpid()}"
        self._retries: dict[bytes, tuple[int, float]] = {}  # entry id -> (attempts, next try at)
        self._task: asyncio.Task[None] | None = None
        # Deliveries run concurrently, one org's in the order queued (a lock per org, FIFO).
        self._inflight: dict[bytes, asyncio.Task[None]] = {}
        self._org_locks: dict[str, tuple[asyncio.Lock, int]] = {}  # org -> (its lock, deliveries using it)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="authz-alerts")

    async def stop(self) -> None:
        # Unfinished deliveries stay pending in the group: another process claims them later.
        tasks = [t for t in (self._task, *self._inflight.values()) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        group_ready, claimed_at, paused = False, float("-inf"), False
        # The guard's resolver is the only one this client uses; no proxies from the environment.
        connector = aiohttp.TCPConnector(resolver=self._guard.resolver(), limit=20)
        async with aiohttp.ClientSession(
            connector=connector, trust_env=False, timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S)
        ) as http:
            while True:
                try:
                    if not group_ready:
                        await self._ensure_group()
                        group_ready = True
                    if time.monotonic() - claimed_at > _CLAIM_IDLE_MS / 2000:
                        await self._claim_abandoned()
                        claimed_at = time.monotonic()
                    await self._retry_due(http)
                    if len(self._inflight) >= _CONCURRENCY:  # read no more until one finishes
                        await asyncio.wait(list(self._inflight.values()), timeout=1.0, return_when=FIRST_COMPLETED)
                        continue
                    entries = await self._redis.xreadgroup(
                        GROUP,
                        self._consumer,
                        {self._keys.alerts: ">"},
                        count=_CONCURRENCY - len(self._inflight),
                        block=1000 if self._retries or self._inflight else 5000,
                    )
                    for _, items in entries or []:
                        for entry_id, fields in items:
                            self._start(http, entry_id, fields, attempts=0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    _count_failure(exc)
                    group_ready = False  # a restarted Redis has lost the group
                    if not paused:  # once per outage: the retries every second say nothing new
                        paused = True
                        log.warning("alert_delivery_paused_redis_unreachable", error=str(exc), retry_every_s=1)
                    await asyncio.sleep(1.0)
                    continue
                if paused:
                    paused = False
                    log.info("alert_delivery_resumed")

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._keys.alerts, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _claim_abandoned(self) -> None:
        """Alerts a dead process took but never delivered: retry them here."""
        _, claimed, *_ = await self._redis.xautoclaim(
            self._keys.alerts, GROUP, self._consumer, min_idle_time=_CLAIM_IDLE_MS, count=10
        )
        for entry_id, _fields in claimed:
            self._retries.setdefault(entry_id, (1, 0.0))

    async def _retry_due(self, http: aiohttp.ClientSession) -> None:
        now = time.monotonic()
        for entry_id, (attempts, next_at) in list(self._retries.items()):
            if next_at > now or entry_id in self._inflight:
                continue
            found = await self._redis.xrange(self._keys.alerts, min=entry_id, max=entry_id)
            if not found:
                self._retries.pop(entry_id, None)
                continue
            self._start(http, entry_id, found[0][1], attempts)

    def _start(self, http: aiohttp.ClientSession, entry_id: bytes, fields: dict[bytes, bytes], attempts: int) -> None:
        """Deliver in the background: other orgs' alerts do not wait for this receiver."""
        org_id = fields.get(b"org_id", b"").decode()
        lock, users = self._org_locks.get(org_id) or (asyncio.Lock(), 0)
        self._org_locks[org_id] = (lock, users + 1)
        task = asyncio.create_task(self._deliver_in_turn(lock, http, entry_id, fields, attempts))
        self._inflight[entry_id] = task
        task.add_done_callback(lambda _: self._done(entry_id, org_id))

    def _done(self, entry_id: bytes, org_id: str) -> None:
        self._inflight.pop(entry_id, None)
        lock, users = self._org_locks[org_id]
        if users > 1:
            self._org_locks[org_id] = (lock, users - 1)
        else:
            del self._org_locks[org_id]

    async def _deliver_in_turn(
        self,
        lock: asyncio.Lock,
        http: aiohttp.ClientSession,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        attempts: int,
    ) -> None:
        try:
            async with lock:
                await self._deliver(http, entry_id, fields, attempts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis lost while acknowledging: pending, claimed again later
            _count_failure(exc)

    async def _deliver(
        self, http: aiohttp.ClientSession, entry_id: bytes, fields: dict[bytes, bytes], attempts: int
    ) -> None:
        url = fields[b"webhook_url"].decode()
        org_id = fields[b"org_id"].decode()
        if b"message" in fields:
            message = Message.from_json(fields[b"message"].decode())
        else:  # queued by an earlier version: the whole text counts as a value
            message = Message().value(fields.get(b"text", b"").decode())
        error = ""
        try:
            self._guard.target(url)  # literal addresses never reach the resolver
            async with http.post(url, json=payload(message), allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    await self._finish(entry_id, "delivered")
                    log.info("alert_delivered", org_id=org_id, kind=fields[b"kind"].decode())
                    return
                error = f"HTTP {response.status}"
        except WebhookRefused as exc:
            return await self._refused(entry_id, org_id, str(exc))
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                return await self._refused(entry_id, org_id, str(exc.os_error))
            error = exc.__class__.__name__
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = exc.__class__.__name__
        attempts += 1
        if attempts >= MAX_ATTEMPTS:
            await self._finish(entry_id, "failed")
            log.error("alert_undeliverable", org_id=org_id, attempts=attempts, error=error)
            return
        delay = _BACKOFF_S[min(attempts, len(_BACKOFF_S)) - 1]
        self._retries[entry_id] = (attempts, time.monotonic() + delay)
        metrics.ALERTS["retried"].inc()
        log.warning("alert_retry", org_id=org_id, attempts=attempts, retry_in_s=delay, error=error)

    async def _finish(self, entry_id: bytes, outcome: str) -> None:
        await self._redis.xack(self._keys.alerts, GROUP, entry_id)
        self._retries.pop(entry_id, None)
        metrics.ALERTS[outcome].inc()

    async def _refused(self, entry_id: bytes, org_id: str, why: str) -> None:
        """A target the guard refuses is never retried: it will not become safe by waiting."""
        await self._finish(entry_id, "refused")
        log.error("alert_webhook_refused", org_id=org_id, error=why)


def _count_failure(exc: Exception) -> None:
    """A failed step of delivery: Redis (counted) or a bug (logged with its traceback too)."""
    if not isinstance(exc, (RedisError, OSError)):
        log.exception("alerts_error")
    metrics.REDIS_ERRORS.labels("alerts").inc()
