"""A stand-in for the existing LLM gateway behind Envoy, for the demo and the tests.

OpenAI-compatible `POST /v1/chat/completions` (JSON or `stream: true` SSE). It honours
`x-compliance-allowed-providers` the way a real gateway must: it routes only among the
listed providers and refuses a pinned provider that is not listed. It records every request
it receives, so tests can prove a denied request never reached it:

    GET /_requests      what it received (method, path, headers, body)
    DELETE /_requests   forget them

    python -m authz.testing.standin_gateway --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web

ALLOWED_PROVIDERS_HEADER = "x-compliance-allowed-providers"


def choose_provider(model: str, allowed_header: str | None) -> tuple[str | None, str]:
    """(provider, error): a real gateway's routing, restricted to the allowed list if given."""
    allowed = [p for p in (allowed_header or "").split(",") if p]
    pinned, slash, _ = model.partition("/")
    if allowed_header is None:
        return (pinned if slash else "default-provider"), ""
    if slash and pinned in allowed:
        return pinned, ""
    if not allowed:
        return None, "no allowed provider"
    return allowed[0], ""


class StandinGateway:
    def __init__(self) -> None:
        self.received: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/_requests", self._list)
        app.router.add_delete("/_requests", self._clear)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _list(self, _request: web.Request) -> web.Response:
        return web.json_response(self.received)

    async def _clear(self, _request: web.Request) -> web.Response:
        self.received.clear()
        return web.json_response({"cleared": True})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
        )
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        model = payload.get("model") if isinstance(payload, dict) else None
        model = model if isinstance(model, str) else request.headers.get("x-model", "")
        provider, error = choose_provider(model, request.headers.get(ALLOWED_PROVIDERS_HEADER))
        if error:
            return web.json_response({"error": {"message": f"gateway: {error}"}}, status=403)
        completion = {
            "id": f"chatcmpl-standin-{len(self.received)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "provider": provider,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"(stand-in reply from {provider})"},
                    "finish_reason": "stop",
                }
            ],
        }
        if isinstance(payload, dict) and payload.get("stream"):
            return await self._stream(request, completion)
        return web.json_response(completion)

    async def _stream(self, request: web.Request, completion: dict) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for word in completion["choices"][0]["message"]["content"].split():
            chunk = {"id": completion["id"], "provider": completion["provider"],
                     "choices": [{"index": 0, "delta": {"content": word + " "}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(0.01)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="stand-in LLM gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    web.run_app(StandinGateway().app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
