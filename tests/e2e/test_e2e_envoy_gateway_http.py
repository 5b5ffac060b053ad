"""Envoy Gateway with the Check over HTTP, as a cluster runs it: the envoy-gateway-http example
rendered with kustomize, translated as Envoy Gateway translates it (support.envoy_gateway), run
on the real Envoy in front of authz's HTTP ext_authz and the stand-in gateway. Every case runs
through our own front proxy (envoy/front-proxy-http.yaml) too: the two must answer alike.

Without headersToExtAuth Envoy sends an HTTP authorization server only Host, Method, Path,
Content-Length and Authorization: a second key went unseen (the request was judged as the other
key's org), every JSON request of an org with a policy was 415, and a client's x-compliance-*
headers reached the gateway.
"""

from __future__ import annotations

import pytest
import yaml

from devstack.envoy_config import validate
from devstack.stack import Stack
from support import kustomize
from support.envoy_gateway import translate
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e
SPOOF = {
    "x-compliance-allowed-providers": "deepseek",
    "x-compliance-org": "someone-else",
    "x-compliance-policy-version": "999",
    "x-compliance-org-assertion": "forged",
    "x-compliance-bypass": "1",
}


@pytest.fixture(scope="module")
def envoy_gateway_stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("envoy-gateway-http")
    config = workdir / "envoy-gateway.yaml"
    config.write_text(yaml.safe_dump(translate(kustomize.rendered("examples/envoy-gateway-http"))))
    checked = validate(config)
    assert checked.returncode == 0, checked.stderr
    s = Stack.start(
        workdir,
        transport="http",
        envoy_config=config,
        authz_settings={"provider_header": "x-provider", "routing_enforcement": "header"},
    )
    try:
        s.admin.load_catalog()
        s.wait_ready()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module", params=["envoy-gateway", "front-proxy"])
def stack(request):
    name = "envoy_gateway_stack" if request.param == "envoy-gateway" else "http_stack"
    return request.getfixturevalue(name)


def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "the prompt"}]}


def reached(org) -> list[dict]:
    return org.received()


def test_a_second_key_is_a_credential_conflict(org, stack):
    org.set_policy(**DEMO_POLICY)
    before = len(stack.received())
    r = org.post(chat("azure/gpt-4o"), headers={"x-litellm-api-key": "sk-someone-elses-key"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "credential_conflict", r.text
    assert len(stack.received()) == before


def test_a_json_request_is_judged_by_its_model(org):
    org.set_policy(**DEMO_POLICY)
    ok = org.post(chat("azure/gpt-4o"))
    assert ok.status_code == 200, ok.text
    blocked = org.post(chat("deepseek/deepseek-v3.2"))
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "provider_not_compliant"
    [got] = reached(org)
    assert got["headers"]["x-compliance-allowed-providers"] == "azure"


def test_the_model_header_and_client_requirements_are_read(org):
    org.set_policy(**DEMO_POLICY)
    mismatch = org.post(chat("azure/gpt-4o"), headers={"x-model": "deepseek/deepseek-v3.2"})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "model_mismatch"
    unknown = org.post(chat("azure/gpt-4o"), headers={"x-compliance-require": "zdr"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_requirement"
    assert org.post(chat("azure/gpt-4o"), headers={"x-compliance-require": "gdpr"}).status_code == 200
    [got] = reached(org)
    assert "x-compliance-require" not in got["headers"]  # read by authz, never passed on


@pytest.mark.parametrize("policy", [True, False], ids=["policy", "no-policy"])
def test_a_clients_compliance_headers_never_reach_the_gateway(org, policy):
    if policy:
        org.set_policy(**DEMO_POLICY)
    r = org.post(chat("azure/gpt-4o"), headers=SPOOF)
    assert r.status_code == 200, r.text
    [got] = reached(org)
    ours = {k: v for k, v in got["headers"].items() if k.startswith("x-compliance-")}
    if policy:
        assert ours.pop("x-compliance-allowed-providers") == "azure"
        assert ours.pop("x-compliance-org") == org.id and ours.pop("x-compliance-policy-version") == "1"
    decision = ours.pop("x-compliance-decision-id")
    # Envoy Gateway's API has no allowed_client_headers_on_success: its client is not told the
    # decision id of an allowed request (our front proxy tells it).
    assert r.headers.get("x-compliance-decision-id", decision) == decision
    assert ours == {}, ours
