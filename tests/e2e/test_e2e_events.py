"""Security events through the real Envoy survive Redis outages and authz being killed:
exactly one event per blocked request, in order, none lost, none duplicated."""

from __future__ import annotations

import signal

import httpx
import pytest

from devstack.stack import RedisServer, Stack, wait_until
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e

N = 25


@pytest.fixture
def events_stack(tmp_path):
    s = Stack.start(tmp_path, authz_settings={"refresh_interval_s": "30", "max_staleness_s": "120"})
    s.admin.load_catalog()
    s.admin.add_api_key("sk-ev", "ev-org")
    s.admin.set_policy("ev-org", **DEMO_POLICY)
    s.wait_ready()
    yield s
    s.stop()


def blocked(stack: Stack, i: int) -> httpx.Response:
    return httpx.post(
        stack.url + "/v1/chat/completions",
        json={"model": "deepseek/deepseek-v3.2", "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": "Bearer sk-ev", "user-agent": f"req-{i:03d}"},
        timeout=10,
    )


def request_ids(stack: Stack) -> list[str]:
    """Which requests the events belong to (Envoy replaces client request ids; the user agent is kept)."""
    return [e["user_agent"] for e in stack.admin.security_events()]


def restart_redis(stack: Stack) -> None:
    stack.redis = RedisServer(stack.workdir, port=stack.redis.port).start()


def spooled_lines(stack: Stack) -> int:
    return sum(p.read_text().count("\n") for p in (stack.workdir / "spool").glob("*.jsonl"))


def test_redis_outage_loses_and_duplicates_nothing(events_stack):
    s = events_stack
    assert blocked(s, -1).status_code == 403  # warm: the org is cached
    wait_until(lambda: len(request_ids(s)) == 1, 5, "first event")
    s.redis.stop()
    for i in range(N):
        assert blocked(s, i).status_code == 403
    restart_redis(s)  # empty: it keeps nothing on disk
    expected = [f"req-{i:03d}" for i in range(N)]
    wait_until(lambda: request_ids(s) == expected, 15, "events replayed after the outage")
    # Settled: nothing left on disk, so nothing more can be replayed (and duplicated) later.
    wait_until(lambda: spooled_lines(s) == 0, 10, "spool drained")
    assert request_ids(s) == expected, "no duplicates later either"
    assert s.received() == []


def test_events_spooled_by_a_killed_authz_are_replayed_by_the_next(events_stack):
    s = events_stack
    assert blocked(s, -1).status_code == 403
    wait_until(lambda: len(request_ids(s)) == 1, 5, "first event")
    s.redis.stop()
    for i in range(N):
        assert blocked(s, i).status_code == 403
    wait_until(lambda: spooled_lines(s) == N, 10, "events on disk")
    s.authz.signal(signal.SIGKILL)
    s.authz.popen.wait(10)
    restart_redis(s)
    s.restart_authz()
    expected = [f"req-{i:03d}" for i in range(N)]
    wait_until(lambda: request_ids(s) == expected, 15, "spool replayed by the new process")
    assert spooled_lines(s) == 0
    assert s.received() == []


def test_the_file_sink_gets_every_block_the_stream_gets(org):
    """The session stack runs event_sinks = "redis,file": a block through Envoy is one line in
    the events file, the same event as in the Redis stream (docs/api.md, Security events)."""
    import json

    org.set_policy(**DEMO_POLICY)
    prompt = [{"role": "user", "content": "file-sink-prompt-7f3a"}]
    for i in range(3):
        r = org.post({"model": "deepseek/deepseek-v3.2", "messages": prompt}, headers={"user-agent": f"file-sink-{i}"})
        assert r.status_code == 403
    path = org.stack.workdir / "events.jsonl"

    def in_file() -> list[dict]:
        lines = path.read_text().splitlines() if path.exists() else []
        return [e for e in map(json.loads, lines) if e["org_id"] == org.id]

    wait_until(lambda: len(in_file()) == 3 and len(org.events()) == 3, 10, "three events in both sinks")
    assert [e["user_agent"] for e in in_file()] == [f"file-sink-{i}" for i in range(3)]
    assert {e["event_id"] for e in in_file()} == {e["event_id"] for e in org.events()}
    assert "file-sink-prompt-7f3a" not in path.read_text()  # never the prompt
