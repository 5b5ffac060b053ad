"""Tracing through a real Envoy: authz (in this process, so the OpenTelemetry SDK's in-memory
exporter sees its spans) continues the client's W3C trace with one span per Check carrying the
decision, never the API key or the prompt; the client gets the decision id on allowed answers."""

from __future__ import annotations

import asyncio
import sys

import httpx
import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from authz.policy.catalog import parse
from authz.server.app import App
from authz.state.layout import Keys
from authz.state.store import Store
from authz.v1 import policy_pb2
from devstack.envoy_config import envoy_binary, render
from devstack.stack import FRONT_PROXY, SAMPLE_CATALOG, Proc, claimed_settings, first_listener_port
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e
EXPORTER = InMemorySpanExporter()
KEY = "sk-traced-secret-key"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def _provider() -> None:
    # A process has one tracer provider: install ours once (authz only reads it).
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)


async def _wait(url: str, what: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(url)).is_success:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(what)


async def _wait_healthy(admin: str, cluster: str) -> None:
    """Until Envoy's active health check reports every host of `cluster` healthy (bounded)."""
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            lines = (await client.get(f"{admin}/clusters")).text.splitlines()
            flags = [line for line in lines if line.startswith(f"{cluster}::") and "::health_flags::" in line]
            if flags and all(line.endswith("::healthy") for line in flags):
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"Envoy never marked {cluster} healthy")


async def _wait_file(path) -> None:
    for _ in range(200):
        if path.exists() and path.read_text().strip():  # Envoy writes its admin address in place
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{path.name} was never written")


def sample_everything(config: dict) -> None:
    """Envoy's random_sampling 100 % (the front proxy ships 0: it continues clients' traces only)."""
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                f["typed_config"]["tracing"]["random_sampling"] = {"value": 100}


@pytest.fixture
async def traced(request, redis_server, tmp_path):
    _provider()
    client = aioredis.Redis.from_url(redis_server.url)
    store = Store(client, Keys("traced:"))
    await store.load_catalog(parse(SAMPLE_CATALOG.read_text()), "test")
    await store.set_plan("traced-org", "enterprise", "test")
    await store.set_policy("traced-org", policy_pb2.CompliancePolicy(**DEMO_POLICY), "test")
    await store.add_api_key(KEY, "traced-org", "test")
    await client.aclose()
    settings = claimed_settings(
        {
            "AUTHZ_REDIS_URL": redis_server.url,
            "AUTHZ_KEY_PREFIX": "traced:",
            "AUTHZ_DRAIN_DELAY_S": "0",
            "AUTHZ_EVENTS_SPOOL_DIR": str(tmp_path / "spool"),
        }
    )
    app = App(settings)
    await app.start()
    gateway = Proc(
        "gateway",
        [sys.executable, "-m", "devstack.standin_gateway", "--port", "0", "--port-file", str(tmp_path / "gw")],
        tmp_path / "gateway.log",
    ).start()
    envoy = Proc("envoy", [], tmp_path / "envoy.log")
    try:
        await _wait_file(tmp_path / "gw")
        gateway_port = int((tmp_path / "gw").read_text())
        config = render(
            FRONT_PROXY,
            {8080: 0, 9901: 0, 9001: int(settings.grpc_listen.rpartition(":")[2]), 8000: gateway_port},
            mutate=getattr(request, "param", None),
            directory=tmp_path,
        )
        admin_file = tmp_path / "envoy-admin"
        envoy.args = [envoy_binary(), "-c", config, "--concurrency", "1", "--admin-address-path", str(admin_file)]
        envoy.start()
        await _wait_file(admin_file)
        admin = "http://" + admin_file.read_text().strip()
        await _wait(f"http://{settings.metrics_listen}/readyz", "authz ready")
        await _wait(f"http://127.0.0.1:{gateway_port}/_requests", "gateway")
        await _wait(f"{admin}/ready", "envoy")
        await _wait_healthy(admin, "authz")  # Envoy's health check has marked authz healthy
        yield f"http://127.0.0.1:{first_listener_port(admin)}"
    finally:
        envoy.stop()
        gateway.stop()
        await app.stop()


def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "the secret board minutes"}]}


async def test_each_check_is_a_span_in_the_clients_trace(traced):
    EXPORTER.clear()
    headers = {"authorization": f"Bearer {KEY}", "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"}
    async with httpx.AsyncClient() as client:
        allowed = await client.post(traced + "/v1/chat/completions", json=chat("azure/gpt-4o"), headers=headers)
        denied = await client.post(
            traced + "/v1/chat/completions", json=chat("deepseek/deepseek-v3.2"), headers=headers
        )
    assert (allowed.status_code, denied.status_code) == (200, 403)
    spans = [s for s in EXPORTER.get_finished_spans() if s.name == "authz.Check"]
    assert len(spans) == 2
    for span in spans:
        assert format(span.context.trace_id, "032x") == TRACE_ID  # the client's trace, continued
        assert span.parent is not None and span.kind == trace.SpanKind.SERVER
    by_reason = {span.attributes["authz.reason"]: span for span in spans}
    ok, blocked = by_reason["compliant"], by_reason["provider_not_compliant"]
    assert ok.attributes["authz.allowed_providers"] == ("azure",) and ok.attributes["authz.result"] == "allowed"
    assert blocked.attributes["authz.blocked_providers"] == ("deepseek",)
    assert blocked.attributes["http.response.status_code"] == 403
    assert blocked.attributes["authz.org_id"] == "traced-org" and blocked.attributes["authz.model"]
    # the decision ids the client sees are the spans' (allowed answers carry it too)
    assert allowed.headers["x-compliance-decision-id"] == ok.attributes["authz.decision_id"]
    assert denied.json()["error"]["decision_id"] == blocked.attributes["authz.decision_id"]
    for span in spans:
        text = repr(dict(span.attributes))
        assert KEY not in text and "board minutes" not in text


async def test_without_client_context_authz_follows_envoys_sampling(traced):
    """The front proxy starts no trace of its own (random_sampling 0): authz records nothing."""
    EXPORTER.clear()
    async with httpx.AsyncClient() as client:
        r = await client.post(
            traced + "/v1/chat/completions", json=chat("azure/gpt-4o"), headers={"authorization": f"Bearer {KEY}"}
        )
    assert r.status_code == 200 and "x-compliance-decision-id" in r.headers
    assert [s for s in EXPORTER.get_finished_spans() if s.name == "authz.Check"] == []


@pytest.mark.parametrize("traced", [sample_everything], indirect=True)
async def test_when_envoy_traces_every_request_the_check_is_a_child_of_envoys_span(traced):
    EXPORTER.clear()
    async with httpx.AsyncClient() as client:
        r = await client.post(
            traced + "/v1/chat/completions", json=chat("azure/gpt-4o"), headers={"authorization": f"Bearer {KEY}"}
        )
    assert r.status_code == 200
    [span] = [s for s in EXPORTER.get_finished_spans() if s.name == "authz.Check"]
    assert span.parent is not None and format(span.context.trace_id, "032x") != TRACE_ID  # Envoy's new trace
    assert span.attributes["authz.reason"] == "compliant"
