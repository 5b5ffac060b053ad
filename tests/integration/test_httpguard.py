"""The admin and metrics HTTP ports under slow and greedy clients: drip-fed heads, slow bodies,
connection floods. A real authz App on loopback with short limits."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import redis.asyncio as aioredis

from authz.policy.catalog import parse
from authz.server.app import App
from authz.state.layout import Keys
from authz.state.store import Store
from devstack.stack import SAMPLE_CATALOG, claimed_settings


@pytest.fixture
async def app(redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    await Store(client, Keys("guard:")).load_catalog(parse(SAMPLE_CATALOG.read_text()), "test")
    await client.aclose()
    settings = claimed_settings(
        {
            "AUTHZ_REDIS_URL": redis_server.url,
            "AUTHZ_KEY_PREFIX": "guard:",
            "AUTHZ_DRAIN_DELAY_S": "0",
            "AUTHZ_HTTP_MAX_CONNECTIONS": "100",
            "AUTHZ_HTTP_MAX_CONNECTIONS_PER_CLIENT": "20",
            "AUTHZ_HTTP_HEAD_TIMEOUT_S": "1",
            "AUTHZ_HTTP_BODY_TIMEOUT_S": "1",
            "AUTHZ_HTTP_CONNECTION_LIFETIME_S": "3",
            "AUTHZ_ADMIN_JWT_HS256_SECRET": "x" * 32,
        }
    )
    app = App(settings)
    await app.start()
    yield app
    await app.stop()


async def _open(listen: str, local: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, _, port = listen.rpartition(":")
    return await asyncio.open_connection(host, int(port), local_addr=(local, 0))


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) == b"" or True
    except (ConnectionError, asyncio.IncompleteReadError):
        return True
    except TimeoutError:
        return False


async def test_drip_fed_heads_are_cut_and_floods_are_bounded(app):
    listen = app.settings.http_listen
    drips = [await _open(listen) for _ in range(60)]  # 20 admitted from one address, 40 closed at once
    for _, writer in drips:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
    # Another client is still served while the flood holds its share.
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")) as client:
        assert (await client.get(f"http://{listen}/healthz")).status_code == 200
    started = time.monotonic()
    results = await asyncio.gather(*(_closed(reader, 4) for reader, _ in drips))
    assert all(results) and time.monotonic() - started < 3
    for _, writer in drips:
        writer.close()
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://{app.settings.metrics_listen}/metrics")).text
    assert 'authz_http_connections_closed_total{port="admin",why="connection_limit"} 40.0' in metrics
    assert 'authz_http_connections_closed_total{port="admin",why="head_timeout"} 20.0' in metrics


async def test_slow_bodies_get_408(app):
    reader, writer = await _open(app.settings.http_listen)
    writer.write(
        b"PUT /v1/orgs/acme/policy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"policy"'
    )
    head = await asyncio.wait_for(reader.readline(), 3)
    assert head.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_connections_have_a_lifetime(app):
    reader, writer = await _open(app.settings.metrics_listen)
    started = time.monotonic()
    while time.monotonic() - started < 6:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            line = await asyncio.wait_for(reader.readline(), 1)
        except (TimeoutError, ConnectionError):
            break
        if not line:
            break
        await reader.readuntil(b'{"status": "ok"}')
        await asyncio.sleep(0.2)
    writer.close()
    assert 2.5 < time.monotonic() - started < 5  # cut at the 3 s lifetime, though never idle
