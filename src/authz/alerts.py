"""Compliance alerts: a Slack- and Discord-compatible webhook per org.

Two kinds, both queued in the `alerts` Redis stream and delivered by whichever authz process
takes them from the `alerters` consumer group (so each alert is sent once, whatever the number
of processes):
- a catalog load changes a provider's compliance under an org's enabled policy;
- an org's blocks exceed its threshold within its window (counted in Redis across every
  process by BlockCounter, a listener of the security-event writer).
Delivery retries with exponential backoff; an alert left pending by a dead process is claimed
by another after a minute. Everything here runs beside the Check path, never on it: a slow
or failing receiver only delays alerts.

The webhook URL is tenant input: every delivery goes through `webhooks.WebhookGuard` (public
addresses over https only, resolved and connected by us, no redirects). The text carries
client-controlled values (model names, user agents): a message is kept as literal parts and
values, and each value is escaped for the target it is rendered for (Slack mrkdwn, Discord
markdown), inside inline code, with mentions disabled, so `<!channel>`, `@everyone` or
`<url|label>` in a model name arrive as inert text.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog
from redis.exceptions import RedisError, ResponseError

from authz import catalog as catalog_mod
from authz import metrics
from authz import policy as policy_mod
from authz.clip import clip
from authz.events import Record
from authz.store import Keys, RedisClient, alert_settings, policy_from_json
from authz.v1 import catalog_pb2
from authz.webhooks import AddressRefused, WebhookGuard, WebhookRefused

log = structlog.get_logger("authz.alerts")

GROUP = "alerters"
MAX_ATTEMPTS = 8
_BACKOFF_S = (1, 2, 4, 8, 15, 30, 60)
_TIMEOUT_S = 5.0
_CLAIM_IDLE_MS = 60_000
# Deliveries in flight at once (one connection each): a hanging receiver holds one of them for
# its timeout, never the other orgs' alerts.
_CONCURRENCY = 20
_VALUE_CHARS = 200  # one value in a message; the whole message stays far below Slack's 40k
_MAX_VALUES = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


class Message:
    """Alert text as literal parts (ours) and values (anyone's), escaped only when rendered."""

    def __init__(self, parts: list[tuple[bool, str]] | None = None):
        self.parts: list[tuple[bool, str]] = parts or []  # (is_value, text)

    def text(self, literal: str) -> Message:
        self.parts.append((False, literal))
        return self

    def value(self, value: object) -> Message:
        if sum(1 for is_value, _ in self.parts if is_value) < _MAX_VALUES:
            self.parts.append((True, _CONTROL.sub(" ", clip(str(value), _VALUE_CHARS))))
        return self

    def to_json(self) -> str:
        return json.dumps(self.parts, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Message:
        return cls([(bool(v), str(t)) for v, t in json.loads(raw)])

    def slack(self) -> str:
        # Slack's own escaping (&, <, >) stops mentions and <url|label> links; inline code stops
        # mrkdwn and auto-linking. A backtick would end the code span, so it never gets in.
        return "".join(
            f"`{_slack_escape(t.replace('`', chr(0x2CB)))}`" if v else _slack_escape(t) for v, t in self.parts
        )

    def discord(self) -> str:
        # Inside inline code Discord renders no markdown or masked links; allowed_mentions in the
        # payload stops pings even where a mention would otherwise parse.
        return "".join(f"`{t.replace('`', chr(0x2CB))}`" if v else t for v, t in self.parts)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    """Slack reads "text", Discord reads "content" (and honours allowed_mentions)."""
    return {"text": message.slack(), "content": message.discord(), "allowed_mentions": {"parse": []}}


async def enqueue(redis: RedisClient, keys: Keys, org_id: str, webhook_url: str, kind: str, message: Message) -> None:
    await redis.xadd(
        keys.alerts,
        {"org_id": org_id, "webhook_url": webhook_url, "kind": kind, "message": message.to_json()},
        maxlen=100_000,
        approximate=True,
    )


async def enqueue_catalog_changes(
    redis: RedisClient, keys: Keys, old: catalog_pb2.Catalog | None, new: catalog_pb2.Catalog
) -> int:
    """One alert per org with alerts configured whose enabled policy now judges some provider
    differently. Returns how many alerts were queued."""
    if old is None:
        return 0
    old_index, new_index = catalog_mod.CatalogIndex.build(old), catalog_mod.CatalogIndex.build(new)
    queued = 0
    async for key in redis.scan_iter(match=keys.org("*"), count=500):
        fields = await redis.hgetall(key)
        alerts = alert_settings(fields)
        raw = fields.get(b"policy")
        if not alerts.webhook_url or not raw:
            continue
        p = policy_from_json(raw)
        rules = policy_mod.rules_of(p)
        if rules == policy_mod.NO_RULES:
            continue
        before, after = old_index.table(rules).unmet, new_index.table(rules).unmet
        org_id = key.decode()[len(keys.org("")) :]
        message = (
            Message()
            .text("Provider compliance changed for org ")
            .value(org_id)
            .text(f" under policy v{p.version} (catalog v{new.version}): ")
        )
        changes = 0
        for pid in sorted(set(before) | set(after)):
            was, now = before.get(pid), after.get(pid)
            if was is not None and now is not None and bool(was) == bool(now):
                continue
            message.text("; " if changes else "").value(pid)
            if now is None:
                message.text(" left the catalog")
            elif not now:
                message.text(" is now allowed")
            else:
                message.text(f" is now blocked (it {policy_mod.describe(now)})")
            changes += 1
        if changes:
            await enqueue(redis, keys, org_id, alerts.webhook_url, "catalog_change", message.text("."))
            queued += 1
        watched = watched_losses(old_index, new_index, rules, alerts.watched_models)
        if watched:
            losing = Message().text("Watched models lost compliant providers for org ").value(org_id)
            losing.text(f" (catalog v{new.version}): ")
            for i, (model, had, has) in enumerate(watched):
                losing.text("; " if i else "").value(model)
                losing.text(f" has {has} compliant provider{'s' if has != 1 else ''} (was {had})")
                if not has:
                    losing.text(": every request for it is blocked")
            await enqueue(redis, keys, org_id, alerts.webhook_url, "watched_model", losing.text("."))
            queued += 1
    return queued


def watched_losses(
    old: catalog_mod.CatalogIndex, new: catalog_mod.CatalogIndex, rules: policy_mod.Rules, watched: Sequence[str]
) -> list[tuple[str, int, int]]:
    """(model, compliant providers before, after) for each watched model that lost some."""
    before, after = old.table(rules), new.table(rules)
    losses = []
    for model in watched:
        was = len(before.for_model(model).allowed) if model in old.models else 0
        now = len(after.for_model(model).allowed) if model in new.models else 0
        if now < was:
            losses.append((model, was, now))
    return losses


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


def block_alert(org_id: str, threshold: int, window_s: int, event: dict[str, Any]) -> Message:
    message = (
        Message()
        .text("Org ")
        .value(org_id)
        .text(
            f": more than {threshold} requests blocked by the provider compliance policy within "
            f"{window_s} s. Latest: model "
        )
        .value(event.get("model", ""))
        .text(", providers ")
    )
    for i, provider in enumerate(event.get("providers", [])):
        message.text(", " if i else "").value(provider["provider"])
    if not event.get("providers"):
        message.text("none")
    return (
        message.text(", reason ")
        .value(event.get("reason", ""))
        .text(" (decision ")
        .value(event.get("decision_id", ""))
        .text(").")
    )


class BlockCounter:
    """Counts each org's blocks per fixed window in Redis (shared by every process) as the
    event writer reports newly stored events, and queues one alert per window when an org's
    count passes its threshold. A replayed event is not new, so it is never counted twice."""

    def __init__(self, redis: RedisClient, keys: Keys):
        self._redis = redis
        self._keys = keys

    async def written(self, records: Sequence[Record]) -> None:
        counted = [r for r in records if int(r.get("alert_threshold") or 0) and int(r.get("alert_window_s") or 0)]
        if not counted:
            return
        now = int(time.time())
        counters = [self._keys.block_count(r["org_id"], now // int(r["alert_window_s"])) for r in counted]
        async with self._redis.pipeline(transaction=False) as pipe:
            for counter in counters:
                pipe.incr(counter)
            counts = await pipe.execute()
        for r, counter, count in zip(counted, counters, counts, strict=True):
            threshold, window_s = int(r["alert_threshold"]), int(r["alert_window_s"])
            if count == 1:
                await self._redis.expire(counter, window_s)  # the counter goes with its window
            if count == threshold + 1:  # crossed just now: one alert per window
                message = block_alert(r["org_id"], threshold, window_s, json.loads(r["event"]))
                await enqueue(self._redis, self._keys, r["org_id"], r["alert_webhook"], "blocks", message)
