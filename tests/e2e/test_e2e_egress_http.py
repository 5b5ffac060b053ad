"""The egress checkpoint over Envoy's HTTP ext_authz (envoy/egress-http.yaml), run as shipped
with its provider clusters pointed at a loopback capture server: each route's http_service
override sends authz `/egress/<provider>` in front of the gateway's path, so the provider is
the route's and nothing the gateway sends (path, headers, body) can name another.

The calls go straight to the egress Envoy as a gateway would make them, carrying an org
assertion minted with the shared key (as if the ingress check had let the request through).
Policy: DEMO_POLICY on the shipped catalog (Groq complies; DeepSeek and Anthropic do not).
The gRPC egress (egress.yaml) is proven behind real gateways in test_e2e_egress.py and others.
"""

from __future__ import annotations

import time

import httpx
import pytest

from authz.check import assertion
from devstack.stack import Stack, wait_until
from support.egress import egress_envoy
from support.litellm import SHIPPED_CATALOG
from support.policies import DEMO_POLICY

KEY = "k" * 40  # the org assertion key both checkpoints share
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp("egress-http-stack"),
        transport="http",
        authz_settings={"org_assertion_key": KEY},
    )
    s.admin.load_catalog(SHIPPED_CATALOG)
    s.admin.set_plan("company", "enterprise")
    s.admin.set_policy("company", **DEMO_POLICY)
    s.wait_ready()
    yield s
    s.stop()


def unrouted(config: dict) -> None:
    """A route an operator added without the http_service override (it keeps the filter's prefix)."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    routes.insert(0, {"match": {"prefix": "/forgotten/"}, "route": {"cluster": "deepseek", "timeout": "0s"}})


@pytest.fixture(scope="module")
def egress(stack, capture, tmp_path_factory):
    port = stack.ports["authz_ext_authz_http"]
    with egress_envoy(port, capture.port, tmp_path_factory.mktemp("egress"), more=unrouted, transport="http") as url:
        yield url


def call(egress: str, path: str, model: str = "llama-3.3-70b-versatile", token: str | None = "valid", **headers):
    if token is not None:
        headers[assertion.HEADER] = (
            assertion.sign("company", KEY.encode(), time.time(), 600) if token == "valid" else token
        )
    body = {"model": model, "messages": [{"role": "user", "content": "the prompt"}]}
    return httpx.post(egress + path, json=body, headers={"authorization": "Bearer sk-provider", **headers}, timeout=30)


def test_a_compliant_providers_call_goes_out_without_our_headers(egress, capture):
    before = len(capture.providers())
    r = call(egress, "/groq/openai/v1/chat/completions")
    assert r.status_code == 200, r.text
    assert capture.providers()[before:] == ["groq"]
    assert capture.paths[-1] == "/groq/openai/v1/chat/completions"  # the gateway's path, as it sent it
    assert not [h for h in capture.headers[-1] if h.startswith("x-compliance-")]


def test_a_call_to_a_non_compliant_provider_is_stopped_and_recorded(stack, egress, capture):
    before = len(capture.providers())
    r = call(egress, "/deepseek/v1/chat/completions", model="deepseek-chat")
    assert r.status_code == 403 and r.json()["error"]["code"] == "provider_not_compliant", r.text
    assert r.headers["x-compliance-decision-id"]
    assert capture.providers()[before:] == []
    decision = r.headers["x-compliance-decision-id"]

    def recorded() -> list[dict]:
        return [e for e in stack.admin.security_events() if e.get("decision_id") == decision]

    wait_until(recorded, 10, "the security event")  # written in the background
    [event] = recorded()
    assert (event["checkpoint"], event["reason"]) == ("egress", "provider_not_compliant")
    assert [p["provider"] for p in event["providers"]] == ["deepseek"]
    assert event["path"] == "/deepseek/v1/chat/completions"  # the gateway's call, without authz's prefix


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        # The gateway's path names the compliant provider after the route's prefix...
        ("/deepseek/egress/groq/v1/chat/completions", {}),
        ("/deepseek/../deepseek/v1/chat/completions", {}),
        # ...or its headers say the call is for another provider or path.
        (
            "/deepseek/v1/chat/completions",
            {"x-envoy-original-path": "/egress/groq/groq/v1", "x-compliance-provider": "groq"},
        ),
    ],
    ids=["path-after-prefix", "dot-segments", "headers"],
)
def test_nothing_the_gateway_sends_chooses_the_provider(egress, capture, path, headers):
    before = len(capture.providers())
    r = call(egress, path, **headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "provider_not_compliant", r.text
    assert capture.providers()[before:] == []


def test_the_provider_of_the_route_is_judged_whatever_the_path_after_it_says(egress, capture):
    """The other way round: a compliant route's call is judged as the route's provider and goes
    to that provider, whatever provider names its own path holds."""
    before = len(capture.providers())
    r = call(egress, "/groq/egress/deepseek/openai/v1/chat/completions")
    assert r.status_code == 200, r.text
    assert capture.providers()[before:] == ["groq"]


@pytest.mark.parametrize(
    "token",
    [None, "v1.company.9999999999.0123456789abcdef.forged", assertion.sign("company", b"x" * 40, time.time(), 600)],
    ids=["missing", "forged", "wrong-key"],
)
def test_only_a_valid_org_assertion_gets_a_call_out(egress, capture, token):
    before = len(capture.providers())
    r = call(egress, "/groq/openai/v1/chat/completions", token=token)
    assert r.status_code in (400, 401, 403), r.text
    assert capture.providers()[before:] == []


def test_a_route_without_the_override_sends_nothing(egress, capture):
    before = len(capture.providers())
    r = call(egress, "/forgotten/deepseek/v1/chat/completions")
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_egress_route", r.text
    r = call(egress, "/evil.example/v1/chat/completions")  # no route at all: Envoy's own answer
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_egress_route"
    assert capture.providers()[before:] == []
