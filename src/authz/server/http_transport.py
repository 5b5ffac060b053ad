"""The Check over Envoy's HTTP ext_authz protocol (`http_service`), served by granian.

Envoy forwards the client's request to `ext_authz_http_listen` with PATH_PREFIX in front of its
path: method, path and query, headers (every one, with `allowed_headers` matching all) and the
buffered body, plus `x-envoy-auth-partial-body`. The egress checkpoint's Envoy
(envoy/egress-http.yaml) overrides the prefix per route with EGRESS_PREFIX and the route's
catalog provider, `/egress/<provider>`: the provider is in Envoy's configuration, before the
gateway's path, so no value of the gateway's chooses it; a route without the override keeps
the filter's UNROUTED_PREFIX and is refused. authz reads the same facts from it as from a
gRPC CheckRequest (authz.check.request.read_http) and runs the same Check
(authz.server.checker), answered by authz.check.response.build_http from the same templates as
the CheckResponse: allowed is 200 with the headers for the gateway (`allowed_upstream_headers`
in Envoy passes only ours) and the client's own `x-compliance-*` named in
`x-envoy-auth-headers-to-remove`; denied is the deny status, headers and JSON body, which
Envoy passes to the client. GET /healthz answers Envoy's health check:
503 while authz is not ready (draining, no usable state), like the gRPC health service.

granian frames HTTP/1.1 in Rust and calls this RSGI app on authz's own event loop, so the cache,
event writer, metrics and tracing are the ones the gRPC Check uses (envoy/front-proxy-http.yaml;
docs/performance.md has why: its per-request cost is a fraction of grpcio's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from granian.constants import HTTPModes, Interfaces
from granian.server.embed import Server
from opentelemetry.trace import Span, SpanKind

from authz.check import request as request_mod
from authz.check import response as response_mod
from authz.check.response import HttpAnswer
from authz.clip import MODEL, clip
from authz.server import ports, tracing
from authz.server.checker import Checker

log = structlog.get_logger("authz.server.http_transport")

PATH_PREFIX = "/check"  # the ingress Envoy's http_service.path_prefix
EGRESS_PREFIX = "/egress/"  # an egress route's http_service.path_prefix: /egress/<its provider>
UNROUTED_PREFIX = "/egress-unrouted"  # the egress filter's own path_prefix: no route named a provider
HEALTH_PATH = "/healthz"
_JSON = response_mod.JSON_CONTENT_TYPE
_FAILED = b'{"error": {"code": "check_failed", "message": "The compliance check failed; not forwarded."}}'
_NOT_FOUND = (
    b'{"error": {"code": "not_found", "message": "Checks are under /check/ (ingress) or /egress/<provider>/ '
    b"(an egress route's http_service.path_prefix).\"}}"
)
_UNROUTED = (
    b'{"error": {"code": "no_egress_route", "message": "This egress route names no provider (its ext_authz '
    b'check_settings.http_service.path_prefix is not /egress/<provider>): nothing leaves."}}'
)
_TOO_LARGE = b'{"error": {"code": "body_too_large", "message": "More body than max_request_bytes."}}'


def headers_of(scope: Any) -> dict[str, str]:
    """Request headers, lower-case, a repeated one joined with ',' (as Envoy joins them for gRPC)."""
    items = scope.headers.items()
    found: dict[str, str] = dict(items)
    if len(found) == len(items) and "".join(found).islower():
        return found  # each name once and lower-case (as granian hands HTTP/1 names over): as is
    found = {}
    for key, value in items:
        key = key.lower()
        found[key] = f"{found[key]},{value}" if key in found else value
    return found


def client_address(headers: dict[str, str], peer: str) -> str:
    """The client Envoy saw: x-envoy-external-address (Envoy sets it with use_remote_address),
    else the last x-forwarded-for hop Envoy appended, else the peer (Envoy itself)."""
    found = headers.get("x-envoy-external-address") or headers.get("x-forwarded-for", "").rpartition(",")[2].strip()
    return found or peer.rpartition(":")[0]


class HttpCheck:
    """The RSGI app: Checks under PATH_PREFIX, the health check at HEALTH_PATH."""

    def __init__(self, checker: Checker, ready: Callable[[], bool], max_body_bytes: int):
        self.checker = checker
        self.ready = ready
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Any, protocol: Any) -> None:
        path = scope.path
        provider: str | None = None  # the egress route's; None at ingress
        if path.startswith(PATH_PREFIX + "/"):
            path = path[len(PATH_PREFIX) :]
        elif path.startswith(EGRESS_PREFIX):
            provider, _, rest = path[len(EGRESS_PREFIX) :].partition("/")
            path = "/" + rest
        else:
            self._not_a_check(path, protocol)
            return
        started = time.perf_counter()
        headers = headers_of(scope)
        declared = headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > self.max_body_bytes:
            protocol.response_bytes(413, [_JSON], _TOO_LARGE)  # Envoy never sends more: not from Envoy
            return
        body = await protocol() if declared != "0" else b""
        original = path + (f"?{scope.query_string}" if scope.query_string else "")
        facts = request_mod.read_http(
            scope.method,
            original,
            headers,
            body,
            client_address(headers, scope.client),
            self.checker.read_config(egress=provider is not None),
        )
        try:
            tracer = self.checker.tracer
            if tracer is None:
                answer = await self._check(facts, provider, None, started)
            else:
                parent = tracing.parent_context(None, headers)
                with tracer.start_as_current_span(tracing.SPAN_NAME, context=parent, kind=SpanKind.SERVER) as span:
                    answer = await self._check(facts, provider, span, started)
        except Exception:
            # As over gRPC: never a pass. Envoy passes this 503 on to the client.
            log.exception("check_failed", path=clip(facts.path, MODEL), transport="http")
            protocol.response_bytes(503, [_JSON], _FAILED)
            return
        status, out, payload = answer
        protocol.response_bytes(status, out, payload)

    def _not_a_check(self, path: str, protocol: Any) -> None:
        if path == HEALTH_PATH:
            status = 200 if self.ready() else 503
            protocol.response_bytes(status, [_JSON], b'{"serving": %s}' % (b"true" if status == 200 else b"false"))
        elif path.startswith(UNROUTED_PREFIX + "/"):
            protocol.response_bytes(403, [_JSON], _UNROUTED)
        else:
            protocol.response_bytes(404, [_JSON], _NOT_FOUND)

    async def _check(
        self, facts: request_mod.RequestFacts, provider: str | None, span: Span | None, started: float
    ) -> HttpAnswer:
        checked = await self.checker.check(facts, provider)
        answer = checked.answer(response_mod.build_http)
        self.checker.answered(checked, span, started)
        return answer


class HttpCheckServer:
    """granian, embedded in authz's event loop, on the claimed `ext_authz_http_listen` port."""

    def __init__(self, app: HttpCheck, listen: str):
        host, port = ports.split(listen)
        self.listen = listen
        self.server = Server(
            app,
            address=host,
            port=port,
            interface=Interfaces.RSGI,
            http=HTTPModes.http1,
            websockets=False,  # an Upgrade header Envoy forwards is a header, never a switch here
            backlog=1024,
            log_enabled=False,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(), name="authz-ext-authz-http")
        await asyncio.sleep(0)  # let it bind before start-up reports the ports

    async def stop(self, grace_s: float) -> None:
        if self._task is None:
            return
        self.server.stop()  # type: ignore[no-untyped-call]  # granian's, untyped
        try:
            await asyncio.wait_for(self._task, grace_s + 1)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
