"""The store and the in-process cache against a real redis-server (spawned on a free port)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
import redis.asyncio as aioredis

from authz.check.request import ReadConfig, read
from authz.check.security_event import security_event
from authz.check.verdict import Verdict
from authz.events.redis_sink import RedisStreamSink
from authz.events.spool import Spool
from authz.events.writer import EventWriter
from authz.ids import api_key_hash
from authz.policy import catalog as catalog_mod
from authz.reasons import Reason
from authz.state.cache import StateCache, StateUnavailable
from authz.state.layout import Keys
from authz.state.store import Store
from authz.v1 import policy_pb2
from devstack.stack import SAMPLE_CATALOG, RedisServer, closed_port
from support.checkrequests import check_request

_prefixes = itertools.count()


@pytest.fixture
async def store(redis_server):
    """A store whose Redis holds a state marker, as after the first catalog load."""
    client = aioredis.Redis.from_url(redis_server.url)
    keys = Keys(f"t{next(_prefixes)}:")
    await client.hset(keys.state, mapping={"epoch": "test"})
    yield Store(client, keys)
    await client.aclose()


def sample():
    return catalog_mod.parse(SAMPLE_CATALOG.read_text())


async def eventually(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def new_cache(store, **kw) -> StateCache:
    return StateCache(store, **{"refresh_interval_s": 600, "max_staleness_s": 1200, "redis_timeout_s": 0.5, **kw})


async def test_set_policy_bumps_version_and_publishes_in_one_transaction(store):
    pubsub = store.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(store.keys.invalidate)
    p1 = await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True), "alice")
    p2 = await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=False), "bob")
    assert (p1.version, p2.version, p2.updated_by) == (1, 2, "bob")
    assert p2.updated_at.seconds > 0
    messages = []
    deadline = time.monotonic() + 3
    while len(messages) < 2 and time.monotonic() < deadline:
        m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if m is not None:
            messages.append(m["data"].decode())
    assert messages == ["org:acme", "org:acme"]
    assert (await store.policy("acme")).version == 2
    await pubsub.aclose()


async def test_catalog_versions_increase(store):
    assert await store.load_catalog(sample(), "t") == 1
    assert await store.load_catalog(sample(), "t") == 2
    assert catalog_mod.parse(await store.catalog_raw()).version == 2


async def test_cache_follows_invalidations(store):
    await store.load_catalog(sample(), "t")
    await store.add_api_key("sk-1", "acme", "t")
    cache = new_cache(store)
    await cache.start()
    await asyncio.wait_for(cache.synced.wait(), 5)
    assert cache.catalog.version == 1
    assert await cache.org_for_key_hash(api_key_hash("sk-1")) == "acme"
    assert not (await cache.org("acme")).enabled

    await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True), "t")

    async def enabled():
        return cache.orgs.values["acme"].enabled

    await eventually(enabled)
    assert cache.orgs.values["acme"].rules.requirements == {"gdpr"}

    await store.revoke_api_key(api_key_hash("sk-1"), "t")

    async def revoked():
        return cache.api_keys.peek(api_key_hash("sk-1")) == (True, None)

    await eventually(revoked)
    await store.load_catalog(sample(), "t")

    async def new_catalog():
        return cache.catalog.version == 2

    await eventually(new_catalog)
    await cache.stop()


async def test_periodic_refresh_catches_writes_that_were_never_published(store):
    await store.load_catalog(sample(), "t")
    cache = new_cache(store, refresh_interval_s=0.1, max_staleness_s=5)
    await cache.start()
    await asyncio.wait_for(cache.synced.wait(), 5)
    assert not (await cache.org("quiet")).enabled
    stored = policy_pb2.CompliancePolicy(enabled=True, version=9)
    from authz.state.layout import policy_to_json

    await store.redis.hset(store.keys.org("quiet"), "policy", policy_to_json(stored))  # no PUBLISH

    async def refreshed():
        return cache.orgs.values["quiet"].version == 9

    await eventually(refreshed)
    await cache.stop()


async def test_a_warm_cache_makes_no_redis_call(store, redis_server):
    await store.load_catalog(sample(), "t")
    await store.add_api_key("sk-warm", "warm", "t")
    await store.set_policy("warm", policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True), "t")
    cache = new_cache(store)
    await cache.start()
    await asyncio.wait_for(cache.synced.wait(), 5)
    await cache.org_for_key_hash(api_key_hash("sk-warm"))
    await cache.org("warm")

    async def calls() -> int:
        stats = await store.redis.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))

    before = await calls()
    for _ in range(200):
        assert await cache.org_for_key_hash(api_key_hash("sk-warm")) == "warm"
        assert (await cache.org("warm")).enabled
    assert await calls() == before
    await cache.stop()


async def test_concurrent_misses_share_one_fetch(store, redis_server):
    await store.set_policy("many", policy_pb2.CompliancePolicy(enabled=True), "t")
    cache = new_cache(store)

    async def hgetall_calls() -> int:
        return (await store.redis.info("commandstats")).get("cmdstat_hgetall", {}).get("calls", 0)

    before = await hgetall_calls()
    results = await asyncio.gather(*(cache.org("many") for _ in range(50)))
    assert all(r.enabled for r in results)
    assert await hgetall_calls() - before == 1


async def test_redis_down_with_nothing_cached_is_unavailable(tmp_path):
    server = RedisServer(tmp_path, port=closed_port())  # never started
    client = aioredis.Redis.from_url(server.url, socket_connect_timeout=0.2)
    cache = new_cache(Store(client, Keys()), redis_timeout_s=0.3)
    with pytest.raises(StateUnavailable):
        await cache.org("acme")
    with pytest.raises(StateUnavailable):
        await cache.org_for_key_hash("0" * 64)
    await client.aclose()


async def test_stale_after_max_staleness(store):
    cache = new_cache(store, refresh_interval_s=0.05, max_staleness_s=0.1)
    assert not cache.is_stale()  # never synced: cold loads decide
    await cache.sync()
    assert not cache.is_stale()
    cache.synced_at -= 1.0
    assert cache.is_stale()


async def test_events_survive_a_redis_outage_in_order(tmp_path):
    server = RedisServer(tmp_path).start()
    client = aioredis.Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.5)
    emitter = EventWriter(
        RedisStreamSink(client, "authz:events:security", maxlen=1000),
        Spool(tmp_path / "spool", 1 << 20),
        queue_size=100,
    )
    emitter.start()
    facts = read(
        check_request(
            {"model": "m", "messages": [{"content": "PROMPT-MARKER"}]}, {"authorization": "Bearer sk-SECRET"}
        ),
        ReadConfig(),
    )
    server.stop()
    ids = []
    for i in range(5):
        event = security_event(Verdict(Reason.UNKNOWN_MODEL, org_id="acme", model=f"m{i}"), facts, f"d{i}", "abc")
        ids.append(event["event_id"])
        emitter.emit(event)
    assert not await emitter.flush(0.5)  # Redis is down: nothing written yet, nothing dropped
    server = RedisServer(tmp_path, port=server.port).start()
    assert await emitter.flush(10)
    entries = await client.xrange("authz:events:security")
    assert [e[1][b"event_id"].decode() for e in entries] == ids
    raw = json.dumps([{k.decode(): v.decode() for k, v in e[1].items()} for e in entries])
    assert "PROMPT-MARKER" not in raw and "sk-SECRET" not in raw
    await emitter.stop(1)
    await client.aclose()
    server.stop()


def test_unknown_key_cache_is_a_bounded_lru_with_ttl(monkeypatch):
    import time as time_mod

    from authz.state.cache import _ApiKeys

    async def never(_key):
        raise AssertionError("no fetch expected")

    keys = _ApiKeys("apikey", never, 0.1, negative_max=100, negative_ttl_s=30)
    for i in range(1000):
        keys.store(f"k{i}", None)
    assert len(keys) == 100
    assert keys.peek("k999") == (True, None) and keys.peek("k0") == (False, None)  # oldest went first
    keys.store("real", "acme")
    assert keys.peek("real") == (True, "acme")
    now = time_mod.monotonic()
    monkeypatch.setattr("authz.state.cache.time.monotonic", lambda: now + 31)
    assert keys.peek("k999") == (False, None)  # expired: the next lookup asks Redis again
    assert keys.peek("real") == (True, "acme")  # real keys do not expire (invalidations keep them current)


def test_unknown_key_limiter_refills_and_forgets():
    from authz.server.unknown_keys import UnknownKeyLimiter

    limiter = UnknownKeyLimiter(per_s=1000, burst=3, max_addresses=2)
    for _ in range(3):
        assert not limiter.exhausted("a")
        limiter.charge("a")
    assert limiter.exhausted("a") and not limiter.exhausted("b")
    import time as time_mod

    time_mod.sleep(0.01)  # 1000/s: ten tokens back, capped at the burst
    assert not limiter.exhausted("a")
    limiter.charge("b"), limiter.charge("c")
    assert len(limiter._buckets) == 2
    assert not UnknownKeyLimiter(per_s=0, burst=0).exhausted("a")


async def test_an_empty_redis_is_lost_state_not_no_policy(store):
    await store.load_catalog(sample(), "t")
    await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True), "t")
    await store.add_api_key("sk-1", "acme", "t")
    cache = new_cache(store)
    await cache.sync()
    assert (await cache.org("acme")).enabled and await cache.org_for_key_hash(api_key_hash("sk-1")) == "acme"
    synced_at = cache.synced_at

    await store.redis.flushdb()
    await cache.sync()
    assert cache.state_lost and cache.synced_at == synced_at  # not a sync: staleness keeps growing
    assert (await cache.org("acme")).enabled  # cached: still enforced
    assert await cache.org_for_key_hash(api_key_hash("sk-1")) == "acme"
    with pytest.raises(StateUnavailable):
        await cache.org("never-seen")  # not "no policy"
    with pytest.raises(StateUnavailable):
        await cache.org_for_key_hash(api_key_hash("sk-never-seen"))  # not "unknown key"
    from authz.state.writes import StateLost

    with pytest.raises(StateLost):
        await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=False), "t")
    with pytest.raises(StateLost):
        await store.add_api_key("sk-2", "acme", "t")
    await store.load_catalog(sample(), "operator")  # a new epoch: writes work again
    await cache.sync()
    assert not cache.state_lost and cache.synced_at > synced_at
    assert (await cache.org("acme")).enabled  # its hash is gone, its cached policy is kept
    assert await cache.org_for_key_hash(api_key_hash("sk-1")) is None  # keys only ever fail closed (401)


async def test_a_reconnected_subscription_resyncs_what_it_missed(store, redis_server):
    """A change whose invalidation was published while the subscription was down is only seen
    through the resync that follows every reconnect (the periodic one is 10 minutes away)."""
    from authz.state.layout import policy_to_json

    await store.load_catalog(sample(), "t")
    cache = new_cache(store, refresh_interval_s=600, max_staleness_s=1200)
    await cache.start()
    await asyncio.wait_for(cache.synced.wait(), 5)
    assert not (await cache.org("missed")).enabled
    # The change lands with no invalidation at all: exactly what a subscriber that was
    # disconnected at publish time sees.
    await store.redis.hset(
        store.keys.org("missed"),
        "policy",
        policy_to_json(policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True, version=1)),
    )
    await asyncio.sleep(0.2)
    assert not cache.orgs.values["missed"].enabled  # nothing told the cache
    killed = await store.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1

    async def enabled():
        return cache.orgs.values["missed"].enabled

    await eventually(enabled, timeout=5)
    await cache.stop()


async def test_a_catalog_message_from_a_replaced_state_reloads_cached_orgs_and_keys(store):
    """Redis replaced (failover to a replica that missed writes, a restore): the next message
    may be a catalog load, and everything cached came from the old state, not just the catalog."""
    from authz.state.layout import CATALOG_MESSAGE, policy_to_json

    await store.load_catalog(sample(), "t")
    await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True), "t")
    await store.add_api_key("sk-moved", "acme", "t")
    cache = new_cache(store)  # no periodic resync within the test
    await cache.start()
    await asyncio.wait_for(cache.synced.wait(), 5)
    assert (await cache.org("acme")).rules.requirements == {"gdpr"}
    assert await cache.org_for_key_hash(api_key_hash("sk-moved")) == "acme"
    # Stop listening first: in the scenario no invalidation reaches this replica, and a revoke
    # message seen here would evict the key before the catalog message could reload it.
    await cache.stop()
    cache._tasks = []
    # The replacing state: another epoch, another policy, the key owned by another org.
    await store.redis.hset(store.keys.state, "epoch", "replaced")
    replaced = policy_pb2.CompliancePolicy(enabled=True, require_iso27001=True, version=7)
    await store.redis.hset(store.keys.org("acme"), "policy", policy_to_json(replaced))
    await store.revoke_api_key(api_key_hash("sk-moved"), "t")
    await store.add_api_key("sk-moved", "other", "t")
    await cache._handle(CATALOG_MESSAGE)
    assert cache.epoch == b"replaced"
    assert cache.orgs.values["acme"].rules.requirements == {"iso27001"}
    assert cache.api_keys.peek(api_key_hash("sk-moved")) == (True, "other")


async def test_an_invalidation_during_a_cold_load_is_not_lost(store):
    """The load read the old policy, the change and its message arrived before it returned:
    the value cached must be the new one (the load reads again)."""
    from authz.state.layout import ORG_MESSAGE

    await store.load_catalog(sample(), "t")
    await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True), "t")
    cache = new_cache(store)
    original = cache.orgs._fetch
    read, release = asyncio.Event(), asyncio.Event()

    async def slow_first(key):
        value = await original(key)
        if not read.is_set():
            read.set()
            await release.wait()
        return value

    cache.orgs._fetch = slow_first
    loading = asyncio.create_task(cache.org("acme"))
    await read.wait()
    await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=True, require_iso27001=True), "t")
    await cache._handle(ORG_MESSAGE + "acme")
    release.set()
    assert (await loading).rules.requirements == {"iso27001"}
    assert cache.orgs.values["acme"].rules.requirements == {"iso27001"}


async def test_a_large_org_record_is_compiled_off_the_event_loop(monkeypatch):
    """An org at the limits takes milliseconds to compile: a worker thread does it."""
    from authz.state import cache as cache_mod
    from authz.state.layout import policy_to_json

    threads = []
    real = asyncio.to_thread

    async def counted(fn, *args):
        threads.append(fn.__name__)
        return await real(fn, *args)

    monkeypatch.setattr(cache_mod.asyncio, "to_thread", counted)
    small = {b"policy": policy_to_json(policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True)).encode()}
    big_policy = policy_pb2.CompliancePolicy(enabled=True, model_denylist=[f"some-model-{i:04}" for i in range(512)])
    big_policy.provider_denylist.extend(f"provider-{i}" for i in range(512))
    big = {b"policy": policy_to_json(big_policy).encode()}
    assert (await cache_mod.compiled("a", small)).rules.requirements == {"gdpr"}
    assert threads == []
    assert "some-model-0511" in (await cache_mod.compiled("b", big)).rules.model_deny
    assert threads == ["org_policy"]
