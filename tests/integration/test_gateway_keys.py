"""org_source = "gateway": the key API client against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from authz.state.gateway_keys import GatewayUnavailable, LiteLLMKeyResolver
from devstack.stack import listening_socket


class KeyApi:
    """LiteLLM's GET /key/info: each key's team, or a fixed status for every call."""

    def __init__(self) -> None:
        self.teams: dict[str, str] = {}
        self.status = 200
        self.calls = 0

    async def info(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.status != 200:
            return web.Response(status=self.status)
        key = request.query["key"]
        if key not in self.teams:
            return web.Response(status=404)
        return web.json_response({"key": key, "info": {"team_id": self.teams[key]}})


@pytest.fixture
async def key_api():
    api = KeyApi()
    app = web.Application()
    app.router.add_get("/key/info", api.info)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listening_socket()
    await web.SockSite(runner, sock).start()
    yield api, f"http://127.0.0.1:{sock.getsockname()[1]}/key/info"
    await runner.cleanup()


async def test_a_known_key_is_cached_until_its_ttl_then_asked_again(key_api):
    """A key moved to another team must not keep the old org's policy past the TTL."""
    api, url = key_api
    resolver = LiteLLMKeyResolver(url, "master", "team_id", ttl_s=0.2, negative_ttl_s=0.2)
    try:
        api.teams["sk-1"] = "team-a"
        assert await resolver.resolve("sk-1", "h1") == "team-a"
        assert resolver.cached("h1") == (True, "team-a")
        api.teams["sk-1"] = "team-b"
        assert resolver.cached("h1") == (True, "team-a")  # within the TTL: no call
        await asyncio.sleep(0.3)
        assert resolver.cached("h1") == (False, None)  # expired: the caller must ask again
        assert await resolver.resolve("sk-1", "h1") == "team-b"
        assert api.calls == 2
    finally:
        await resolver.close()


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_a_key_api_error_is_unavailable_and_nothing_is_cached(key_api, status):
    """5xx (or rate limiting) is no answer: 503 for the request, never "unknown key" (401)."""
    api, url = key_api
    resolver = LiteLLMKeyResolver(url, "master", "team_id")
    try:
        api.teams["sk-1"] = "team-a"
        api.status = status
        with pytest.raises(GatewayUnavailable, match=f"HTTP {status}"):
            await resolver.resolve("sk-1", "h1")
        assert resolver.cached("h1") == (False, None)
        api.status = 200
        assert await resolver.resolve("sk-1", "h1") == "team-a"
    finally:
        await resolver.close()


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_the_key_apis_not_found_answers_are_an_unknown_key(key_api, status):
    api, url = key_api
    resolver = LiteLLMKeyResolver(url, "master", "team_id")
    try:
        api.status = status
        assert await resolver.resolve("sk-x", "hx") is None
        assert resolver.cached("hx") == (True, None)
    finally:
        await resolver.close()


async def test_a_redirect_is_never_followed(key_api):
    """A 302 would send the master token and the client's key elsewhere, and use that page's org."""
    api, url = key_api
    elsewhere = KeyApi()
    elsewhere.teams["sk-1"] = "attacker-team"
    app = web.Application()
    app.router.add_get("/key/info", elsewhere.info)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(request.url.with_path("/key/info")))

    app.router.add_get("/moved", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listening_socket()
    await web.SockSite(runner, sock).start()
    resolver = LiteLLMKeyResolver(f"http://127.0.0.1:{sock.getsockname()[1]}/moved", "master", "team_id")
    try:
        with pytest.raises(GatewayUnavailable, match="HTTP 302: redirects are not followed"):
            await resolver.resolve("sk-1", "h1")
        assert elsewhere.calls == 0 and resolver.cached("h1") == (False, None)
    finally:
        await resolver.close()
        await runner.cleanup()
