"""Fast tests for what only end-to-end tests used to catch (a mutation audit found these caught
nowhere else): the service in process, over a real gRPC socket, on a real Redis."""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest
import redis.asyncio as aioredis
from envoy.service.auth.v3 import external_auth_pb2_grpc

from authz.policy.catalog import parse
from authz.server import buckets
from authz.server.app import App
from authz.server.inspection_budget import InspectionBudget
from authz.state.layout import Keys
from authz.state.store import Store
from authz.v1 import policy_pb2
from devstack.stack import SAMPLE_CATALOG, claimed_settings
from support.checkrequests import check_request
from support.policies import DEMO_POLICY

MIB = 1024 * 1024


async def _app(redis_server, prefix: str, **settings: str) -> App:
    client = aioredis.Redis.from_url(redis_server.url)
    store = Store(client, Keys(prefix))
    await store.load_catalog(parse(SAMPLE_CATALOG.read_text()), "test")
    for org in ("acme", "other"):
        await store.set_plan(org, "enterprise", "test")
        await store.set_policy(org, policy_pb2.CompliancePolicy(**DEMO_POLICY), "test")
    await store.add_api_key("sk-acme-1", "acme", "test")
    await store.add_api_key("sk-acme-2", "acme", "test")
    await store.add_api_key("sk-other", "other", "test")
    await client.aclose()
    env = {"AUTHZ_REDIS_URL": redis_server.url, "AUTHZ_KEY_PREFIX": prefix, "AUTHZ_DRAIN_DELAY_S": "0"}
    app = App(claimed_settings({**env, **{f"AUTHZ_{k.upper()}": v for k, v in settings.items()}}))
    await app.start()
    await asyncio.wait_for(app.cache.synced.wait(), 5)
    return app


def _large(key: str) -> object:
    body = json.dumps({"model": "azure/gpt-4o", "messages": [{"role": "user", "content": "x" * (3 * MIB // 2)}]})
    return check_request(body, {"authorization": f"Bearer {key}"})


async def test_the_inspection_budget_is_the_orgs_not_each_keys(redis_server):
    """Two keys of one org draw one bucket: a second key is no second budget."""
    app = await _app(
        redis_server, "budget:", max_request_bytes=str(2 * MIB), inspection_mib_per_s="0.001", inspection_burst_mib="2"
    )
    try:
        async with grpc.aio.insecure_channel(app.settings.grpc_listen) as channel:
            check = external_auth_pb2_grpc.AuthorizationStub(channel)
            first = await check.Check(_large("sk-acme-1"))
            assert first.status.code == 0, first.denied_response.body
            second = await check.Check(_large("sk-acme-2"))
            assert second.denied_response.status.code == 429
            assert json.loads(second.denied_response.body)["error"]["code"] == "inspection_budget_exceeded"
            other = await check.Check(_large("sk-other"))  # another org: its own bucket
            assert other.status.code == 0
    finally:
        await app.stop()


def test_after_a_long_idle_the_budget_is_its_burst_not_more(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(buckets.time, "monotonic", lambda: clock[0])
    budget = InspectionBudget(bytes_per_s=16 * MIB, burst_bytes=64 * MIB)
    assert budget.allow("org", 32 * MIB)
    clock[0] += 3600.0  # an hour idle refills to the burst, never beyond it
    assert [budget.allow("org", 32 * MIB) for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize("org", ["acme,evil", "acme, evil", '["acme"]', "acme evil"])
async def test_an_org_header_naming_more_than_one_org_is_refused(redis_server, org):
    """A list (or a header sent twice, which Envoy joins with ",") is no org id."""
    app = await _app(redis_server, "hdr-list:", org_source="header")
    try:
        async with grpc.aio.insecure_channel(app.settings.grpc_listen) as channel:
            check = external_auth_pb2_grpc.AuthorizationStub(channel)
            answer = await check.Check(check_request({"model": "azure/gpt-4o"}, {"x-org-id": org}))
            assert answer.denied_response.status.code == 401
            assert json.loads(answer.denied_response.body)["error"]["code"] == "org_malformed"
    finally:
        await app.stop()


async def test_healthz_answers_503_while_draining(redis_server):
    """Envoy stops sending Checks (over HTTP ext_authz) to a draining authz only if its health
    check on the Check port says so."""
    app = await _app(redis_server, "drain:", ext_authz_http_listen="127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=f"http://{app.settings.ext_authz_http_listen}") as http:
            assert (await http.get("/healthz")).status_code == 200
            app.draining = True
            assert (await http.get("/healthz")).status_code == 503
    finally:
        await app.stop()
