"""OpenTelemetry tracing of Checks: one span per Check, continuing the caller's trace.

Off unless a tracer provider is configured: with `otlp_endpoint` set, authz installs the SDK's
provider with a batching OTLP/gRPC exporter (the `otlp` extra: pip install 'authz[otlp]'); a
program embedding authz may install its own provider instead (the tests use the SDK's
in-memory exporter). With neither, the Check path does no tracing work at all.

The trace context comes from the `traceparent` header of the request being checked (the
client's trace and its sampling decision), else from the Check call's gRPC metadata (Envoy's
traced ext_authz call, and Envoy's sampling decision). Spans carry the decision
(reason, org, model, providers, decision id), never a credential or the prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from authz.clip import MODEL, ORG, clip

if TYPE_CHECKING:
    from authz.check.verdict import Verdict

_PROPAGATOR = TraceContextTextMapPropagator()
SPAN_NAME = "authz.Check"


def configure(otlp_endpoint: str, service_name: str = "authz") -> None:
    """Install the SDK's tracer provider exporting to `otlp_endpoint` (nothing when empty).
    The settings refuse an endpoint when the exporter (the `otlp` extra) is not installed."""
    if not otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)))
    trace.set_tracer_provider(provider)


def tracer() -> trace.Tracer | None:
    """The tracer Checks use, or None when nobody configured a provider (no work per Check)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider.get_tracer("authz")


def parent_context(metadata: Iterable[tuple[str, Any]] | None, headers: Mapping[str, str]) -> Any:
    """The trace to continue: the checked request's `traceparent` (the trace the client asked
    for, with its sampling decision), else the Check call's gRPC metadata (Envoy's own span,
    when Envoy traces). None: start a new trace."""
    if "traceparent" in headers:
        carrier = {k: headers[k] for k in ("traceparent", "tracestate") if k in headers}
    else:
        carrier = {k: v for k, v in (metadata or ()) if k in ("traceparent", "tracestate") and isinstance(v, str)}
    return _PROPAGATOR.extract(carrier) if carrier else None


def describe(span: trace.Span, verdict: Verdict, decision_id: str, result: str, http_status: int) -> None:
    """The decision, as span attributes (bounded strings; no credential, no prompt)."""
    span.set_attribute("authz.decision_id", decision_id)
    span.set_attribute("authz.reason", verdict.reason.value)
    span.set_attribute("authz.result", result)
    span.set_attribute("http.response.status_code", http_status)
    if verdict.org_id:
        span.set_attribute("authz.org_id", clip(verdict.org_id, ORG))
    if verdict.model:
        span.set_attribute("authz.model", clip(verdict.model, MODEL))
    if verdict.allowed_providers:
        span.set_attribute("authz.allowed_providers", list(verdict.allowed_providers))
    if verdict.blocked:
        span.set_attribute("authz.blocked_providers", [provider for provider, _ in verdict.blocked])
    if verdict.policy_version:
        span.set_attribute("authz.policy_version", verdict.policy_version)
