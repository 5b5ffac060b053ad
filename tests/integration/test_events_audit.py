"""Security-event delivery (spool, replay, idempotency) and the audit hash chain, against a
real redis-server."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest
import redis
import redis.asyncio as aioredis

from authz.check.request import ReadConfig, read
from authz.check.security_event import security_event
from authz.check.verdict import Verdict
from authz.events.records import record
from authz.events.redis_sink import RedisStreamSink
from authz.events.spool import Spool
from authz.events.writer import EventWriter
from authz.ids import api_key_hash
from authz.metrics import EVENTS
from authz.policy import catalog as catalog_mod
from authz.reasons import Reason
from authz.state import audit
from authz.state.layout import Keys
from authz.state.store import Store
from authz.v1 import policy_pb2
from devstack.stack import SAMPLE_CATALOG, RedisServer
from support.checkrequests import check_request

_n = itertools.count()
FACTS = read(check_request({"model": "m"}, {"authorization": "Bearer sk-x"}), ReadConfig())


def event(i: int):
    return security_event(Verdict(Reason.UNKNOWN_MODEL, org_id="acme", model=f"m{i}"), FACTS, f"d{i}", "k")


def counter(name: str) -> float:
    return EVENTS[name]._value.get()


# --- spool ------------------------------------------------------------------------------


def test_spool_appends_replays_in_order_and_truncates(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.open()
    assert not spool.pending()
    records = [record(event(i)) for i in range(5)]
    assert spool.append(records) == 5 and spool.pending()
    batch, end = spool.own_batch(3)
    assert batch == records[:3]
    spool.consumed(end)
    batch, end = spool.own_batch(10)
    assert batch == records[3:]
    spool.consumed(end)
    assert not spool.pending()
    spool.close()
    assert list(tmp_path.iterdir()) == []  # empty spools are removed


def test_spool_respects_its_size_limit(tmp_path):
    records = [record(event(i)) for i in range(10)]
    one = len(json.dumps(records[0]).encode()) + 1
    spool = Spool(tmp_path, one * 3 + one // 2)
    spool.open()
    kept = spool.append(records)
    assert kept == 3
    spool.close()


def test_orphaned_spool_of_a_dead_process_is_found_and_a_cut_line_skipped(tmp_path):
    records = [record(event(i)) for i in range(3)]
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in records) + b'{"event_id": "cut'
    (tmp_path / "events-999999-dead.jsonl").write_bytes(lines)
    spool = Spool(tmp_path, 1 << 20)
    spool.open()
    assert spool.pending()
    dropped = counter("dropped")
    [(path, found)] = list(spool.orphan_batches())
    assert found == records and counter("dropped") == dropped + 1
    spool.done(path)
    assert not path.exists() and not spool.pending()
    spool.close()


def test_a_live_process_spool_is_not_taken(tmp_path):
    a, b = Spool(tmp_path, 1 << 20), Spool(tmp_path, 1 << 20, rescan_s=0)
    a.open()
    a.append([record(event(1))])
    b.open()
    assert not b.pending() and list(b.orphan_batches()) == []  # a still holds its lock
    a.close(remove_if_empty=False)
    assert b.pending() and len(list(b.orphan_batches())) == 1
    b.close()


# --- writer and Redis sink ----------------------------------------------------------------------------


async def test_writes_are_idempotent_by_event_id(redis_server, tmp_path):
    client = aioredis.Redis.from_url(redis_server.url)
    stream = f"idem{next(_n)}:events:security"
    sink = RedisStreamSink(client, stream, maxlen=1000)
    records = [record(event(i)) for i in range(3)]
    late = record(event(9))
    assert await sink.write(records) == records
    assert await sink.write(records[1:] + [late]) == [late]  # a replay overlapping what was written
    entries = await client.xrange(stream)
    assert [e[1][b"event_id"].decode() for e in entries] == [r["event_id"] for r in records + [late]]
    await client.aclose()


async def test_events_spooled_at_shutdown_are_replayed_by_the_next_process(tmp_path):
    server = RedisServer(tmp_path).start()
    url = server.url
    server.stop()
    stream = "authz:events:security"
    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.2, socket_timeout=0.5)
    first = EventWriter(
        RedisStreamSink(client, stream, maxlen=1000), Spool(tmp_path / "spool", 1 << 20), queue_size=100
    )
    first.start()
    ids = []
    for i in range(7):
        e = event(i)
        ids.append(e["event_id"])
        first.emit(e)
    assert not await first.stop(timeout=0.3)  # Redis down: spooled, not lost
    assert list((tmp_path / "spool").glob("*.jsonl"))

    server = RedisServer(tmp_path, port=server.port).start()
    second = EventWriter(
        RedisStreamSink(client, stream, maxlen=1000), Spool(tmp_path / "spool", 1 << 20), queue_size=100
    )
    second.start()
    assert await second.flush(10)
    entries = await client.xrange(stream)
    assert [e[1][b"event_id"].decode() for e in entries] == ids
    await second.stop(1)
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    await client.aclose()
    server.stop()


def org_event(org: str, i: int):
    return security_event(Verdict(Reason.UNKNOWN_MODEL, org_id=org, model=f"m{i}"), FACTS, f"d{i}", "k")


async def test_one_orgs_flood_never_hides_another_orgs_events(redis_server, tmp_path):
    client = aioredis.Redis.from_url(redis_server.url)
    keys = Keys(f"flood{next(_n)}:")
    sink = RedisStreamSink(client, keys.security_events, maxlen=1_000_000, org_maxlen=1000)
    victim = org_event("victim", 0)
    await sink.write([record(victim)])
    flood = [record(org_event("flooder", i)) for i in range(10_500)]
    for start in range(0, len(flood), 500):
        await sink.write(flood[start : start + 500])
    store = Store(client, keys)
    assert [e["event_id"] for e in await store.recent(keys.security_events, "victim", 50)] == [victim["event_id"]]
    newest = await store.recent(keys.security_events, "flooder", 3)
    assert [e["model"] for e in newest] == ["m10499", "m10498", "m10497"]  # newest first
    # The flooder's own listing is bounded; the shared stream keeps everything for export.
    assert await client.xlen(f"{keys.security_events}:org:flooder") < 1200
    assert await client.xlen(keys.security_events) == 10_501
    await client.aclose()


async def test_replay_dedupe_memory_is_bounded_and_expires(redis_server, tmp_path):
    client = aioredis.Redis.from_url(redis_server.url)
    stream = f"dedupe{next(_n)}:events:security"
    sink = RedisStreamSink(client, stream, maxlen=100_000, dedupe_window_s=3600)
    records = [record(event(i)) for i in range(5000)]
    for start in range(0, len(records), 500):
        await sink.write(records[start : start + 500])
    assert await sink.write(records[:500]) == []  # a replay of what was written: no duplicate
    assert await client.xlen(stream) == 5000
    seen = [k async for k in client.scan_iter(match=f"{{{stream}}}:seen:*")]
    assert 1 <= len(seen) <= 2  # one set per hour of event time, not a key per event
    per_event = sum([await client.memory_usage(k) for k in seen]) / 5000
    assert per_event < 100, per_event  # the old key per event cost ~860 B
    for k in seen:
        assert 3600 < await client.ttl(k) <= 7200  # window + one bucket
    await client.aclose()


# --- audit chain ------------------------------------------------------------------------


@pytest.fixture
async def store(redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    yield Store(client, Keys(f"audit{next(_n)}:"))
    await client.aclose()


async def make_history(store: Store) -> None:
    await store.load_catalog(catalog_mod.parse(SAMPLE_CATALOG.read_text()), "ops@corp")
    await store.set_plan("acme", "enterprise", "billing")
    await store.add_api_key("sk-audit", "acme", "alice@acme")
    await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True), "alice@acme")
    await store.set_policy("acme", policy_pb2.CompliancePolicy(enabled=False), "bob@acme")
    await store.revoke_api_key(api_key_hash("sk-audit"), "bob@acme")


async def test_every_change_is_audited_with_actor_before_and_after(store):
    await make_history(store)
    events = [json.loads(text) for _, text, _ in await store.audit_entries()]
    assert [(e["seq"], e["action"], e["actor"]) for e in events] == [
        (1, "catalog.load", "ops@corp"),
        (2, "org.set_plan", "billing"),
        (3, "apikey.add", "alice@acme"),
        (4, "policy.set", "alice@acme"),
        (5, "policy.set", "bob@acme"),
        (6, "apikey.revoke", "bob@acme"),
    ]
    assert json.loads(events[0]["after"])["changes"]["providers_added"][0] == "anthropic"
    assert events[3]["before"] == "" and json.loads(events[3]["after"])["require_gdpr"] is True
    assert json.loads(events[4]["before"])["version"] == 1 and json.loads(events[4]["after"])["version"] == 2
    assert events[2]["target"] == api_key_hash("sk-audit")[:12]
    assert "sk-audit" not in json.dumps(events)
    assert audit.verify(await store.audit_entries(), await store.audit_head()).ok


async def test_catalog_diff_names_what_changed(store):
    cat = catalog_mod.parse(SAMPLE_CATALOG.read_text())
    await store.load_catalog(cat, "ops")
    cat2 = catalog_mod.parse(SAMPLE_CATALOG.read_text())
    cat2.providers["deepseek"].data_policy.gdpr = True
    del cat2.models["kimi-k2"]
    await store.load_catalog(cat2, "ops")
    last = json.loads((await store.audit_entries())[-1][1])
    changes = json.loads(last["after"])["changes"]
    assert list(changes["providers_changed"]) == ["deepseek"]
    assert changes["providers_changed"]["deepseek"]["after"]["gdpr"] is True
    assert changes["models_removed"] == ["kimi-k2"]
    assert json.loads(last["before"])["version"] == 1


def rewrite(client: redis.Redis, stream: str, entries: list[tuple[str, str, str]]) -> None:
    """An attacker with write access re-creating the stream with chosen entries."""
    client.delete(stream)
    for _, text, hashed in entries:
        client.xadd(stream, {"event": text, "hash": hashed})


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        ("edit", "modified", 3),
        ("edit-and-rehash", "modified", 3),
        ("edit-and-rehash-last", "modified", 6),  # only the head can tell
        ("delete", "deleted", 3),
        ("delete-last", "deleted", 6),
        ("reorder", "reordered", 3),
    ],
)
async def test_tampering_is_detected(store, redis_server, tamper, kind, seq):
    await make_history(store)
    entries = await store.audit_entries()
    client = redis.Redis.from_url(redis_server.url)
    stream = store.keys.audit_events
    if tamper == "edit":
        entry_id, text, hashed = entries[2]
        entries[2] = (entry_id, text.replace("alice@acme", "mallory"), hashed)
        rewrite(client, stream, entries)
    elif tamper == "edit-and-rehash":
        entry_id, text, _ = entries[2]
        forged = text.replace("alice@acme", "mallory")
        entries[2] = (entry_id, forged, audit.digest(forged))
        rewrite(client, stream, entries)
    elif tamper == "edit-and-rehash-last":
        entry_id, text, _ = entries[-1]
        forged = text.replace("bob@acme", "mallory")
        assert forged != text
        entries[-1] = (entry_id, forged, audit.digest(forged))
        rewrite(client, stream, entries)
    elif tamper == "delete":
        client.xdel(stream, entries[2][0])
    elif tamper == "delete-last":
        client.xdel(stream, entries[-1][0])
    elif tamper == "reorder":
        entries[2], entries[3] = entries[3], entries[2]
        rewrite(client, stream, entries)
    client.close()
    result = audit.verify(await store.audit_entries(), await store.audit_head())
    assert not result.ok
    assert (result.problem.kind, result.problem.seq) == (kind, seq)


def test_audit_verify_cli_reports_tampering(redis_server):
    env = {"AUTHZ_REDIS_URL": redis_server.url, "AUTHZ_KEY_PREFIX": "auditcli:", "PATH": "/usr/bin:/bin"}

    def authz(*args):
        return subprocess.run(
            [sys.executable, "-m", "authz", *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert authz("--actor", "ops", "catalog", "load", "--init", str(SAMPLE_CATALOG)).returncode == 0
    assert authz("--actor", "ops", "org", "set-plan", "acme", "enterprise").returncode == 0
    ok = authz("audit", "verify")
    assert ok.returncode == 0 and "ok: 2 audit events" in ok.stdout
    listed = [json.loads(line) for line in authz("audit", "list").stdout.splitlines()]
    assert [e["action"] for e in listed] == ["catalog.load", "org.set_plan"]
    client = redis.Redis.from_url(redis_server.url)
    first = client.xrange("auditcli:events:audit")[0][0]
    client.xdel("auditcli:events:audit", first)
    bad = authz("audit", "verify")
    assert bad.returncode == 3 and "event 1 deleted" in bad.stdout


def test_event_dicts_are_exactly_the_json_form_of_the_proto():
    """Events are built as dicts for speed; the proto stays the schema: nothing unknown,
    nothing renamed, and the round trip through the proto is lossless."""
    from google.protobuf import json_format

    from authz.policy.rules import Unmet
    from authz.v1 import events_pb2

    verdict = Verdict(
        Reason.PROVIDER_NOT_COMPLIANT,
        org_id="acme",
        policy_version=4,
        model="p/m",
        routing="pinned",
        provider="p",
        blocked=(("p", (Unmet("gdpr", "unknown"),)),),
        enforced=False,
    )
    e = security_event(verdict, FACTS, "dec", "keyid")
    proto = json_format.ParseDict(e, events_pb2.SecurityEvent())  # raises on any unknown field
    back = json_format.MessageToDict(proto, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    assert {k: v for k, v in back.items() if k != "time"} == {k: v for k, v in e.items() if k != "time"}
    assert proto.time.ToDatetime().year >= 2026 and e["http_status"] == 200


async def test_the_writer_survives_an_unexpected_error_and_keeps_the_events(redis_server, tmp_path):
    client = aioredis.Redis.from_url(redis_server.url)
    stream = f"boom{next(_n)}:events:security"
    real = RedisStreamSink(client, stream, maxlen=1000)
    calls = []

    class Flaky:  # any object with the sink interface
        name = "flaky"

        async def write(self, records):
            calls.append(len(records))
            if len(calls) == 1:
                raise RuntimeError("a bug, not a Redis error")
            return await real.write(records)

        async def close(self):
            pass

    emitter = EventWriter(Flaky(), Spool(tmp_path, 1 << 20, rescan_s=0), queue_size=10)
    emitter.start()
    e = event(1)
    emitter.emit(e)
    assert await emitter.flush(10), "spooled, then replayed"
    assert [x[1][b"event_id"].decode() for x in await client.xrange(stream)] == [e["event_id"]]
    emitter.emit(event(2))
    assert await emitter.flush(10) and await client.xlen(stream) == 2, "the writer is still alive"
    await emitter.stop(1)
    await client.aclose()
