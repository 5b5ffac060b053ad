"""The shipped catalog (LLMGateway's published facts) loaded with the CLI as an operator does,
then judged through real Envoy: the demo policy, data residency by region entry, stealth
providers, and deny bodies that say where each failing fact was published.

(This module has its own stack: the session stack runs on the small sample catalog.)
"""

from __future__ import annotations

import json
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
    # vertex-openai's mapping of deepseek-v3.2 is deactivated (2026-10-21): no candidate any more
    assert real.received()[-1]["headers"]["x-compliance-allowed-providers"] == "deepinfra"
    denied = chat(real, "novita/deepseek-v3.2")
    blocked = denied.json()["error"]["blocked_providers"][0]
    assert denied.status_code == 403 and blocked["unknown"] == ["soc2_or_iso27001", "gdpr"]
    assert blocked["evidence"]["gdpr"] == "not published"
    assert blocked["privacy_policy_url"] == "https://novita.ai/legal/privacy-policy"
    logging = chat(real, "openai/gpt-4o").json()["error"]["blocked_providers"][0]
    assert logging["evidence"]["logs_prompts"].startswith("@llmgateway/models@1.324.0 providers[openai].dataPolicy.")


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
    r = chat(real, "glacier/gemini-3-pro-image")
    error = r.json()["error"]
    assert (r.status_code, error["failed_requirements"]) == (403, ["no_stealth_provider"])
    assert "isStealthProvider(glacier)" in error["blocked_providers"][0]["evidence"]["stealth"]
    assert chat(real, "google-vertex/gemini-3-pro-image").status_code == 200


def test_in_front_of_llmgateway_deactivated_pins_and_regions_are_judged_as_it_routes(real):
    """LLMGateway moves a pin to a deactivated mapping to another provider: judged unpinned, and
    the 403 says why; `model:region` names the regional entry (its parseModelInput)."""
    real.reconfigure_authz(naming_profile="llmgateway", routing_enforcement="strict")
    try:
        real.admin.set_policy("acme", **DEMO_POLICY)
        real.clear_received()
        moved = chat(real, "vertex-openai/deepseek-v3.2")
        error = moved.json()["error"]
        assert (moved.status_code, error["code"]) == (403, "routing_not_enforceable"), moved.text
        assert "The pin to 'vertex-openai' does not hold" in error["message"] and "2026-10-21" in error["message"]
        assert chat(real, "deepinfra/deepseek-v3.2").status_code == 200  # an active mapping keeps its pin
        real.admin.set_policy("acme", enabled=True, data_residency=["us"])
        assert chat(real, "alibaba/qwen-plus:us-virginia").status_code == 200
        unpinned = chat(real, "alibaba/qwen-plus").json()["error"]
        assert "alibaba/qwen-plus:us-virginia" in unpinned["alternatives"]  # spelled as LLMGateway reads it
        assert chat(real, "alibaba/qwen-plus:mars").json()["error"]["code"] == "unknown_model"
        forwarded = [json.loads(r["body"])["model"] for r in real.received()]
        assert forwarded == ["deepinfra/deepseek-v3.2", "alibaba/qwen-plus:us-virginia"]
    finally:
        real.reconfigure_authz(naming_profile="native", routing_enforcement="header")
