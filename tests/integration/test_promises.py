"""Documented promises that no test exercised before (test strength): each asserts the known value,
against a real redis-server and, where it matters, a real authz App or `authz` process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import grpc
import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authz import metrics
from authz.admin.tokens import Authenticator
from authz.alerts import dispatcher, triggers
from authz.alerts.messages import Message
from authz.alerts.webhook_guard import WebhookGuard
from authz.check.request import ReadConfig, read
from authz.check.security_event import security_event
from authz.check.verdict import Verdict
from authz.events.redis_sink import RedisStreamSink
from authz.events.spool import Spool
from authz.events.writer import EventWriter
from authz.policy.catalog import parse
from authz.reasons import Reason
from authz.server.app import App
from authz.state.cache import StateCache, StateUnavailable
from authz.state.layout import Keys
from authz.state.store import Store
from devstack.stack import SAMPLE_CATALOG, RedisServer, claimed_settings, closed_port, listening_socket
from support.checkrequests import check_request

SECRET = "promises-test-secret-at-least-32-characters"


def cli(*args, env=None, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "authz", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
    )


def test_catalog_check_validates_without_storing(tmp_path):
    ok = cli("catalog", "check", str(SAMPLE_CATALOG))
    assert ok.returncode == 0 and ok.stdout.strip() == "ok: 12 providers, 15 models"
    bad = json.loads(SAMPLE_CATALOG.read_text())
    bad["providers"]["Bad Id"] = {"name": "x"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    refused = cli("catalog", "check", str(path))
    assert refused.returncode == 1 and "provider id 'Bad Id'" in refused.stderr


def test_token_issue_prints_a_token_the_service_accepts():
    out = cli(
        "token",
        "issue",
        "acme",
        "--role",
        "admin",
        "--subject",
        "ops@acme",
        "--ttl",
        "60",
        env={"AUTHZ_ADMIN_JWT_HS256_SECRET": SECRET},
    )
    assert out.returncode == 0, out.stderr
    principal = Authenticator(hs256_secret=SECRET).principal("Bearer " + out.stdout.strip())
    assert (principal.org_id, principal.role, principal.subject) == ("acme", "admin", "ops@acme")
    missing = cli("token", "issue", "acme", "--subject", "x")
    assert missing.returncode != 0 and "admin_jwt_hs256_secret" in missing.stderr


# --- a real authz App ----------------------------------------------------------------------------


def _settings(redis_url: str, prefix: str, **extra: str):
    env = {
        "AUTHZ_REDIS_URL": redis_url,
        "AUTHZ_KEY_PREFIX": prefix,
        "AUTHZ_DRAIN_DELAY_S": "0",
        **{f"AUTHZ_{k.upper()}": v for k, v in extra.items()},
    }
    return claimed_settings(env)


async def _loaded(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await Store(client, Keys(prefix)).load_catalog(parse(SAMPLE_CATALOG.read_text()), "test")
    await client.aclose()


async def test_grpc_health_is_not_serving_when_the_state_is_stale(tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        await _loaded(server.url, "stale:")
        app = App(_settings(server.url, "stale:", refresh_interval_s="0.2", max_staleness_s="1", redis_timeout_s="0.1"))
        await app.start()
        try:
            async with grpc.aio.insecure_channel(app.settings.grpc_listen) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest(service="envoy.service.auth.v3.Authorization")

                async def status():
                    return (await health.Check(request)).status

                deadline = time.monotonic() + 10
                while await status() != health_pb2.HealthCheckResponse.SERVING:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                server.stop()
                deadline = time.monotonic() + 10
                while await status() != health_pb2.HealthCheckResponse.NOT_SERVING:
                    assert time.monotonic() < deadline, "still SERVING with no sync for max_staleness_s"
                    await asyncio.sleep(0.05)
                live = await health.Check(health_pb2.HealthCheckRequest(service=""))
                assert live.status == health_pb2.HealthCheckResponse.SERVING  # liveness: do not restart it
        finally:
            await app.stop()
    finally:
        server.stop()


async def test_rs256_key_file_with_issuer_and_audience(redis_server, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    await _loaded(redis_server.url, "rs256:")
    app = App(
        _settings(
            redis_server.url,
            "rs256:",
            admin_jwt_rs256_public_key_file=str(pem),
            admin_jwt_issuer="https://idp.example",
            admin_jwt_audience="authz",
        )
    )
    await app.start()
    try:
        claims = {
            "sub": "bob@acme",
            "org_id": "acme",
            "role": "owner",
            "exp": int(time.time()) + 60,
            "iss": "https://idp.example",
            "aud": "authz",
        }
        async with httpx.AsyncClient(base_url=f"http://{app.settings.http_listen}") as client:

            async def get(token_claims: dict) -> httpx.Response:
                token = jwt.encode(token_claims, key, algorithm="RS256")
                return await client.get("/v1/orgs/acme/policy", headers={"authorization": f"Bearer {token}"})

            assert (await get(claims)).status_code == 200
            assert (await get({**claims, "iss": "https://evil.example"})).status_code == 401
            assert (await get({**claims, "aud": "another-service"})).status_code == 401
            hs = jwt.encode(claims, "x" * 32, algorithm="HS256")
            assert (
                await client.get("/v1/orgs/acme/policy", headers={"authorization": f"Bearer {hs}"})
            ).status_code == 401
    finally:
        await app.stop()


# --- metrics with their exact values ------------------------------------------------------------


def _value(counter) -> float:
    return counter._value.get()


async def test_redis_errors_and_dropped_events_are_counted_exactly(tmp_path):
    server = RedisServer(tmp_path, port=closed_port())  # never started: Redis is down
    client = aioredis.Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2)
    cache = StateCache(Store(client, Keys()), refresh_interval_s=600, max_staleness_s=1200, redis_timeout_s=0.3)
    before = _value(metrics.REDIS_ERRORS.labels("load_org"))
    with pytest.raises(StateUnavailable):
        await cache.org("acme")
    assert _value(metrics.REDIS_ERRORS.labels("load_org")) == before + 1

    # The writer is not started: the queue (2) fills, then every further event is dropped.
    emitter = EventWriter(
        RedisStreamSink(client, "authz:events:security", maxlen=10), Spool(tmp_path, 1 << 20), queue_size=2
    )
    facts = read(check_request({"model": "m"}, {"authorization": "Bearer k"}), ReadConfig())
    counts = {o: _value(metrics.EVENTS[o]) for o in ("emitted", "dropped")}
    for i in range(5):
        emitter.emit(security_event(Verdict(Reason.UNKNOWN_MODEL, org_id="acme", model=f"m{i}"), facts, f"d{i}", "k"))
    assert _value(metrics.EVENTS["emitted"]) == counts["emitted"] + 2
    assert _value(metrics.EVENTS["dropped"]) == counts["dropped"] + 3
    await client.aclose()


# --- alerts: the attempt cap, and once-only delivery across processes -------------------------


class _Receiver:
    def __init__(self, status: int):
        self.status, self.hits = status, []

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(await request.json())
        return web.Response(status=self.status)


async def _serve(receiver: _Receiver) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listening_socket()
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{port}/hook"


async def test_alerts_stop_after_eight_attempts_and_go_out_once(redis_server, monkeypatch):
    monkeypatch.setattr(dispatcher, "_BACKOFF_S", (0.01,) * 7)
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    keys = Keys("alerts-once:")
    guard = WebhookGuard.from_setting("127.0.0.1")
    failing, healthy = _Receiver(500), _Receiver(200)
    runners = []
    try:
        runner, failing_url = await _serve(failing)
        runners.append(runner)
        runner, healthy_url = await _serve(healthy)
        runners.append(runner)
        # Two dispatchers on one consumer group, as two authz processes would be.
        dispatchers = [dispatcher.AlertDispatcher(client, keys, guard) for _ in range(2)]
        for i, d in enumerate(dispatchers):
            d._consumer = f"process-{i}"
            d.start()
        failed_before = _value(metrics.ALERTS["failed"])
        await triggers.enqueue(client, keys, "acme", failing_url, "blocks", Message().text("x"))
        for i in range(20):
            await triggers.enqueue(client, keys, "acme", healthy_url, "blocks", Message().value(f"a{i}"))
        deadline = time.monotonic() + 20
        while len(healthy.hits) < 20 or _value(metrics.ALERTS["failed"]) < failed_before + 1:
            assert time.monotonic() < deadline, (len(healthy.hits), len(failing.hits))
            await asyncio.sleep(0.05)
        # Settled: nothing pending in the group, so no further attempt or duplicate can come.
        while (await client.xinfo_groups(keys.alerts))[0]["pending"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert len(failing.hits) == dispatcher.MAX_ATTEMPTS == 8
        assert sorted(h["content"] for h in healthy.hits) == sorted(f"`a{i}`" for i in range(20))
        assert _value(metrics.ALERTS["failed"]) == failed_before + 1
        for d in dispatchers:
            await d.stop()
    finally:
        for runner in runners:
            await runner.cleanup()
        await client.aclose()
