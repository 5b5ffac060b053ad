"""A real LiteLLM proxy as the gateway behind Envoy and authz (offline: mock_response
deployments, a master key, the local cost map).

LiteLLM load-balances a model_name over its deployments and does not read
x-compliance-allowed-providers. In `header` mode an automatic request for a model with one
blocked deployment is therefore served by the blocked provider some of the time, which is why
`strict` is the default; in `strict` none is, and the client is told the pinned name that
passes, spelled the way LiteLLM reads it.
"""

from __future__ import annotations

import collections
import time

import httpx
import pytest

from devstack.stack import Stack, wait_until
from support.litellm import start_litellm
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e

CONFIG = """
model_list:
  - model_name: deepseek-v3.2            # two deployments: DeepSeek (blocked) and Together (compliant)
    litellm_params: {model: deepseek/deepseek-chat, api_key: sk-fake, mock_response: "served by deepseek"}
  - model_name: deepseek-v3.2
    litellm_params: {model: together_ai/deepseek-ai/DeepSeek-V3, api_key: sk-fake, mock_response: "served by together"}
  - model_name: "together_ai/*"
    litellm_params: {model: "together_ai/*", api_key: sk-fake, mock_response: "served by together"}
  - model_name: "deepseek/*"
    litellm_params: {model: "deepseek/*", api_key: sk-fake, mock_response: "served by deepseek"}
general_settings:
  master_key: sk-litellm-master
"""


@pytest.fixture(scope="module")
def litellm(tmp_path_factory):
    config = tmp_path_factory.mktemp("litellm") / "config.yaml"
    config.write_text(CONFIG)
    proc, port = start_litellm(config)
    yield port, config.parent / "litellm.log"
    proc.stop()


@pytest.fixture(scope="module")
def stack(litellm, tmp_path_factory):
    # LiteLLM's clients hold its keys: one company-wide policy (org_source = static).
    s = Stack.start(
        tmp_path_factory.mktemp("stack"),
        upstream_port=litellm[0],
        authz_settings={
            "org_source": "static",
            "static_org_id": "company",
            "naming_profile": "litellm",
            "routing_enforcement": "header",
        },
    )
    s.admin.load_catalog()
    s.admin.set_plan("company", "enterprise")
    s.admin.set_policy("company", **DEMO_POLICY)
    s.wait_ready()
    yield s
    s.stop()


def ask(stack: Stack, model: str) -> httpx.Response:
    return httpx.post(
        stack.url + "/v1/chat/completions",
        timeout=30,
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-litellm-master"},
    )


def served_by(response: httpx.Response) -> str:
    return response.json()["choices"][0]["message"]["content"]


def test_header_mode_in_front_of_litellm_lets_the_blocked_deployment_serve(stack):
    results = [ask(stack, "deepseek-v3.2") for _ in range(20)]
    assert all(r.status_code == 200 for r in results)
    counts = collections.Counter(served_by(r) for r in results)
    # LiteLLM ignored x-compliance-allowed-providers: the blocked provider served some requests.
    assert counts["served by deepseek"] > 0, counts


def test_strict_mode_in_front_of_litellm_never_reaches_the_blocked_deployment(stack):
    stack.reconfigure_authz(routing_enforcement="strict")
    try:
        for _ in range(20):
            r = ask(stack, "deepseek-v3.2")
            assert r.status_code == 403 and r.json()["error"]["code"] == "routing_not_enforceable"
        alternatives = r.json()["error"]["alternatives"]
        assert alternatives[0] == "together_ai/deepseek-v3.2"  # spelled as LiteLLM reads it
        pinned = ask(stack, alternatives[0])
        assert pinned.status_code == 200 and served_by(pinned) == "served by together"
        blocked = ask(stack, "deepseek/deepseek-v3.2")
        assert blocked.status_code == 403 and blocked.json()["error"]["provider"] == "deepseek"
    finally:
        stack.reconfigure_authz(routing_enforcement="header")


def test_litellm_receives_what_authz_let_through_and_nothing_else(stack, litellm):
    def completions_served() -> int:  # LiteLLM's own access log
        return litellm[1].read_text().count('"POST /v1/chat/completions HTTP/1.1" 200')

    before = completions_served()
    ok = ask(stack, "together_ai/deepseek-v3.2")
    assert ok.status_code == 200 and served_by(ok) == "served by together"
    wait_until(lambda: completions_served() == before + 1, 10, "LiteLLM's access log")
    assert ask(stack, "deepseek/deepseek-v3.2").status_code == 403
    assert ask(stack, "openai/gpt-4o").status_code == 403  # OpenAI logs prompts
    time.sleep(0.5)
    assert completions_served() == before + 1


def test_litellm_clients_without_v1_in_their_base_url_are_judged_too(stack, litellm):
    # LiteLLM's docs point the openai SDK at the proxy's root (base_url without /v1), so clients
    # call /chat/completions; LiteLLM serves it like /v1/chat/completions.
    import openai

    client = openai.OpenAI(base_url=stack.url, api_key="sk-litellm-master", max_retries=0)
    reply = client.chat.completions.create(
        model="together_ai/deepseek-v3.2", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "served by together"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="deepseek/deepseek-v3.2", messages=[{"role": "user", "content": "hi"}])
    assert denied.value.body["code"] == "provider_not_compliant"
    # /engines/{model}/...: LiteLLM calls the path's model whatever the body says, so they must agree.
    mismatch = httpx.post(
        stack.url + "/engines/deepseek-v3.2/chat/completions",
        json={"model": "together_ai/deepseek-v3.2", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-litellm-master"},
        timeout=30,
    )
    assert (mismatch.status_code, mismatch.json()["error"]["code"]) == (400, "model_mismatch")
    assert "/engines/" not in litellm[1].read_text()  # LiteLLM's access log: it never arrived
