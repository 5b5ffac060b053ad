"""LiteLLM's routing contract, proven against a real LiteLLM proxy.

The proxy runs offline: its deployments call a loopback capture server that records which
provider each prompt reached (one path prefix per provider), and the deployments meant to fail
point at a closed port. Each probe is first sent straight to LiteLLM, which proves the gateway
really sends that request to a provider the policy blocks; the same request through Envoy gets
authz's 4xx and the capture server sees nothing. Policy: DEMO_POLICY (Azure and Groq comply,
DeepSeek and Anthropic do not, in the shipped catalog); the catalog is imported from the
proxy's own config with `authz catalog import --from litellm`.
"""

from __future__ import annotations

import json

import httpx
import pytest

from devstack.stack import closed_port
from support.litellm import stack_behind_litellm, start_litellm
from support.policies import DEMO_POLICY

MASTER = "sk-litellm-master"
pytestmark = pytest.mark.e2e


def litellm_config(capture: int, closed: int) -> str:
    up, down = f"http://127.0.0.1:{capture}", f"http://127.0.0.1:{closed}"
    return f"""
model_list:
  - model_name: gpt-4o                     # Azure, compliant, but down: LiteLLM falls back
    litellm_params: {{model: azure/gpt-4o, api_base: "{down}", api_key: k, api_version: "2024-06-01"}}
  - model_name: llama                      # Groq, compliant
    litellm_params: {{model: groq/llama-3.3-70b-versatile, api_base: "{up}/groq/v1", api_key: k}}
  - model_name: llama-fb                   # Groq, down; the config falls back to DeepSeek
    litellm_params: {{model: groq/llama-3.3-70b-versatile, api_base: "{down}", api_key: k}}
  - model_name: deepseek-v3.2              # DeepSeek: trains on prompts
    litellm_params: {{model: deepseek/deepseek-chat, api_base: "{up}/deepseek/v1", api_key: k}}
  - model_name: "*"                        # a catch-all: every other name goes to DeepSeek
    litellm_params: {{model: "deepseek/*", api_base: "{up}/deepseek/v1", api_key: k}}
router_settings:
  num_retries: 0
  disable_cooldowns: true   # a deployment that failed stays a candidate: every test sees the same router
  fallbacks: [{{"llama-fb": ["deepseek-v3.2"]}}]
general_settings:
  master_key: {MASTER}
files_settings:                            # where /v1/files stores a file at each provider
  - {{custom_llm_provider: openai, api_base: "{up}/openai/v1", api_key: k}}
"""


@pytest.fixture(scope="module")
def litellm(capture, tmp_path_factory):
    config = tmp_path_factory.mktemp("litellm-routing") / "config.yaml"
    config.write_text(litellm_config(capture.port, closed_port()))
    proc, port = start_litellm(
        config,
        ANTHROPIC_API_BASE=f"http://127.0.0.1:{capture.port}/anthropic",
        ANTHROPIC_API_KEY="sk-ant-fake",
        OPENAI_API_BASE=f"http://127.0.0.1:{capture.port}/openai/v1",
        OPENAI_API_KEY="sk-openai-fake",
    )
    yield port, config
    proc.stop()


@pytest.fixture(scope="module")
def stack(litellm, tmp_path_factory):
    port, config = litellm
    workdir = tmp_path_factory.mktemp("stack-routing")
    s, _ = stack_behind_litellm(workdir, config, port, MASTER, "company", DEMO_POLICY)
    s.admin.add_api_key("sk-free", "free")  # an org without a policy
    s.wait_ready()
    yield s
    s.stop()


def send(base: str, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(base + path, json=body, headers=headers or {"authorization": f"Bearer {MASTER}"}, timeout=60)


def chat(model: str, **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "the prompt"}], **extra}


def direct_then_through_envoy(stack, litellm, capture, path, body, headers=None, reached="deepseek"):
    """The request straight to LiteLLM reaches `reached`; through Envoy it is refused by authz
    and reaches nothing. Returns authz's error."""
    before = len(capture.providers())
    direct = send(f"http://127.0.0.1:{litellm[0]}", path, body, headers)
    assert direct.status_code == 200, direct.text
    assert capture.providers()[before:] == [reached], "the probe must really leak without authz"
    before = len(capture.providers())
    refused = send(stack.url, path, body, headers)
    assert 400 <= refused.status_code < 500, refused.text
    error = refused.json()["error"]
    assert capture.providers()[before:] == [], "a prompt reached a provider through Envoy"
    return refused.status_code, error


@pytest.mark.parametrize(
    "fallbacks",
    [["deepseek-v3.2"], [{"gpt-4o": ["deepseek-v3.2"]}], [{"*": ["deepseek-v3.2"]}]],
    ids=["names", "group-map", "generic"],
)
def test_body_fallbacks_are_judged(stack, litellm, capture, fallbacks):
    status, error = direct_then_through_envoy(
        stack, litellm, capture, "/v1/chat/completions", chat("gpt-4o", fallbacks=fallbacks)
    )
    assert status == 403 and error["code"] == "no_compliant_provider" and error["model"] == "deepseek-v3.2"
    assert "fallbacks[0]" in error["message"]


