"""In-process copy of the policy state, so a warm Check never talks to Redis.

Three caches: the catalog (one), org policies and API keys (by id, filled on first use).
They stay current through the `invalidate` pub/sub channel, backed up by a periodic full
resync (and a resync after every reconnect, since messages sent while disconnected are
lost). If no sync has succeeded for `max_staleness_s`, the state is reported stale and
Checks answer 503 rather than enforce an old policy forever.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

import structlog
from redis.exceptions import RedisError

from authz import metrics
from authz.policy import catalog as catalog_mod
from authz.policy import rules as policy_rules
from authz.policy.catalog import CatalogIndex
from authz.policy.orgs import CustomEntry, OrgPolicy
from authz.policy.rules import rules_of
from authz.state.layout import (
    APIKEY_MESSAGE,
    CATALOG_MESSAGE,
    ORG_MESSAGE,
    OrgRecord,
    alert_settings,
    custom_providers_of,
    policy_from_json,
)
from authz.state.store import Store
from authz.state.writes import StateLost
from authz.v1 import policy_pb2

log = structlog.get_logger("authz.state.cache")

V = TypeVar("V")

_MIN_BACKOFF, _MAX_BACKOFF = 0.05, 2.0


def _chunks(items: list[str], size: int = 1000) -> Iterator[list[str]]:
    """Resync in pipelines of bounded size, so 100k cached orgs never make one huge reply."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StateUnavailable(Exception):
    """Redis could not be asked and nothing is cached: the caller must not allow."""


class _Entries(Generic[V]):
    """A keyed cache filled on first use, with concurrent misses sharing one fetch.

    An invalidation that arrives while a fetch is in flight marks it dirty, and the fetch
    repeats, so a slow read can never store a value older than the latest change.
    """

    def __init__(
        self,
        name: str,
        fetch: Callable[[str], Awaitable[V]],
        timeout: float,
        on_state_lost: Callable[[], None] | None = None,
    ):
        self.name = name
        self._on_state_lost = on_state_lost
        self.values: dict[str, V] = {}
        self._fetch = fetch
        self._timeout = timeout
        self._loading: dict[str, asyncio.Future[V]] = {}
        self._dirty: set[str] = set()
        self._hit, self._miss = (name, "hit"), (name, "miss")  # counted in metrics.TALLY

    async def get(self, key: str) -> V:
        try:
            value = self.values[key]
        except KeyError:
            pass
        else:
            metrics.TALLY.cache[self._hit] += 1
            return value
        metrics.TALLY.cache[self._miss] += 1
        future = self._loading.get(key)
        if future is None:
            future = asyncio.ensure_future(self._load(key))
            self._loading[key] = future
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except StateLost as exc:
            if self._on_state_lost:
                self._on_state_lost()
            raise StateUnavailable(f"{self.name} {key!r}: Redis state lost") from exc
        except (TimeoutError, RedisError, OSError) as exc:
            metrics.REDIS_ERRORS.labels(f"load_{self.name}").inc()
            raise StateUnavailable(f"{self.name} {key!r}: {exc.__class__.__name__}") from exc

    async def _load(self, key: str) -> V:
        try:
            while True:
                self._dirty.discard(key)
                value = await self._fetch(key)
                if key not in self._dirty:
                    break
            self.store(key, value)
            return value
        finally:
            del self._loading[key]

    def store(self, key: str, value: V) -> None:
        self.values[key] = value

    def invalidated(self, key: str) -> bool:
        """True if the key is cached and must be reloaded now."""
        if key in self._loading:
            self._dirty.add(key)
        return key in self.values


