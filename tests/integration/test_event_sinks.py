"""The event-sink contract, run against every sink `event_sinks` accepts: records stored in
order, replays idempotent (and reported as not new), an unavailable sink's events spooled and
replayed by the writer with nothing lost. A sink listed in authz.events.registry without a case
here, without its settings or without documentation fails (docs/contributing.md)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from authz import config
from authz.check.request import ReadConfig, read
from authz.check.security_event import blocked, security_event
from authz.check.verdict import Verdict
from authz.events import registry
from authz.events.file_sink import FileSink
from authz.events.records import record
from authz.events.redis_sink import RedisStreamSink
from authz.events.sinks import FanOut
from authz.events.spool import Spool
from authz.events.writer import EventWriter
from authz.reasons import Reason
from support.checkrequests import check_request

ROOT = Path(__file__).resolve().parents[2]
FACTS = read(check_request({"model": "m"}, {"authorization": "Bearer k"}), ReadConfig())
_n = itertools.count()
SINK_NAMES = tuple(registry.BY_NAME)


def event(i: int) -> dict:
    return security_event(Verdict(Reason.UNKNOWN_MODEL, org_id="acme", model=f"m{i}"), FACTS, f"d{i}", "k")


class RedisCase:
    def __init__(self, url: str, tmp: Path):
        self.url, self.stream = url, f"sinks{next(_n)}:events:security"

    def sink(self):
        return RedisStreamSink(aioredis.Redis.from_url(self.url), self.stream, maxlen=1000)

    def broken(self):
        dead = aioredis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
        return RedisStreamSink(dead, self.stream, maxlen=1000)

    async def stored(self) -> list[str]:
        client = aioredis.Redis.from_url(self.url)
        entries = await client.xrange(self.stream)
        await client.aclose()
        return [fields[b"event_id"].decode() for _, fields in entries]


class FileCase:
    def __init__(self, url: str, tmp: Path):
        self.path = tmp / "out" / "events.jsonl"
        (tmp / "not-a-dir").write_text("")
        self.blocked = tmp / "not-a-dir" / "events.jsonl"

    def sink(self):
        return FileSink(self.path)

    def broken(self):
        return FileSink(self.blocked)

    async def stored(self) -> list[str]:
        if not self.path.exists():
            return []
        return [json.loads(line)["event_id"] for line in self.path.read_text().splitlines()]


SINKS = {"redis": RedisCase, "file": FileCase}


def test_every_sink_has_a_contract_case():
    assert set(SINKS) == set(SINK_NAMES)


@pytest.mark.parametrize("name", SINK_NAMES)
async def test_records_are_stored_in_order_and_replays_are_not_new(name, redis_server, tmp_path):
    case = SINKS[name](redis_server.url, tmp_path)
    sink = case.sink()
    records = [record(event(i)) for i in range(5)]
    assert await sink.write(records[:3]) == records[:3]
    assert await sink.write(records[1:]) == records[3:]  # a replay overlapping what was stored
    assert await case.stored() == [r["event_id"] for r in records]
    await sink.close()


@pytest.mark.parametrize("name", SINK_NAMES)
async def test_an_unavailable_sink_loses_nothing(name, redis_server, tmp_path):
    case = SINKS[name](redis_server.url, tmp_path)
    events = [event(i) for i in range(4)]
    down = EventWriter(case.broken(), Spool(tmp_path / "spool", 1 << 20), queue_size=10)
    down.start()
    for e in events:
        down.emit(e)
    assert not await down.flush(0.5), "an unavailable sink cannot have taken them"
    await down.stop(0.1)
    assert await case.stored() == []
    back = EventWriter(case.sink(), Spool(tmp_path / "spool", 1 << 20, rescan_s=0), queue_size=10)
    back.start()
    assert await back.flush(10)
    assert await case.stored() == [e["event_id"] for e in events]
    await back.stop(1)


@pytest.mark.parametrize("name", SINK_NAMES)
async def test_more_blocks_queued_than_one_batch_holds_are_all_stored(name, redis_server, tmp_path):
    """A burst queued while a write was under way (here: before the writer starts) goes out in
    several batches: the writer once took the whole queue for one batch and kept only its first
    500. Queued as a Check queues them: the block, made into its event by the writer."""
    case = SINKS[name](redis_server.url, tmp_path)
    writer = EventWriter(case.sink(), Spool(tmp_path / "spool", 1 << 20), queue_size=2000)
    verdicts = [
        Verdict(Reason.UNKNOWN_MODEL, org_id="acme", model=f"m{i}") for i in range(900)
    ]  # < the stream's maxlen
    for i, verdict in enumerate(verdicts):
        writer.emit(blocked(verdict, FACTS, f"d{i}", "k"))
    writer.start()
    assert await writer.flush(30)
    stored = await case.stored()
    assert len(stored) == len(set(stored)) == len(verdicts)
    await writer.stop(1)


async def test_fan_out_reports_what_the_first_sink_newly_stored(redis_server, tmp_path):
    redis_case, file_case = RedisCase(redis_server.url, tmp_path), FileCase(redis_server.url, tmp_path)
    both = FanOut([redis_case.sink(), file_case.sink()])
    records = [record(event(i)) for i in range(3)]
    assert await both.write(records) == records
    assert await both.write(records) == []
    assert await redis_case.stored() == await file_case.stored() == [r["event_id"] for r in records]


@pytest.mark.parametrize("names", [*SINK_NAMES, ",".join(SINK_NAMES)])
async def test_the_app_builds_the_sinks_the_setting_names(names, tmp_path):
    from authz.server.app import App

    settings = config.load(None, {"AUTHZ_EVENT_SINKS": names, "AUTHZ_EVENTS_FILE": str(tmp_path / "e.jsonl")})
    app = App(settings)
    assert app.events.sink.name == names.replace(",", "+")
    await app.redis.aclose()
    await app.alerts_redis.aclose()


@pytest.mark.parametrize("name", SINK_NAMES)
def test_every_sink_is_documented(name):
    api = (ROOT / "docs" / "api.md").read_text()
    assert f"- `{name}`" in api, f"docs/api.md, Security events: describe the {name!r} sink"
    assert f"`{name}`" in (ROOT / "docs" / "settings.md").read_text().split("`event_sinks`", 1)[1]


def test_a_bad_sink_setting_says_what_to_do():
    from authz.server import components

    for environ, message in [
        ({"AUTHZ_EVENT_SINKS": "kafka"}, "name one or more of redis, file"),
        ({"AUTHZ_EVENT_SINKS": "redis,flie"}, "did you mean 'file'"),
        ({"AUTHZ_EVENT_SINKS": "redis,redis"}, "each once"),
        ({"AUTHZ_EVENT_SINKS": "redis,file"}, "set 'events_file'"),
    ]:
        with pytest.raises(config.ConfigError, match=message):
            components.check(config.load(None, environ))


@pytest.mark.parametrize("name", SINK_NAMES)
def test_every_sink_declares_the_settings_it_reads(name):
    module = registry.BY_NAME[name]
    fields = {f.name for f in dataclasses.fields(config.Settings)}
    assert module.SETTINGS and set(module.SETTINGS) <= fields, module.SETTINGS
    source = Path(module.__file__).read_text()
    assert all(f"settings.{setting}" in source for setting in module.SETTINGS)