def test_compliant_body_fallbacks_pass_and_serve(stack, capture):
    before = len(capture.providers())
    r = send(stack.url, "/v1/chat/completions", chat("gpt-4o", fallbacks=["llama"]))
    assert r.status_code == 200, r.text
    assert capture.providers()[before:] == ["groq"]  # Azure is down: LiteLLM fell back to a judged group


def test_config_fallbacks_make_a_group_unroutable(stack, litellm, capture):
    status, error = direct_then_through_envoy(stack, litellm, capture, "/v1/chat/completions", chat("llama-fb"))
    assert status == 403 and error["code"] == "routing_not_enforceable"
    assert [b["provider"] for b in error["blocked_providers"]] == ["deepseek"]


def test_a_catch_all_route_is_judged_by_where_it_sends(stack, litellm, capture):
    status, error = direct_then_through_envoy(stack, litellm, capture, "/v1/chat/completions", chat("azure/gpt-4o"))
    assert status == 403 and error["code"] == "provider_not_compliant" and error["provider"] == "deepseek"


def test_the_anthropic_pass_through_is_judged_as_anthropic(stack, litellm, capture):
    body = {"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "the prompt"}]}
    status, error = direct_then_through_envoy(
        stack, litellm, capture, "/anthropic/v1/messages", body, reached="anthropic"
    )
    assert status == 403 and error["provider"] == "anthropic"


@pytest.mark.parametrize(
    "extra",
    [
        {"custom_llm_provider": "deepseek"},
        {"router_settings_override": {"fallbacks": [{"llama": ["deepseek-v3.2"]}]}},
        {"api_base": "http://127.0.0.1:1/v1"},
    ],
    ids=["custom_llm_provider", "router_settings_override", "api_base"],
)
def test_fields_that_move_the_prompt_are_refused_by_name(stack, capture, extra):
    before = len(capture.providers())
    r = send(stack.url, "/v1/chat/completions", chat("llama", **extra))
    assert r.status_code == 400 and r.json()["error"]["code"] == "field_not_allowed"
    assert next(iter(extra)) in r.json()["error"]["message"]
    assert capture.providers()[before:] == []


def test_a_second_credential_litellm_prefers_is_a_conflict(stack, litellm, capture):
    headers = {"authorization": "Bearer sk-free", "x-litellm-api-key": f"Bearer {MASTER}"}
    before = len(capture.providers())
    # LiteLLM authenticates x-litellm-api-key first (the strict org's key) and serves DeepSeek.
    assert send(f"http://127.0.0.1:{litellm[0]}", "/v1/chat/completions", chat("deepseek-v3.2"), headers).is_success
    assert capture.providers()[before:] == ["deepseek"]
    before = len(capture.providers())
    r = send(stack.url, "/v1/chat/completions", chat("deepseek-v3.2"), headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "credential_conflict"
    assert capture.providers()[before:] == []


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/messages"])
def test_fallbacks_on_the_other_apis_are_judged_too(stack, capture, path):
    body = (
        {"model": "gpt-4o", "input": "the prompt", "fallbacks": ["deepseek-v3.2"]}
        if path == "/v1/responses"
        else {"model": "gpt-4o", "max_tokens": 5, "messages": [], "fallbacks": ["deepseek-v3.2"]}
    )
    before = len(capture.providers())
    r = send(stack.url, path, body)
    assert r.status_code == 403 and r.json()["error"]["model"] == "deepseek-v3.2"
    assert capture.providers()[before:] == []


def test_the_suggested_alternatives_are_names_litellm_serves(stack, capture):
    r = send(stack.url, "/v1/chat/completions", chat("deepseek-v3.2"))
    assert r.status_code == 403
    alternatives = r.json()["error"]["alternatives"]
    assert alternatives == ["gpt-4o", "llama"]  # the groups whose every candidate complies
    before = len(capture.providers())
    served = send(stack.url, "/v1/chat/completions", chat("llama"))
    assert served.status_code == 200 and capture.providers()[before:] == ["groq"]


def test_a_batch_file_is_judged_by_where_litellm_stores_it(stack, litellm, capture):
    """LiteLLM stores an uploaded file at OpenAI unless told otherwise (files_endpoints.py,
    create_file): the prompts in it reach OpenAI at upload, whatever models its lines name."""
    line = json.dumps({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": chat("llama")})
    files = {"file": ("in.jsonl", line.encode(), "application/jsonl")}
    headers = {"authorization": f"Bearer {MASTER}"}
    before = len(capture.providers())
    direct = httpx.post(
        f"http://127.0.0.1:{litellm[0]}/v1/files", data={"purpose": "batch"}, files=files, headers=headers, timeout=60
    )
    assert direct.status_code == 200, direct.text
    assert capture.providers()[before:] == ["openai"]
    before = len(capture.providers())
    r = httpx.post(stack.url + "/v1/files", data={"purpose": "batch"}, files=files, headers=headers, timeout=60)
    assert r.status_code == 403 and r.json()["error"]["provider"] == "openai", r.text
    assert capture.providers()[before:] == []