class _ApiKeys(_Entries[str | None]):
    """API key -> org. Keys that exist are kept (their number is what the operator added);
    misses are remembered in a bounded LRU with a TTL, so a client spraying made-up keys can
    neither grow memory nor push real misses out for good."""

    def __init__(self, *args: Any, negative_max: int = 10_000, negative_ttl_s: float = 30.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._negatives: OrderedDict[str, float] = OrderedDict()  # key -> expires at (monotonic)
        self._negative_max = negative_max
        self._negative_ttl_s = negative_ttl_s

    def peek(self, key: str) -> tuple[bool, str | None]:
        """(cached, org) without a Redis call; an expired miss is forgotten here."""
        value = self.values.get(key)
        if value is not None:
            return True, value
        expires = self._negatives.get(key)
        if expires is None:
            return False, None
        if expires < time.monotonic():
            del self._negatives[key]
            return False, None
        self._negatives.move_to_end(key)
        return True, None

    def lookup(self, key: str) -> tuple[bool, str | None]:
        """`peek`, counted as a cache hit when it answers."""
        cached, value = self.peek(key)
        if cached:
            metrics.TALLY.cache[self._hit] += 1
        return cached, value

    async def get(self, key: str) -> str | None:
        cached, value = self.lookup(key)
        return value if cached else await super().get(key)

    def store(self, key: str, value: str | None) -> None:
        if value is not None:
            self._negatives.pop(key, None)
            self.values[key] = value
            return
        self.values.pop(key, None)
        self._negatives[key] = time.monotonic() + self._negative_ttl_s
        self._negatives.move_to_end(key)
        while len(self._negatives) > self._negative_max:
            self._negatives.popitem(last=False)

    def invalidated(self, key: str) -> bool:
        """A key added or revoked elsewhere: forget a remembered miss, reload a cached key."""
        self._negatives.pop(key, None)
        return super().invalidated(key)

    def __len__(self) -> int:
        return len(self.values) + len(self._negatives)


class StateCache:
    def __init__(
        self,
        store: Store,
        *,
        refresh_interval_s: float,
        max_staleness_s: float,
        redis_timeout_s: float,
        negative_keys_max: int = 10_000,
        negative_keys_ttl_s: float = 30.0,
    ):
        self.store = store
        self.catalog: CatalogIndex | None = None
        self._catalog_raw: bytes | None = None
        self.orgs: _Entries[OrgPolicy] = _Entries("org", self._fetch_org, redis_timeout_s, self._state_lost)
        self.api_keys = _ApiKeys(
            "apikey",
            self._org_for_key,
            redis_timeout_s,
            self._state_lost,
            negative_max=negative_keys_max,
            negative_ttl_s=negative_keys_ttl_s,
        )
        self.epoch: bytes | None = None  # the state marker last seen in Redis
        self.lost_since: float | None = None  # monotonic time Redis was found without it
        self.refresh_interval_s = refresh_interval_s
        self.max_staleness_s = max_staleness_s
        self.synced_at: float | None = None  # monotonic time of the last full sync
        self.redis_error: str | None = None  # why the last sync failed (None: it did not)
        self.synced = asyncio.Event()  # set by the first successful sync
        self._tasks: list[asyncio.Task[None]] = []

    # --- what the Check path calls ------------------------------------------------------

    def staleness(self) -> float:
        return float("inf") if self.synced_at is None else time.monotonic() - self.synced_at

    def is_stale(self) -> bool:
        # Never synced: cold loads decide (and fail while Redis is unreachable or empty), but
        # what they cached is trusted no longer than max_staleness_s after a loss was seen.
        known_good = self.synced_at if self.synced_at is not None else self.lost_since
        return known_good is not None and time.monotonic() - known_good > self.max_staleness_s

    async def org(self, org_id: str) -> OrgPolicy:
        return await self.orgs.get(org_id)

    async def org_for_key_hash(self, key_hash: str) -> str | None:
        return await self.api_keys.get(key_hash)

    def cached_org_for_key(self, key_hash: str) -> tuple[bool, str | None]:
        """(cached, org) with no Redis call: the warm path, and how the caller knows a lookup
        would be cold."""
        return self.api_keys.lookup(key_hash)

    # --- keeping it current -------------------------------------------------------------

    async def _org_for_key(self, key_hash: str) -> str | None:
        return (await self.store.org_for_key_hashes([key_hash]))[0]

    async def _fetch_org(self, org_id: str) -> OrgPolicy:
        # The state marker was there, so a missing hash is an org that never had a policy.
        record = await self.store.org(org_id)
        return await compiled(org_id, record) if record else OrgPolicy(org_id)

    async def _apply_org(self, org_id: str, record: OrgRecord | None) -> None:
        """A reload's result. An org whose hash vanished while its cached policy was enabled
        keeps that policy: keys go missing through data loss, never through an admin action."""
        if record is None:
            cached = self.orgs.values.get(org_id)
            if cached is not None and cached.enabled:
                log.error("org_policy_missing_in_redis_keeping_cached", org_id=org_id, version=cached.version)
                return
        self.orgs.store(org_id, await compiled(org_id, record) if record else OrgPolicy(org_id))

    @property
    def state_lost(self) -> bool:
        return self.lost_since is not None

    def _state_lost(self) -> None:
        if self.lost_since is None:
            self.lost_since = time.monotonic()
            metrics.STATE_LOST.set(1)
            log.error(
                "redis_state_lost",
                error=str(StateLost()),
                enforcing="cached policies",
                unavailable_in_s=round(max(0.0, self.max_staleness_s - self.staleness()), 1)
                if self.synced_at is not None
                else 0,
            )

    def _state_found(self, epoch: bytes) -> None:
        if self.epoch is not None and epoch != self.epoch:
            log.warning("redis_state_replaced", previous_epoch=self.epoch.decode(), epoch=epoch.decode())
        if self.lost_since is not None:
            log.info("redis_state_restored", lost_for_s=round(time.monotonic() - self.lost_since, 1))
            self.lost_since = None
            metrics.STATE_LOST.set(0)
        self.epoch = epoch

    def _sync_failed(self, exc: BaseException) -> None:
        """Remember why Redis could not be read: /readyz and the log say it until a sync works."""
        self.redis_error = str(exc) or type(exc).__name__

    async def start(self) -> None:
        """Begin following Redis; returns at once (readiness waits for the first sync)."""
        self._tasks = [
            asyncio.create_task(self._follow_invalidations(), name="authz-invalidations"),
            asyncio.create_task(self._refresh_periodically(), name="authz-refresh"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def sync(self) -> None:
        """Reload the catalog and everything cached. Raises RedisError on failure. A Redis
        without the state marker changes nothing cached and does not count as a sync, so the
        last known policies are enforced until max_staleness_s, then Checks answer 503."""
        try:
            epoch, raw = await self.store.state_and_catalog()
            self._reload_catalog(raw)
            for chunk in _chunks(list(self.orgs.values)):
                for org_id, record in zip(chunk, await self.store.orgs(chunk), strict=True):
                    await self._apply_org(org_id, record)
            for chunk in _chunks(list(self.api_keys.values)):
                for key_hash, owner in zip(chunk, await self.store.org_for_key_hashes(chunk), strict=True):
                    self.api_keys.store(key_hash, owner)
        except StateLost:
            self.redis_error = None  # Redis answered: reachable, but without authz state
            self._state_lost()
            return
        self._state_found(epoch)
        self.synced_at = time.monotonic()
        self.redis_error = None
        self.synced.set()

    def _reload_catalog(self, raw: bytes | None) -> None:
        if raw is None:
            if self.catalog is not None:
                log.warning("catalog_removed_keeping_last", version=self.catalog.version)
            return
        if raw == self._catalog_raw:
            return
        try:
            parsed = catalog_mod.parse(raw)
        except catalog_mod.CatalogError as exc:
            # Keep enforcing the last good catalog; a bad write must not open or close the gate.
            log.error("catalog_invalid_in_redis", error=str(exc))
            return
        self.catalog = CatalogIndex.build(parsed)
        self._catalog_raw = raw
        metrics.CATALOG_VERSION.set(self.catalog.version)
        log.info(
            "catalog_loaded",
            version=self.catalog.version,
            providers=len(self.catalog.providers),
            models=len(self.catalog.models),
        )

    async def _handle(self, message: str) -> None:
        try:
            if message == CATALOG_MESSAGE:
                epoch, raw = await self.store.state_and_catalog()
                if self.state_lost or self.synced_at is None or epoch != self.epoch:
                    await self.sync()  # state (re)appeared: re-read everything cached, not just the catalog
                    return
                self._reload_catalog(raw)
            elif message.startswith(ORG_MESSAGE):
                org_id = message[len(ORG_MESSAGE) :]
                if self.orgs.invalidated(org_id):
                    await self._apply_org(org_id, await self.store.org(org_id))
                    log.debug("policy_applied", org_id=org_id, version=self.orgs.values[org_id].version)
            elif message.startswith(APIKEY_MESSAGE):
                key_hash = message[len(APIKEY_MESSAGE) :]
                if self.api_keys.invalidated(key_hash):
                    self.api_keys.store(key_hash, await self._org_for_key(key_hash))
        except StateLost:
            self._state_lost()

    async def _follow_invalidations(self) -> None:
        backoff = _MIN_BACKOFF
        channel = self.store.keys.invalidate
        while True:
            pubsub = None
            try:
                if self.store.cluster:
                    await self.store.redis.initialize()  # learn the slots before choosing a node
                pubsub = self.store.redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(channel)
                # Anything published while we were not subscribed is lost: resync now.
                await self.sync()
                if backoff != _MIN_BACKOFF:
                    log.info("redis_subscription_restored")
                backoff = _MIN_BACKOFF
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await self._handle(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not isinstance(exc, (RedisError, OSError)):
                    log.exception("invalidation_follower_error")
                metrics.REDIS_ERRORS.labels("subscribe").inc()
                self._sync_failed(exc)
                if backoff == _MIN_BACKOFF:  # once per outage, not once per retry
                    log.warning("redis_subscription_lost", error=str(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                try:
                    if pubsub is not None:
                        await asyncio.shield(pubsub.aclose())
                except (RedisError, OSError):
                    pass

    async def _refresh_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval_s)
            try:
                await self.sync()
            except Exception as exc:
                if not isinstance(exc, (RedisError, OSError)):
                    log.exception("refresh_error")
                metrics.REDIS_ERRORS.labels("refresh").inc()
                self._sync_failed(exc)
                log.warning("redis_refresh_failed", error=self.redis_error, staleness_s=round(self.staleness(), 1))


# --- stored records -> decision objects -------------------------------------------------

# Orgs share a handful of distinct policies: keep one Rules object per distinct value, so
# 100k cached orgs do not hold 100k copies of the same frozensets.
_RULES: dict[policy_rules.Rules, policy_rules.Rules] = {}


def _interned(rules: policy_rules.Rules) -> policy_rules.Rules:
    return _RULES.setdefault(rules, rules)


# An org record above this size (list entries, custom providers at their limits) takes
# milliseconds to compile: a worker thread does it, so the event loop keeps answering every
# other org's Checks in between (the GIL switches every few ms) instead of stalling.
_COMPILE_IN_THREAD_BYTES = 8 * 1024


async def compiled(org_id: str, fields: OrgRecord) -> OrgPolicy:
    if sum(len(v) for v in fields.values()) < _COMPILE_IN_THREAD_BYTES:
        return org_policy(org_id, fields)
    return await asyncio.to_thread(org_policy, org_id, fields)


def org_policy(org_id: str, fields: OrgRecord) -> OrgPolicy:
    """Reduce an org hash to what decisions need. A hash without a policy means no policy."""
    raw = fields.get(b"policy")
    p = policy_from_json(raw) if raw else None
    rules = _interned(rules_of(p))
    custom = {}
    for cid, cp in custom_providers_of(fields).providers.items():
        unmet = policy_rules.custom_unmet(cid, cp, rules, enabled=bool(p and p.enabled))
        custom[cid] = CustomEntry(unmet=unmet, models=frozenset(cp.models), attestation=cp)
    return OrgPolicy(
        org_id=org_id,
        version=p.version if p else 0,
        rules=rules,
        enabled=bool(p and p.enabled),
        enforced=not (p and p.mode == policy_pb2.POLICY_MODE_DRY_RUN),
        custom=custom,
        block_alerts=policy_rules.block_alerts_of(alert_settings(fields)),
    )
