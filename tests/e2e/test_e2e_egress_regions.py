"""The providers EU residency is met with, at the egress checkpoint: Azure OpenAI per resource,
AWS Bedrock per region (signed by the egress for the regional host) and Google Vertex AI per
region, each route naming its regional catalog entry.

A real LiteLLM proxy calls them through the shipped egress Envoy (envoy/egress.yaml, its clusters
pointed at a loopback capture server; the test adds a US route beside each shipped EU one). The
ingress check is bypassed (the calls go straight to LiteLLM with an org assertion, as if ingress
had let them through): a call reaches the capture server only when its region complies.
Vertex is called as a gateway calls it (LiteLLM would first fetch a Google token, which needs a
network this machine does not have): the gateway keeps its own credentials there.
"""

from __future__ import annotations

import copy
import time

import httpx
import pytest

from authz.check import assertion
from devstack.stack import Stack, free_port
from support.egress import egress_envoy
from support.litellm import SHIPPED_CATALOG, import_catalog, start_litellm

MASTER = "sk-litellm-regions-egress"
KEY = "r" * 40
AWS_KEY_ID = "AKIAEGRESSONLYKEY000"  # given to the egress Envoy, never to the gateway
EU_ONLY = {"enabled": True, "data_residency": ["eu"]}
pytestmark = pytest.mark.e2e


def us_routes(config: dict) -> None:
    """Beside each shipped EU route, its US twin (as an operator adds one per region)."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    twins = {
        "/azure/contoso-swedencentral/": ("/azure/contoso-eastus/", "azure-eastus", None),
        "/bedrock/eu-central-1/": ("/bedrock/us-east-1/", "aws-bedrock-us-east-1", "us-east-1"),
        "/vertex/europe-west4/": ("/vertex/us-central1/", "google-vertex-us-central1", None),
    }
    for route in list(routes):
        twin = twins.get(route["match"]["prefix"])
        if twin is None:
            continue
        prefix, provider, region = twin
        added = copy.deepcopy(route)
        added["match"]["prefix"] = prefix
        per_filter = added["typed_per_filter_config"]
        per_filter["envoy.filters.http.ext_authz"]["check_settings"]["context_extensions"]["provider"] = provider
        if region:
            signing = per_filter["envoy.filters.http.aws_request_signing"]["aws_request_signing"]
            signing["region"], signing["host_rewrite"] = region, f"bedrock-runtime.{region}.amazonaws.com"
        routes.insert(routes.index(route), added)


@pytest.fixture(scope="module")
def litellm_port():
    return free_port()


@pytest.fixture(scope="module")
def stack(litellm_port, tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp("egress-regions"),
        upstream_port=litellm_port,
        authz_settings={"naming_profile": "litellm", "routing_enforcement": "strict", "org_assertion_key": KEY},
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def egress(stack, capture, tmp_path_factory):
    aws = {"AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": "egress-secret"}
    with egress_envoy(
        stack.ports["authz_grpc"], capture.port, tmp_path_factory.mktemp("egress"), aws, us_routes
    ) as url:
        yield url


@pytest.fixture(scope="module")
def litellm(stack, egress, litellm_port, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("litellm-regions-egress")
    config = workdir / "config.yaml"
    azure = 'api_key: k, api_version: "2024-06-01"'
    bedrock = "aws_access_key_id: gateway-holds-no-key, aws_secret_access_key: x"
    model = '"bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"'
    config.write_text(
        f"""
model_list:
  - {{model_name: gpt-eu, litellm_params: {{model: azure/gpt-4o, region_name: swedencentral,
      api_base: "{egress}/azure/contoso-swedencentral", {azure}}}}}
  - {{model_name: gpt-us, litellm_params: {{model: azure/gpt-4o, region_name: eastus,
      api_base: "{egress}/azure/contoso-eastus", {azure}}}}}
  - {{model_name: claude-eu, litellm_params: {{model: {model}, aws_region_name: eu-central-1,
      aws_bedrock_runtime_endpoint: "{egress}/bedrock/eu-central-1", {bedrock}}}}}
  - {{model_name: claude-us, litellm_params: {{model: {model}, aws_region_name: us-east-1,
      aws_bedrock_runtime_endpoint: "{egress}/bedrock/us-east-1", {bedrock}}}}}
  - {{model_name: gemini-eu, litellm_params: {{model: vertex_ai/gemini-2.5-pro, vertex_location: europe-west4}}}}
  - {{model_name: gemini-us, litellm_params: {{model: vertex_ai/gemini-2.5-pro, vertex_location: us-central1}}}}
router_settings:
  num_retries: 0
  disable_cooldowns: true
general_settings:
  master_key: {MASTER}
  forward_client_headers_to_llm_api: true   # the org assertion reaches the egress checkpoint
"""
    )
    imported = workdir / "catalog.json"
    import_catalog(config, imported, stack.authz_env, base=SHIPPED_CATALOG)
    stack.admin.load_catalog(imported)
    stack.admin.set_plan("company", "enterprise")
    stack.admin.set_policy("company", **EU_ONLY)
    stack.wait_ready()
    proc, _ = start_litellm(config, litellm_port)
    yield f"http://127.0.0.1:{litellm_port}"
    proc.stop()


def asserted() -> dict[str, str]:
    return {assertion.HEADER: assertion.sign("company", KEY.encode(), time.time(), 600)}


def chat(litellm: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "the prompt"}]}
    headers = {"authorization": f"Bearer {MASTER}", **asserted()}
    return httpx.post(f"{litellm}/v1/chat/completions", json=body, headers=headers, timeout=60)


def test_azure_reaches_the_provider_only_from_a_resource_in_the_eu(litellm, capture):
    before = len(capture.seen)
    assert chat(litellm, "gpt-eu").status_code == 200
    assert capture.providers()[before:] == ["azure"]
    refused = chat(litellm, "gpt-us")
    assert refused.status_code >= 400 and capture.providers()[before + 1 :] == []


def test_bedrock_is_signed_by_the_egress_for_the_regional_host_and_only_in_the_eu(litellm, capture):
    before = len(capture.seen)
    reply = chat(litellm, "claude-eu")
    assert reply.status_code == 200, reply.text
    assert capture.providers()[before:] == ["bedrock"]
    headers = capture.headers[before]
    assert headers["host"] == "bedrock-runtime.eu-central-1.amazonaws.com"
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")
    assert "/eu-central-1/bedrock/aws4_request" in headers["authorization"]
    assert "gateway-holds-no-key" not in headers["authorization"]
    refused = chat(litellm, "claude-us")
    assert refused.status_code >= 400 and capture.providers()[before + 1 :] == []


@pytest.mark.parametrize(("region", "served"), [("europe-west4", True), ("us-central1", False)])
def test_vertex_reaches_the_provider_only_in_an_eu_region(litellm, egress, capture, region, served):
    path = f"/vertex/{region}/v1/projects/p/locations/{region}/publishers/google/models/gemini-2.5-pro:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "the prompt"}]}]}
    headers = {"authorization": "Bearer ya29.the-gateways-own-token", **asserted()}
    before = len(capture.seen)
    r = httpx.post(egress + path, json=body, headers=headers, timeout=30)
    if served:
        assert r.status_code == 200 and capture.providers()[before:] == ["vertex"]
        assert capture.headers[before]["authorization"] == "Bearer ya29.the-gateways-own-token"
        assert assertion.HEADER not in capture.headers[before]  # authz's header never leaves
    else:
        assert r.status_code == 403 and capture.providers()[before:] == []
        assert r.json()["error"]["failed_requirements"] == ["data_residency"]
