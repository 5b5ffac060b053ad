"""A stand-in for the existing LLM gateway behind Envoy, for the demo and the tests.

It serves the API surface of an OpenAI-, Anthropic- and Gemini-compatible gateway, finding the
model the way such a gateway does (its own parsing, independent of authz's): the JSON body,
a multipart form field, the path (Gemini, Bedrock, Azure deployments), the query (realtime
websocket), each line of an uploaded batch file. Responses have the shapes the official SDKs
parse (chat completions and SSE streams, Anthropic messages and their event stream, Gemini
candidates, model lists, file and batch objects, transcriptions, images, a realtime session).

It honours `x-compliance-allowed-providers` the way a gateway must: it routes only among the
listed providers and refuses a pinned provider that is not listed. It records every request
it receives, with the model it would call, so tests can prove a denied request never reached it:

    GET /_requests      what it received (method, path, headers, body, model, provider)
    DELETE /_requests   forget them
    GET /key/info       LiteLLM's key-info API, for the virtual keys given with --key

    python -m devstack.standin_gateway --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from authz.server.ports import write_whole

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
    def __init__(
        self, deployments: dict[str, str] | None = None, keys: dict[str, str] | None = None, master_key: str = ""
    ) -> None:
        self.received: list[dict[str, Any]] = []
        self.deployments = deployments or {}
        self.files: dict[str, dict[str, Any]] = {}
        self.keys = keys or {}  # virtual key -> team, answered by GET /key/info as LiteLLM does
        self.master_key = master_key
        self.key_lookups = 0

    async def _key_lookup_count(self, _request: web.Request) -> web.Response:
        return web.json_response({"count": self.key_lookups})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/_requests", self._list)
        app.router.add_delete("/_requests", self._clear)
        app.router.add_get("/key/info", self._key_info)
        app.router.add_get("/_key_lookups", self._key_lookup_count)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _list(self, _request: web.Request) -> web.Response:
        return web.json_response(self.received)

    async def _key_info(self, request: web.Request) -> web.Response:
        """LiteLLM's key-info API: the master key may look up any virtual key."""
        self.key_lookups += 1
        if not self.master_key or request.headers.get("authorization") != f"Bearer {self.master_key}":
            return web.json_response({"error": {"message": "Authentication Error"}}, status=401)
        key = request.query.get("key", "")
        if key not in self.keys:
            return web.json_response({"detail": {"error": "Key not found"}}, status=404)
        team = self.keys[key]
        return web.json_response(
            {
                "key": key,
                "info": {
                    "key_alias": None,
                    "team_id": team,
                    "user_id": None,
                    "metadata": {"org_id": team},
                    "models": [],
                },
            }
        )

    async def _clear(self, _request: web.Request) -> web.Response:
        self.received.clear()
        return web.json_response({"cleared": True})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("upgrade", "").lower() == "websocket":
            return await self._realtime(request)
        form: dict[str, list[Any]] = {}
        body = b""
        if request.content_type == "multipart/form-data":
            for name, value in (await request.post()).items():
                form.setdefault(name, []).append(value)
        else:
            body = await request.read()
        record = {
            "method": request.method,
            "path": request.path_qs,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body.decode("utf-8", "replace")[:100_000],
            "form": {k: [v if isinstance(v, str) else f"<file {v.filename}>" for v in vs] for k, vs in form.items()},
        }
        self.received.append(record)
        payload = _json(body) if request.content_type.endswith("json") else {}
        models = self._models(request, payload, form)
        if models is None:  # model-free
            return web.json_response(self._model_free(request))
        if not models:
            return _error(400, "gateway: no model in the request")
        record["model"] = models[0]
        routed = [choose_provider(m, request.headers.get(ALLOWED_PROVIDERS_HEADER)) for m in models]
        errors = [e for _, e in routed if e]
        if errors:
            return _error(403, f"gateway: {errors[0]}")
        record["provider"] = provider = routed[0][0] or ""
        return await self._reply(request, models[0], provider, payload, form)

    def _models(self, request: web.Request, payload: dict[str, Any], form: dict[str, Any]) -> list[str] | None:
        """The models this gateway would call; None for an endpoint that calls none."""
        path, method = unquote(request.path), request.method
        if path == "/v1/realtime":
            return [m for m in [request.query.get("model")] if m]
        if (
            method in ("GET", "DELETE")
            or path.endswith("/cancel")
            or path.startswith("/v1/batches")
            or path.startswith("/v1/uploads")
            or path.endswith("/transcription_sessions")
        ):
            return None
        if path == "/v1/files":
            purpose = form.get("purpose", [""])[0]
            if purpose != "batch":
                return None
            content = form["file"][0].file.read()
            lines = [json.loads(line) for line in content.splitlines() if line.strip()]
            return [line["body"]["model"] for line in lines]
        if path == "/v1/messages/batches":
            return [r["params"]["model"] for r in payload.get("requests", [])]
        if path.startswith("/openai/deployments/"):
            deployment = path.split("/")[3]
            return [self.deployments.get(deployment, deployment)]
        if path.startswith(("/v1beta/models/", "/v1/models/")) and ":" in path:
            return [path.split("/")[3].rsplit(":", 1)[0]]
        if path.startswith("/v1/projects/") and "/models/" in path:  # Vertex AI: .../models/{model}:{method}
            return [path.rsplit("/models/", 1)[1].rsplit(":", 1)[0]]
        if path.startswith(("/model/", "/engines/")):  # LiteLLM: the path's model wins over the body's
            return [path.split("/")[2]]
        if path == "/v1/realtime/client_secrets":
            return [m for m in [(payload.get("session") or {}).get("model")] if m]
        model = payload.get("model") if isinstance(payload, dict) else None
        if model is None and form.get("model"):
            model = form["model"][-1]
        model = model or request.headers.get("x-model")
        return [model] if isinstance(model, str) and model else []

    def _model_free(self, request: web.Request) -> dict[str, Any]:
        path = request.path
        if path in ("/v1/models", "/models", "/openai/models"):
            return {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "standin"}
                    for m in ("gpt-4o", "claude-sonnet-4.5")
                ],
            }
        if path == "/v1beta/models":
            return {"models": [{"name": "models/gemini-2.5-pro"}]}
        if path == "/v1/files" and request.method == "POST":
            return self._file(request)
        if path.startswith("/v1/batches") and request.method == "POST" and not path.endswith("/cancel"):
            return {
                "id": "batch_standin",
                "object": "batch",
                "endpoint": "/v1/chat/completions",
                "input_file_id": "file-standin",
                "completion_window": "24h",
                "status": "validating",
                "created_at": int(time.time()),
            }
        return {"id": path.rsplit("/", 1)[-1], "object": "standin.object", "deleted": request.method == "DELETE"}

    def _file(self, request: web.Request) -> dict[str, Any]:
        file_id = f"file-standin-{len(self.files) + 1}"
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": request.content_length or 0,
            "created_at": int(time.time()),
            "filename": "upload",
            "purpose": "batch",
            "status": "processed",
        }
        return self.files[file_id]

    async def _reply(
        self, request: web.Request, model: str, provider: str, payload: dict[str, Any], form: dict[str, Any]
    ) -> web.StreamResponse:
        path = unquote(request.path)
        text = f"(stand-in reply from {provider})"
        now = int(time.time())
        n = len(self.received)
        if path == "/v1/files":
            reply = self._file(request)
        elif path == "/v1/messages/batches":
            reply = {
                "id": f"msgbatch_standin_{n}",
                "type": "message_batch",
                "processing_status": "in_progress",
                "request_counts": {
                    "processing": len(payload["requests"]),
                    "succeeded": 0,
                    "errored": 0,
                    "canceled": 0,
                    "expired": 0,
                },
                "created_at": "2026-01-01T00:00:00Z",
                "expires_at": "2026-01-02T00:00:00Z",
            }
        elif path.endswith("/messages"):
            reply = {
                "id": f"msg_standin_{n}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "provider": provider,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 5},
            }
            if payload.get("stream"):
                return await self._anthropic_stream(request, reply)
        elif path.endswith("/count_tokens"):
            reply = {"input_tokens": 7}
        elif ":" in path:  # Gemini
            reply = {
                "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}],
                "modelVersion": model,
                "provider": provider,
            }
        elif path.endswith(("/transcriptions", "/translations")):
            reply = {"text": text, "provider": provider}
        elif path.endswith("/speech"):
            return web.Response(body=b"ID3standin-audio", content_type="audio/mpeg")
        elif "/images/" in path:
            reply = {"created": now, "data": [{"b64_json": "aW1hZ2U=", "revised_prompt": text}], "provider": provider}
        elif path.endswith("/embeddings"):
            reply = {
                "object": "list",
                "model": model,
                "provider": provider,
                "data": [{"object": "embedding", "index": 0, "embedding": [0.0, 1.0]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        elif path.endswith("/responses"):
            reply = {
                "id": f"resp_standin_{n}",
                "object": "response",
                "created_at": now,
                "model": model,
                "provider": provider,
                "status": "completed",
                "output": [
                    {
                        "type": "message",
                        "id": "msg_1",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}],
                    }
                ],
            }
        else:
            reply = {
                "id": f"chatcmpl-standin-{n}",
                "object": "chat.completion",
                "created": now,
                "model": model,
                "provider": provider,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }
            if payload.get("stream"):
                return await self._stream(request, reply)
        return web.json_response(reply)

    async def _stream(self, request: web.Request, completion: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for word in completion["choices"][0]["message"]["content"].split():
            chunk = {
                "id": completion["id"],
                "object": "chat.completion.chunk",
                "created": completion["created"],
                "model": completion["model"],
                "provider": completion["provider"],
                "choices": [{"index": 0, "delta": {"content": word + " "}}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(0.01)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _anthropic_stream(self, request: web.Request, message: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        start = dict(message, content=[], stop_reason=None)
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
        ]
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word + " "}},
            )
            for word in message["content"][0]["text"].split()
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        for name, data in events:
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        await response.write_eof()
        return response

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        model = request.query.get("model", "")
        provider, error = choose_provider(model, request.headers.get(ALLOWED_PROVIDERS_HEADER))
        self.received.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "model": model,
                "provider": provider,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": "",
                "form": {},
            }
        )
        if error:
            return _error(403, f"gateway: {error}")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "session.created", "session": {"model": model, "provider": provider}})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_json({"type": "echo", "provider": provider, "received": message.data[:1000]})
        return ws


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message}}, status=status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="stand-in LLM gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: a port the kernel picks (see --port-file)")
    parser.add_argument("--port-file", default="", help="write the bound port to this file once listening")
    parser.add_argument(
        "--deployment",
        action="append",
        default=[],
        metavar="NAME=MODEL",
        help="an Azure deployment and the model it runs (repeatable)",
    )
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY=TEAM",
        help="a virtual key and its team, for GET /key/info (repeatable)",
    )
    parser.add_argument("--master-key", default="", help="the key /key/info requires (Authorization: Bearer)")
    args = parser.parse_args(argv)
    deployments = dict(d.split("=", 1) for d in args.deployment)
    keys = dict(k.split("=", 1) for k in args.key)
    sock = socket.create_server((args.host, args.port))
    if args.port_file:
        write_whole(args.port_file, str(sock.getsockname()[1]))
    web.run_app(
        StandinGateway(deployments, keys, args.master_key).app(),
        sock=sock,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
