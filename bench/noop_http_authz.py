"""A no-op HTTP ext_authz server: reads the body Envoy forwards and answers 200 with one
x-compliance- header, the floor of a Python server behind envoy/front-proxy-http.yaml.

    python bench/noop_http_authz.py --port 9003 [--server granian|aiohttp]

granian (HTTP/1.1 framed in Rust, RSGI, embedded in a uvloop loop as authz embeds it) is what
authz serves the HTTP Check with; aiohttp (framed in Python, with C helpers) is the comparison.
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop

HEADERS = [("x-compliance-allowed-providers", "azure")]


async def granian_app(scope, protocol) -> None:  # type: ignore[no-untyped-def]
    if scope.headers.get("content-length", "0") != "0":
        await protocol()
    protocol.response_bytes(200, HEADERS, b"")


async def serve_granian(port: int) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    server = Server(
        granian_app,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,
        websockets=False,
        backlog=1024,
        log_enabled=False,
    )
    await server.serve()


async def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200, headers=dict(HEADERS))

    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["granian", "aiohttp"], default="granian")
    args = parser.parse_args()
    uvloop.run(serve_granian(args.port) if args.server == "granian" else serve_aiohttp(args.port))
