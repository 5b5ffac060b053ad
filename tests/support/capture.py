"""A loopback stand-in for every provider API: it answers as the provider its first path
segment names (`/deepseek/v1/chat/completions` -> "deepseek") and records each call, so a test
sees exactly which provider a prompt reached."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Capture(ThreadingHTTPServer):
    """A fake of every provider: answers as the provider its path prefix names, and records it."""

    daemon_threads = True

    @classmethod
    @contextlib.contextmanager
    def running(cls, host: str = "127.0.0.1") -> Iterator[Capture]:
        server = cls(host)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()
            server.server_close()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _CaptureHandler)
        self.seen: list[tuple[str, str]] = []  # (provider, model)
        self.headers: list[dict[str, str]] = []  # each call's headers, lower-case names
        self.paths: list[str] = []  # each call's path
        self.failing: dict[str, int] = {}  # provider -> the error status it answers with (recorded all the same)
        self.streams = False  # answer a chat completion asked with "stream": true as server-sent events
        self.lock = threading.Lock()

    def providers(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.seen]


class _CaptureHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        body = json.loads(raw or b"{}") if "json" in (self.headers.get("content-type") or "") else {}
        provider = self.path.strip("/").split("/")[0]
        server: Capture = self.server  # type: ignore[assignment]
        with server.lock:
            server.seen.append((provider, str(body.get("model"))))
            server.headers.append({k.lower(): v for k, v in self.headers.items()})
            server.paths.append(self.path)
        failure = server.failing.get(provider)
        if failure is not None:
            data = json.dumps({"error": {"message": f"{provider} is failing", "type": "server_error"}}).encode()
            self.send_response(failure)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        text = f"served by {provider}"
        if server.streams and body.get("stream") is True and self.path.endswith("/chat/completions"):
            self._stream_chat(text, body)
            return
        if self.path.endswith("/files"):  # OpenAI's file object
            answer = {"id": "file-1", "object": "file", "bytes": len(raw), "created_at": 1, "filename": "in.jsonl"}
            answer |= {"purpose": "batch", "status": "processed"}
        elif "/converse" in self.path:  # Bedrock's Converse API
            answer = {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
            }
        elif self.path.endswith("/embeddings"):
            answer = {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
                "model": body.get("model"),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        elif provider == "anthropic":
            answer = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        else:
            answer = {
                "id": "c1",
                "object": "chat.completion",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                "service_tier": "auto",  # Groq's transformation reads it
            }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream_chat(self, text: str, body: dict[str, object]) -> None:
        """OpenAI's streamed chat completion: a chunk per word, a usage chunk, [DONE]."""
        chunks = [{"role": "assistant", "content": ""}] + [{"content": w + " "} for w in text.split()]
        events = [
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            for delta in chunks
        ]
        events.append(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
            }
        )
        data = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass
