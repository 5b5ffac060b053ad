"""The shipped catalog (LLMGateway's published facts) loaded with the CLI as an operator does,
then judged through real Envoy: the demo policy, data residency by region entry, stealth
providers, and deny bodies that say where each failing fact was published.

(This module has its own stack: the session stack runs on the small sample catalog.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack
from support.policies import DEMO_POLICY

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog" / "catalog.json"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    s = Stack.start(tmp_path_factory.mktemp("real"), authz_settings={"routing_enforcement": "header"})
    loaded = subprocess.run(
        [sys.executable, "-m", "authz", "--actor", "ops@acme", "catalog", "load", str(CATALOG)],
        env={**os.environ, "AUTHZ_REDIS_URL": s.redis.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr
    s.wait_ready()
    s.admin.set_plan("acme", "enterprise")
    s.admin.add_api_key("sk-acme", "acme")
    yield s
    s.stop()


def chat(stack: Stack, model: str) -> httpx.Response:
    return httpx.post(
        stack.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-acme"},
        timeout=10,
    )


def test_demo_policy_narrows_routing_to_the_providers_that_publish_every_fact(real):
    real.admin.set_policy("acme", **DEMO_POLICY)
    real.clear_received()
    r = chat(real, "deepseek-v3.2")
    assert r.status_code == 200
    assert real.received()[-1]["headers"]["x-compliance-allowed-providers"] == "deepinfra,vertex-openai"
    denied = chat(real, "novita/deepseek-v3.2")
    blocked = denied.json()["error"]["blocked_providers"][0]
    assert denied.status_code == 403 and blocked["unknown"] == ["soc2_or_iso27001", "gdpr"]
    assert blocked["evidence"]["gdpr"] == "not published"
    assert blocked["privacy_policy_url"] == "https://novita.ai/legal/privacy-policy"
    logging = chat(real, "openai/gpt-4o").json()["error"]["blocked_providers"][0]
    assert "providers.ts@005f2cb1" in logging["evidence"]["logs_prompts"]


def test_residency_is_met_only_by_a_region_entry_with_a_verified_endpoint(real):
    real.admin.set_policy("acme", enabled=True, data_residency=["us"])
    assert chat(real, "alibaba-us-virginia/qwen-plus").status_code == 200
    for model, cause in (("alibaba/qwen-plus", "unknown"), ("alibaba-cn-beijing/qwen-plus", "not_met")):
        r = chat(real, model)
        error = r.json()["error"]
        assert (r.status_code, error["failed_requirements"]) == (403, ["data_residency"]), model
        assert (error["blocked_providers"][0]["unknown"] == ["data_residency"]) == (cause == "unknown")
    # headquarters never count: OpenAI is a US company, but publishes no processing region
    assert chat(real, "openai/gpt-4o").json()["error"]["code"] == "provider_not_compliant"


def test_stealth_providers_are_blocked_by_their_own_rule(real):
    real.admin.set_policy("acme", enabled=True, block_stealth_providers=True)
    r = chat(real, "granite/glm-5.2")
    error = r.json()["error"]
    assert (r.status_code, error["failed_requirements"]) == (403, ["no_stealth_provider"])
    assert "isStealthProvider (granite): true" in error["blocked_providers"][0]["evidence"]["stealth"]
    assert chat(real, "zai/glm-5.2").status_code == 200
