"""The egress checkpoint, proven with a real LiteLLM proxy whose provider base URLs point at the
shipped egress Envoy (envoy/egress.yaml, its provider clusters pointed at a loopback capture
server that stands in for every provider API).

Ingress judging is bypassed for the leak probes (they go straight to LiteLLM, carrying an org
assertion minted with the shared key, as if the ingress check had let them through): whatever
routed LiteLLM to DeepSeek or Anthropic, the egress check stops the call and the capture server
records nothing. Compliant requests go through both checkpoints. Policy: DEMO_POLICY on the
shipped catalog (Groq complies; DeepSeek and Anthropic do not).
"""

from __future__ import annotations

import time

import httpx
import pytest

from authz.check import assertion
from devstack.stack import Stack, closed_port, free_port, wait_until
from support.egress import egress_envoy
from support.litellm import SHIPPED_CATALOG, import_catalog, start_litellm
from support.policies import DEMO_POLICY

MASTER = "sk-litellm-master"
KEY = "k" * 40  # the org assertion key both checkpoints share
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def litellm_port():
    return free_port()  # LiteLLM starts last (it needs the egress URL), Envoy must know its port first


@pytest.fixture(scope="module")
def stack(litellm_port, tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp("egress-stack"),
        upstream_port=litellm_port,
        authz_settings={"naming_profile": "litellm", "routing_enforcement": "strict", "org_assertion_key": KEY},
    )
    s.admin.load_catalog(SHIPPED_CATALOG)
    s.admin.set_plan("company", "enterprise")
    s.admin.set_policy("company", **DEMO_POLICY)
    s.admin.add_api_key(MASTER, "company")
    s.wait_ready()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def egress(stack, capture, tmp_path_factory):
    with egress_envoy(stack.ports["authz_grpc"], capture.port, tmp_path_factory.mktemp("egress")) as url:
        yield url


@pytest.fixture(scope="module")
def litellm(stack, egress, litellm_port, tmp_path_factory):
    url = egress
    down = f"http://127.0.0.1:{closed_port()}"
    workdir = tmp_path_factory.mktemp("litellm-egress")
    config = workdir / "config.yaml"
    config.write_text(
        f"""
model_list:
  - {{model_name: llama, litellm_params: {{model: groq/llama-3.3-70b-versatile, api_key: k}}}}
  - {{model_name: deepseek-v3.2, litellm_params: {{model: deepseek/deepseek-chat, api_key: k}}}}
  - {{model_name: llama-fb, litellm_params: {{model: groq/llama-3.3-70b-versatile, api_base: "{down}", api_key: k}}}}
router_settings:
  num_retries: 0
  disable_cooldowns: true   # refused calls must not take a deployment out for the next test
  fallbacks: [{{"llama-fb": ["deepseek-v3.2"]}}]
general_settings:
  master_key: {MASTER}
  forward_client_headers_to_llm_api: true   # the org assertion reaches the egress checkpoint
"""
    )
    proc, _ = start_litellm(
        config,
        litellm_port,
        # Every provider's base URL is its egress route.
        GROQ_API_BASE=f"{url}/groq/openai/v1",
        DEEPSEEK_API_BASE=f"{url}/deepseek/v1",
        ANTHROPIC_API_BASE=f"{url}/anthropic",
        ANTHROPIC_API_KEY="sk-ant-fake",
        OPENAI_API_BASE=f"{url}/openai/v1",
    )
    # The ingress check judges LiteLLM's model groups: the catalog imported from this config.
    imported = workdir / "catalog.json"
    import_catalog(config, imported, stack.authz_env)
    version = stack.admin.load_catalog(imported)
    wait_until(lambda: httpx.get(stack.authz_http + "/readyz").json().get("catalog_version") == version, 10, "catalog")
    yield f"http://127.0.0.1:{litellm_port}"
    proc.stop()


def chat(model: str, **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "the prompt"}], **extra}


def signed(org: str = "company", now: float | None = None) -> str:
    return assertion.sign(org, KEY.encode(), time.time() if now is None else now, 600)


def straight_to_litellm(litellm: str, path: str, body: dict, token: str | None = "valid") -> httpx.Response:
    """A request that skipped the ingress check, carrying an org assertion (or not)."""
    headers = {"authorization": f"Bearer {MASTER}"}
    if token is not None:
        headers[assertion.HEADER] = signed() if token == "valid" else token
    return httpx.post(litellm + path, json=body, headers=headers, timeout=60)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", chat("llama-fb")),  # the config's fallback to DeepSeek
        ("/v1/chat/completions", chat("llama", custom_llm_provider="deepseek")),
        ("/v1/chat/completions", chat("deepseek-v3.2")),
        ("/anthropic/v1/messages", {"model": "claude-sonnet-4", "max_tokens": 5, "messages": []}),
    ],
    ids=["config-fallback", "custom_llm_provider", "plain", "anthropic-pass-through"],
)
def test_leaks_the_ingress_check_did_not_see_are_stopped_at_egress(stack, litellm, capture, path, body):
    before = len(capture.providers())
    r = straight_to_litellm(litellm, path, body)
    assert r.status_code >= 400, r.text  # LiteLLM reports the provider's refusal
    assert capture.providers()[before:] == [], "a prompt reached a non-compliant provider"
    events = [e for e in stack.admin.security_events() if e.get("checkpoint") == "egress"]
    assert events and events[-1]["reason"] == "provider_not_compliant"


def test_body_fallbacks_past_a_failing_deployment_are_stopped_at_egress(stack, litellm, capture):
    before = len(capture.providers())
    r = straight_to_litellm(litellm, "/v1/chat/completions", chat("llama-fb", fallbacks=["deepseek-v3.2"]))
    assert r.status_code >= 400
    assert capture.providers()[before:] == []


def test_a_compliant_request_is_served_through_both_checkpoints(stack, litellm, capture):
    before = len(capture.providers())
    r = httpx.post(
        stack.url + "/v1/chat/completions",
        json=chat("llama"),
        headers={"authorization": f"Bearer {MASTER}"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert capture.providers()[before:] == ["groq"]
    # The provider never sees the assertion or any other x-compliance-* header.
    assert not [h for h in capture.headers[-1] if h.startswith("x-compliance-")]


@pytest.mark.parametrize(
    "token",
    [
        None,  # no assertion: multi-tenant egress does not know the org
        signed()[:-4] + "AAAA",  # forged signature
        signed(org="other"),  # valid, but an org with no policy... is still signed: allowed
        signed(now=time.time() - 3600),  # expired: replayed from an old request
        assertion.sign("company", b"x" * 40, time.time(), 600),  # signed with another key
    ],
    ids=["missing", "forged", "other-org", "replayed", "wrong-key"],
)
def test_only_a_valid_org_assertion_gets_a_request_out(stack, litellm, capture, token):
    before = len(capture.providers())
    r = straight_to_litellm(litellm, "/v1/chat/completions", chat("llama"), token=token)
    if token is not None and assertion.verify(token, KEY.encode(), time.time()) == "other":
        assert r.status_code == 200 and capture.providers()[before:] == ["groq"]  # org without a policy
        return
    assert r.status_code >= 400, r.text
    assert capture.providers()[before:] == []


def test_a_path_with_no_egress_route_reaches_nothing(egress, capture):
    before = len(capture.providers())
    r = httpx.post(egress + "/evil.example/v1/chat/completions", json=chat("llama"), timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_egress_route"
    assert capture.providers()[before:] == []
