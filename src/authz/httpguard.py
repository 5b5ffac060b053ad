"""Slow-client limits for authz's HTTP ports (admin API + settings page, metrics).

aiohttp keeps a connection as long as the client keeps it: a client that drip-feeds a request
head, or just opens sockets, holds one of the process's file descriptors and a task each,
forever. These ports serve a few people and Prometheus, so the limits can be tight:

- at most `max_connections` open connections, and `max_per_client` from one address: more
  are closed at once;
- the first request head must arrive within `head_timeout_s` of the connection opening;
- a connection lives at most `lifetime_s` (every later head and body is bounded by it), and
  handlers bound their own body reads (`read_body`);
- idle keep-alive connections close after aiohttp's `keepalive_timeout` (set by the caller).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import structlog
from aiohttp import web

from authz import metrics

log = structlog.get_logger("authz.httpguard")

_HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int = 256
    max_per_client: int = 32
    head_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    lifetime_s: float = 120.0


class _Counter:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.total = 0
        self.by_client: dict[str, int] = {}

    def admit(self, client: str) -> bool:
        if self.total >= self.limits.max_connections or self.by_client.get(client, 0) >= self.limits.max_per_client:
            return False
        self.total += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return True

    def release(self, client: str) -> None:
        self.total -= 1
        left = self.by_client[client] - 1
        if left:
            self.by_client[client] = left
        else:
            del self.by_client[client]


class _GuardedProtocol(asyncio.Protocol):
    """Sits between the transport and aiohttp's RequestHandler, forwarding everything."""

    def __init__(self, inner: asyncio.Protocol, counter: _Counter, port: str):
        self._inner = inner
        self._counter = counter
        self._port = port
        self._client: str | None = None
        self._transport: asyncio.Transport | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._head_seen = False
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio subclasses
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if peer else "unknown"
        if not self._counter.admit(client):
            metrics.HTTP_CONNECTIONS_REFUSED.labels(self._port, "connection_limit").inc()
            transport.abort()
            return
        self._client, self._transport = client, transport
        loop = asyncio.get_running_loop()
        limits = self._counter.limits
        self._timers = [
            loop.call_later(limits.head_timeout_s, self._expire, "head_timeout"),
            loop.call_later(limits.lifetime_s, self._expire, "lifetime"),
        ]
        self._inner.connection_made(transport)

    def _expire(self, why: str) -> None:
        if why == "head_timeout" and self._head_seen:
            return
        metrics.HTTP_CONNECTIONS_REFUSED.labels(self._port, why).inc()
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._client is None:
            return
        if not self._head_seen:
            window = self._tail + data
            if _HEAD_END in window:
                self._head_seen = True
                self._timers[0].cancel()
            self._tail = window[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._client is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._client is None:
            return
        for timer in self._timers:
            timer.cancel()
        self._counter.release(self._client)
        self._client = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    """web.TCPSite whose connections go through the limits above."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, limits: Limits, name: str):
        super().__init__(runner, host, port, reuse_port=True)
        self._counter = _Counter(limits)
        self._name = name

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        factory: Callable[[], asyncio.Protocol] = lambda: _GuardedProtocol(server(), self._counter, self._name)
        self._server = await asyncio.get_running_loop().create_server(
            factory, self._host, self._port, backlog=self._backlog, reuse_port=True
        )


async def read_body(request: web.Request, timeout_s: float) -> bytes:
    """The request body, or 408 when the client sends it too slowly."""
    try:
        return await asyncio.wait_for(request.read(), timeout_s)
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text='{"error": {"code": "request_timeout", "message": "request body not received in time"}}',
            content_type="application/json",
        ) from None
