"""The Check over gRPC: envoy.service.auth.v3.Authorization/Check.

Reads the CheckRequest into RequestFacts (authz.check.request.read), runs the Check
(authz.server.checker) and answers it as a CheckResponse (authz.check.response.build). The
egress checkpoint's route names its provider in the request's context extensions.
"""

from __future__ import annotations

import time

import grpc
import structlog
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from opentelemetry.trace import Span, SpanKind

from authz.check import egress
from authz.check import request as request_mod
from authz.check import response as response_mod
from authz.clip import MODEL, clip
from authz.server import tracing
from authz.server.checker import Checker

log = structlog.get_logger("authz.server.grpc_transport")


class GrpcCheck(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]  # generated, untyped
    def __init__(self, checker: Checker):
        self.checker = checker

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        try:
            tracer = self.checker.tracer
            if tracer is None:  # no tracer provider configured: no tracing work at all
                return await self._check(request, None)
            parent = tracing.parent_context(context.invocation_metadata(), request.attributes.request.http.headers)
            with tracer.start_as_current_span(tracing.SPAN_NAME, context=parent, kind=SpanKind.SERVER) as span:
                return await self._check(request, span)
        except Exception:
            # Still a gRPC error, so Envoy answers 503 (status_on_error) and never passes the
            # request; the log line says why, in the same shape as every other line.
            path = request.attributes.request.http.path.partition("?")[0]  # a query may hold a key
            log.exception("check_failed", path=clip(path, MODEL))
            raise

    async def _check(
        self, request: external_auth_pb2.CheckRequest, span: Span | None
    ) -> external_auth_pb2.CheckResponse:
        started = time.perf_counter()
        provider = egress.route_provider(request.attributes.context_extensions)
        facts = request_mod.read(request, self.checker.read_config(egress=provider is not None))
        checked = await self.checker.check(facts, provider)
        response = checked.answer(response_mod.build)
        self.checker.answered(checked, span, started)
        return response
