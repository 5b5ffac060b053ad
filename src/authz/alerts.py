"""Compliance alerts: a Slack- and Discord-compatible webhook per org.

Two kinds, both queued in the `alerts` Redis stream and delivered by whichever authz process
takes them from the `alerters` consumer group (so each alert is sent once, whatever the number
of processes):
- a catalog load changes a provider's compliance under an org's enabled policy;
- an org's blocks exceed its threshold within its window (counted in Redis by the security
  event writer, across every process).
Delivery retries with exponential backoff; an alert left pending by a dead process is claimed
by another after a minute. Everything here runs beside the Check path, never on it: a slow
or failing receiver only delays alerts.
"""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from authz import catalog as catalog_mod
from authz import metrics
from authz import policy as policy_mod
from authz.store import Keys, Store, alert_settings, policy_from_json
from authz.v1 import catalog_pb2

log = structlog.get_logger("authz.alerts")

GROUP = "alerters"
MAX_ATTEMPTS = 8
_BACKOFF_S = (1, 2, 4, 8, 15, 30, 60)
_TIMEOUT_S = 5.0
_CLAIM_IDLE_MS = 60_000


def payload(text: str) -> dict:
    """Slack reads "text", Discord reads "content"."""
    return {"text": text, "content": text}


async def enqueue(redis: aioredis.Redis, keys: Keys, org_id: str, webhook_url: str, kind: str, text: str) -> None:
    await redis.xadd(keys.alerts, {"org_id": org_id, "webhook_url": webhook_url, "kind": kind, "text": text},
                     maxlen=100_000, approximate=True)


async def load_catalog(store: Store, catalog: catalog_pb2.Catalog, actor: str) -> int:
    """Store the catalog (audited), then queue an alert for each org whose providers' compliance
    it changes. The catalog is stored even if queueing alerts fails (they are informational)."""
    raw = await store.catalog_raw()
    previous = catalog_mod.parse(raw) if raw else None
    version = await store.load_catalog(catalog, actor)
    try:
        await enqueue_catalog_changes(store.redis, store.keys, previous, catalog)
    except RedisError as exc:
        log.error("catalog_alerts_not_queued", error=str(exc))
    return version


async def enqueue_catalog_changes(redis: aioredis.Redis, keys: Keys, old: catalog_pb2.Catalog | None,
                                  new: catalog_pb2.Catalog) -> int:
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
        changes = []
        for pid in sorted(set(before) | set(after)):
            was, now = before.get(pid), after.get(pid)
            if was is not None and now is not None and bool(was) == bool(now):
                continue
            if now is None:
                changes.append(f"'{pid}' left the catalog")
            elif not now:
                changes.append(f"'{pid}' is now allowed")
            else:
                changes.append(f"'{pid}' is now blocked (it {policy_mod.describe(now)})")
        if changes:
            org_id = key.decode()[len(keys.org("")):]
            text = (f"Provider compliance changed for org '{org_id}' under policy v{p.version} "
                    f"(catalog v{new.version}): " + "; ".join(changes) + ".")
            await enqueue(redis, keys, org_id, alerts.webhook_url, "catalog_change", text)
            queued += 1
    return queued


class AlertDispatcher:
    def __init__(self, redis: aioredis.Redis, keys: Keys):
        self._redis = redis
        self._keys = keys
        self._consumer = f"{os.uname().nodename}-{os.getpid()}"
        self._retries: dict[bytes, tuple[int, float]] = {}  # entry id -> (attempts, next try at)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="authz-alerts")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        group_ready, claimed_at = False, float("-inf")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S)) as http:
            while True:
                try:
                    if not group_ready:
                        await self._ensure_group()
                        group_ready = True
                    if time.monotonic() - claimed_at > _CLAIM_IDLE_MS / 2000:
                        await self._claim_abandoned()
                        claimed_at = time.monotonic()
                    await self._retry_due(http)
                    entries = await self._redis.xreadgroup(GROUP, self._consumer, {self._keys.alerts: ">"},
                                                           count=10, block=1000 if self._retries else 5000)
                    for _, items in entries or []:
                        for entry_id, fields in items:
                            await self._deliver(http, entry_id, fields, attempts=0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - alerts must keep flowing after any error
                    if not isinstance(exc, (RedisError, OSError)):
                        log.exception("alerts_error")
                    group_ready = False  # a restarted Redis has lost the group
                    metrics.REDIS_ERRORS.labels("alerts").inc()
                    log.warning("alerts_redis_unavailable", error=str(exc))
                    await asyncio.sleep(1.0)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._keys.alerts, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _claim_abandoned(self) -> None:
        """Alerts a dead process took but never delivered: retry them here."""
        _, claimed, *_ = await self._redis.xautoclaim(self._keys.alerts, GROUP, self._consumer,
                                                       min_idle_time=_CLAIM_IDLE_MS, count=10)
        for entry_id, _fields in claimed:
            self._retries.setdefault(entry_id, (1, 0.0))

    async def _retry_due(self, http: aiohttp.ClientSession) -> None:
        now = time.monotonic()
        for entry_id, (attempts, next_at) in list(self._retries.items()):
            if next_at > now:
                continue
            found = await self._redis.xrange(self._keys.alerts, min=entry_id, max=entry_id)
            if not found:
                self._retries.pop(entry_id, None)
                continue
            await self._deliver(http, entry_id, found[0][1], attempts)

    async def _deliver(self, http: aiohttp.ClientSession, entry_id: bytes, fields: dict, attempts: int) -> None:
        url = fields[b"webhook_url"].decode()
        text = fields[b"text"].decode()
        error = ""
        try:
            async with http.post(url, json=payload(text)) as response:
                if 200 <= response.status < 300:
                    await self._redis.xack(self._keys.alerts, GROUP, entry_id)
                    self._retries.pop(entry_id, None)
                    metrics.ALERTS["delivered"].inc()
                    log.info("alert_delivered", org_id=fields[b"org_id"].decode(), kind=fields[b"kind"].decode())
                    return
                error = f"HTTP {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = exc.__class__.__name__
        attempts += 1
        if attempts >= MAX_ATTEMPTS:
            await self._redis.xack(self._keys.alerts, GROUP, entry_id)
            self._retries.pop(entry_id, None)
            metrics.ALERTS["failed"].inc()
            log.error("alert_undeliverable", org_id=fields[b"org_id"].decode(), attempts=attempts, error=error)
            return
        delay = _BACKOFF_S[min(attempts, len(_BACKOFF_S)) - 1]
        self._retries[entry_id] = (attempts, time.monotonic() + delay)
        metrics.ALERTS["retried"].inc()
        log.warning("alert_retry", org_id=fields[b"org_id"].decode(), attempts=attempts, retry_in_s=delay,
                    error=error)


def block_alert_text(org_id: str, threshold: int, window_s: int, event: dict) -> str:
    providers = ", ".join(p["provider"] for p in event.get("providers", [])) or "none"
    return (f"Org '{org_id}': more than {threshold} requests blocked by the provider compliance policy "
            f"within {window_s} s. Latest: model '{event.get('model')}', providers {providers}, "
            f"reason {event.get('reason')} (decision {event.get('decision_id')}).")
