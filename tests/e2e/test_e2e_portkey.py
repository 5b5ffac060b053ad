"""Portkey's routing contract, proven against the real Portkey gateway (`@portkey-ai/gateway`
from npm, tools/portkey) behind Envoy and authz, offline: every provider is a loopback capture
server, reached through custom hosts the operator allows (setting `custom_hosts`).

Each leak is first sent straight to Portkey, which proves it reaches a provider the policy
blocks; through Envoy authz refuses it and the capture server records nothing. Policy:
DEMO_POLICY on the shipped catalog (Groq complies; DeepSeek and OpenAI do not). The last tests
run Portkey's fallback to a blocked target with the ingress check bypassed: the egress
checkpoint stops it.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from devstack.stack import Proc, Stack, closed_port, free_port, wait_until
from support.egress import egress_envoy
from support.policies import DEMO_POLICY

ROOT = Path(__file__).resolve().parents[2]
PORTKEY = ROOT / "tools" / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
COMPLIANT, BLOCKED = "gpt-oss-120b", "deepseek-v4-pro"  # served by Groq / by DeepSeek in the catalog
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def portkey(tmp_path_factory):
    assert PORTKEY.exists(), "make test installs Portkey's gateway into tools/portkey (make portkey)"
    port = free_port()
    proc = Proc(
        "portkey", ["node", str(PORTKEY), f"--port={port}"], tmp_path_factory.mktemp("portkey") / "portkey.log"
    ).start()

    def up() -> bool:
        try:
            return proc.check_alive() and httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(up, 60, "Portkey gateway")
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="module")
def hosts(capture):
    """The provider hosts: the capture server per provider, and a closed port Groq falls from."""
    up = f"http://127.0.0.1:{capture.port}"
    return {
        "groq": f"{up}/groq/openai/v1",
        "deepseek": f"{up}/deepseek",
        "openai": f"{up}/openai/v1",
        "down": f"http://127.0.0.1:{closed_port()}/v1",
    }


@pytest.fixture(scope="module")
def stack(portkey, hosts, tmp_path_factory):
    allowed = [f"groq={hosts['groq']}", f"groq={hosts['down']}", f"deepseek={hosts['deepseek']}"]
    s = Stack.start(
        tmp_path_factory.mktemp("portkey-stack"),
        upstream_port=int(portkey.rpartition(":")[2]),
        authz_settings={
            "naming_profile": "portkey",
            "routing_enforcement": "strict",
            # Portkey's Authorization header is the provider's own key: one company-wide policy.
            "org_source": "static",
            "static_org_id": "company",
            "custom_hosts": ",".join(allowed + [f"openai={hosts['openai']}"]),
        },
    )
    s.admin.load_catalog(ROOT / "catalog" / "catalog.json")
    s.admin.set_plan("company", "enterprise")
    s.admin.set_policy("company", **DEMO_POLICY)
    s.wait_ready()
    yield s
    s.stop()


def send(base: str, headers: dict[str, str], model: str = COMPLIANT) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "the prompt"}]},
        headers={"authorization": "Bearer sk-provider", **headers},
        timeout=30,
    )


def target(hosts: dict[str, str], provider: str, host: str | None = None, **extra: object) -> dict:
    return {"provider": provider, "custom_host": hosts[host or provider], "api_key": "k", **extra}


def config(**c: object) -> dict[str, str]:
    return {"x-portkey-config": json.dumps(c)}


def probes(hosts: dict[str, str]) -> dict[str, tuple[dict[str, str], str]]:
    """name -> (headers, body model): each reaches DeepSeek or OpenAI straight through Portkey."""
    deepseek = target(hosts, "deepseek", override_params={"model": BLOCKED})
    return {
        "provider-header": ({"x-portkey-provider": "deepseek", "x-portkey-custom-host": hosts["deepseek"]}, BLOCKED),
        "fallback": (
            config(strategy={"mode": "fallback"}, targets=[target(hosts, "groq", "down"), deepseek]),
            COMPLIANT,
        ),
        "loadbalance": (
            config(
                strategy={"mode": "loadbalance"},
                targets=[{**deepseek, "weight": 1}, {**target(hosts, "groq"), "weight": 0}],
            ),
            COMPLIANT,
        ),
        "nested": (
            config(
                strategy={"mode": "fallback"},
                targets=[target(hosts, "groq", "down"), {"strategy": {"mode": "fallback"}, "targets": [deepseek]}],
            ),
            COMPLIANT,
        ),
        "override-model": (config(**target(hosts, "deepseek"), override_params={"model": BLOCKED}), COMPLIANT),
        "custom-host": (
            {"x-portkey-provider": "groq", "x-portkey-custom-host": hosts["deepseek"]},
            COMPLIANT,
        ),  # Groq's name on DeepSeek's host: not a host allowed for groq
    }


@pytest.mark.parametrize(
    "name", ["provider-header", "fallback", "loadbalance", "nested", "override-model", "custom-host"]
)
def test_no_prompt_reaches_a_blocked_provider_through_portkey(stack, portkey, hosts, capture, name):
    headers, model = probes(hosts)[name]
    before = len(capture.providers())
    direct = send(portkey, headers, model)
    assert direct.status_code == 200, direct.text
    assert capture.providers()[before:][-1] == "deepseek", "the probe must really leak without authz"
    before = len(capture.providers())
    refused = send(stack.url, headers, model)
    assert 400 <= refused.status_code < 500 and refused.json()["error"]["code"], refused.text
    assert capture.providers()[before:] == []


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"x-portkey-config": "pc-saved-123"}, "x-portkey-config"),
        ({"x-portkey-provider": "openai", "x-portkey-virtual-key": "vk-1"}, "x-portkey-virtual-key"),
        ({"x-portkey-provider": "groq", "x-portkey-custom-host": "http://evil.example/v1"}, "x-portkey-custom-host"),
        ({}, "x-portkey-provider"),
    ],
    ids=["saved-config", "virtual-key", "unlisted-host", "no-provider"],
)
def test_what_authz_cannot_judge_is_a_clear_400(stack, capture, headers, named):
    before = len(capture.providers())
    r = send(stack.url, headers)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "field_not_allowed")
    assert f"'{named}" in r.json()["error"]["message"]
    assert capture.providers()[before:] == []


def test_compliant_requests_are_served(stack, hosts, capture):
    before = len(capture.providers())
    single = send(stack.url, {"x-portkey-provider": "groq", "x-portkey-custom-host": hosts["groq"]})
    assert single.status_code == 200, single.text
    fallback = send(
        stack.url, config(strategy={"mode": "fallback"}, targets=[target(hosts, "groq", "down"), target(hosts, "groq")])
    )
    assert fallback.status_code == 200, fallback.text
    assert capture.providers()[before:] == ["groq", "groq"]


def test_a_fallback_target_the_ingress_check_did_not_see_is_stopped_at_egress(stack, portkey, capture, tmp_path):
    """Ingress bypassed: Portkey is called directly and falls back to DeepSeek through the egress
    routes (the org is the static one): the egress checkpoint refuses the call."""
    with egress_envoy(stack.ports["authz_grpc"], capture.port, tmp_path) as egress:
        down = {"provider": "groq", "custom_host": f"http://127.0.0.1:{closed_port()}/v1", "api_key": "k"}
        deepseek = {"provider": "deepseek", "custom_host": f"{egress}/deepseek", "api_key": "k"}
        groq = {"provider": "groq", "custom_host": f"{egress}/groq/openai/v1", "api_key": "k"}
        before = len(capture.providers())
        blocked = send(portkey, config(strategy={"mode": "fallback"}, targets=[down, deepseek]), BLOCKED)
        assert blocked.status_code >= 400 and capture.providers()[before:] == []
        served = send(portkey, config(strategy={"mode": "fallback"}, targets=[down, groq]))
        assert served.status_code == 200 and capture.providers()[before:] == ["groq"]
    events = [e for e in stack.admin.security_events() if e.get("checkpoint") == "egress"]
    assert events and events[-1]["providers"][0]["provider"] == "deepseek"
