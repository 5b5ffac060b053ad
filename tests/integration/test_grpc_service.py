"""The service over a real gRPC socket (no Envoy): Check, grpc.health.v1, /readyz and
/metrics, with the org taken from a header that Envoy sets (org_source = "header")."""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest
import redis.asyncio as aioredis
from envoy.service.auth.v3 import external_auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authz.policy.catalog import parse
from authz.server.app import App
from authz.state.layout import Keys
from authz.state.store import Store
from authz.v1 import policy_pb2
from devstack.stack import SAMPLE_CATALOG, claimed_settings
from support.checkrequests import check_request
from support.policies import DEMO_POLICY


@pytest.fixture
async def app(redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    store = Store(client, Keys("grpc:"))
    await store.load_catalog(parse(SAMPLE_CATALOG.read_text()), "test")
    await store.set_policy("hdr-org", policy_pb2.CompliancePolicy(**DEMO_POLICY), "test")
    await client.aclose()
    settings = claimed_settings(
        {
            "AUTHZ_REDIS_URL": redis_server.url,
            "AUTHZ_KEY_PREFIX": "grpc:",
            "AUTHZ_ORG_SOURCE": "header",
            "AUTHZ_DRAIN_DELAY_S": "0",
        }
    )
    app = App(settings)
    await app.start()
    await asyncio.wait_for(app.cache.synced.wait(), 5)
    yield app
    await app.stop()


async def test_check_health_readiness_and_metrics(app):
    async with grpc.aio.insecure_channel(app.settings.grpc_listen) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(40):
            status = (
                await health.Check(health_pb2.HealthCheckRequest(service="envoy.service.auth.v3.Authorization"))
            ).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.05)
        assert status == health_pb2.HealthCheckResponse.SERVING

        check = external_auth_pb2_grpc.AuthorizationStub(channel)
        ok = await check.Check(check_request({"model": "azure/gpt-4o"}, {"x-org-id": "hdr-org"}))
        assert ok.status.code == 0
        assert {h.header.key: h.header.value for h in ok.ok_response.headers}["x-compliance-org"] == "hdr-org"

        denied = await check.Check(check_request({"model": "deepseek/deepseek-v3.2"}, {"x-org-id": "hdr-org"}))
        assert denied.denied_response.status.code == 403
        assert json.loads(denied.denied_response.body)["error"]["provider"] == "deepseek"

        # A bearer key means nothing in header mode: no org header, no org.
        anon = await check.Check(check_request({"model": "azure/gpt-4o"}, {"authorization": "Bearer x"}))
        assert anon.denied_response.status.code == 401

    async with httpx.AsyncClient(base_url=f"http://{app.settings.http_listen}") as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["catalog_version"] == 1
        assert (await http.get("/metrics")).status_code == 404  # not on the admin port
    async with httpx.AsyncClient(base_url=f"http://{app.settings.metrics_listen}") as http:
        assert (await http.get("/readyz")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'authz_decisions_total{reason="compliant",result="allowed"} ' in metrics
        assert 'authz_decisions_total{reason="provider_not_compliant",result="denied"} ' in metrics
        assert "authz_check_duration_seconds_bucket" in metrics


async def test_liveness_stays_serving_while_readiness_drains(app):
    async with grpc.aio.insecure_channel(app.settings.grpc_listen) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await app.drain()
        check = await health.Check(health_pb2.HealthCheckRequest(service="envoy.service.auth.v3.Authorization"))
        live = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert live.status == health_pb2.HealthCheckResponse.SERVING


async def test_an_unexpected_error_fails_the_check_and_says_why_in_the_log(app, monkeypatch):
    from structlog.testing import capture_logs

    # e.g. a Redis Cluster refusing a command: not a RedisError the cold path expects.
    async def refuse(org_id: str):
        raise RuntimeError("CROSSSLOT Keys in request don't hash to the same slot")

    monkeypatch.setattr(app.cache, "org", refuse)
    async with grpc.aio.insecure_channel(app.settings.grpc_listen) as channel:
        check = external_auth_pb2_grpc.AuthorizationStub(channel)
        request = check_request({"model": "azure/gpt-4o"}, {"x-org-id": "hdr-org"})
        request.attributes.request.http.path = "/v1/chat/completions?key=sk-secret-in-query"
        with capture_logs() as logged, pytest.raises(grpc.aio.AioRpcError) as failed:
            await check.Check(request)
    # A gRPC error: Envoy answers 503 (status_on_error), never a pass.
    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    [line] = [entry for entry in logged if entry["event"] == "check_failed"]
    assert line["path"] == "/v1/chat/completions" and line["log_level"] == "error" and line["exc_info"]
    assert "sk-secret" not in repr(line)


async def test_admin_grpc_refuses_a_large_message_before_any_token_is_checked(app):
    """The body of an admin call is read before its token: 2 MiB from anyone is refused."""
    from authz.v1 import admin_pb2, admin_pb2_grpc

    async with grpc.aio.insecure_channel(
        app.settings.admin_grpc_listen, options=[("grpc.max_send_message_length", 8 << 20)]
    ) as channel:
        admin = admin_pb2_grpc.PolicyAdminStub(channel)
        huge = admin_pb2.SetPolicyRequest(
            org_id="x", policy=policy_pb2.CompliancePolicy(model_denylist=["m" * 1000] * 2100)
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await admin.SetPolicy(huge)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        small = admin_pb2.GetPolicyRequest(org_id="x")
        with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
            await admin.GetPolicy(small)
        assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
