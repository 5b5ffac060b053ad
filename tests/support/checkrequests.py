"""Build envoy CheckRequests the way Envoy sends them (lower-case headers, raw body)."""

from __future__ import annotations

import json
from typing import Any

from envoy.service.auth.v3 import external_auth_pb2


def check_request(
    body: bytes | str | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    *,
    size: int | None = None,
    partial: bool = False,
    client: str = "203.0.113.7",
    method: str = "POST",
    path: str = "/v1/chat/completions",
    content_type: str | None = "application/json",
) -> external_auth_pb2.CheckRequest:
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    http.method = method
    http.path = path
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    body = body or b""
    http.raw_body = body
    http.size = len(body) if size is None else size
    for k, v in (headers or {}).items():
        http.headers[k.lower()] = v
    if body and content_type and "content-type" not in http.headers:
        http.headers["content-type"] = content_type
    if body:
        http.headers["x-envoy-auth-partial-body"] = "true" if partial else "false"
    req.attributes.source.address.socket_address.address = client
    return req
