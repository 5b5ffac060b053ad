"""Parity requirements through the real Envoy: SOC 2 Type 2, zero data retention,
headquarters countries, data residency, provider and model allow/deny lists, custom providers. Each has its
own reason in the deny body and the event; unknown values fail closed."""

from __future__ import annotations

import time

import httpx
import pytest

from devstack.stack import wait_until

pytestmark = pytest.mark.e2e


def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}]}


def denied(org, model: str, status: int = 403) -> dict:
    org.stack.clear_received()
    r = org.post(chat(model))
    assert r.status_code == status, r.text
    assert org.received() == []
    return r.json()["error"]


def allowed(org, model: str) -> list[str]:
    org.stack.clear_received()
    r = org.post(chat(model))
    assert r.status_code == 200, r.text
    [got] = org.received()
    return got["headers"]["x-compliance-allowed-providers"].split(",")


def unmet_of(err: dict, provider: str) -> tuple[list[str], list[str]]:
    [b] = [b for b in err["blocked_providers"] if b["provider"] == provider]
    return b["failed_requirements"], b["unknown"]


def test_soc2_type2_only(org):
    org.set_policy(enabled=True, require_soc2_type2=True)
    assert allowed(org, "azure/gpt-4o") == ["azure"]
    err = denied(org, "mistral/mistral-large")  # a Type 1 report
    assert unmet_of(err, "mistral") == (["soc2_type2"], []) and "SOC 2 Type 2 (not met)" in err["message"]
    err = denied(org, "deepseek/deepseek-v3.2")  # report type unknown
    assert unmet_of(err, "deepseek") == (["soc2_type2"], ["soc2_type2"])
    assert allowed(org, "deepseek-v3.2") == ["together"]  # fireworks: Type 1; deepinfra, novita: unknown


def test_zero_data_retention(org):
    org.set_policy(enabled=True, require_zero_data_retention=True)
    assert allowed(org, "gpt-4o") == ["azure"]  # openai logs prompts for 30 days
    err = denied(org, "openai/gpt-4o")
    assert unmet_of(err, "openai") == (["zero_data_retention"], [])
    err = denied(org, "google-vertex/gemini-2.5-pro")  # retention period unknown
    assert unmet_of(err, "google-vertex") == (["zero_data_retention"], ["zero_data_retention"])


def test_headquarters_countries(org):
    org.set_policy(enabled=True, allowed_countries=["FR"])
    assert allowed(org, "mistral-large") == ["mistral"]
    err = denied(org, "azure/gpt-4o")
    assert unmet_of(err, "azure") == (["headquarters_country"], [])
    err = denied(org, "groq/kimi-k2")  # headquarters unknown
    assert unmet_of(err, "groq") == (["headquarters_country"], ["headquarters_country"])
    assert "headquarters in an allowed country (unknown)" in err["message"]


def test_provider_deny_beats_allow(org):
    org.set_policy(enabled=True, provider_allowlist=["azure", "openai"], provider_denylist=["azure"])
    assert allowed(org, "gpt-4o") == ["openai"]
    err = denied(org, "azure/gpt-4o")
    assert err["failed_requirements"] == ["provider_denylist"]
    assert "is on the provider deny list" in err["message"]
    err = denied(org, "mistral/mistral-large")
    assert err["failed_requirements"] == ["provider_allowlist"]


def test_model_lists(org):
    org.set_policy(enabled=True, model_allowlist=["gpt-4o", "mistral-large"], model_denylist=["mistral-large"])
    assert allowed(org, "gpt-4o") == ["openai", "azure"]
    err = denied(org, "azure/mistral-large")
    assert (err["code"], err["failed_requirements"]) == ("model_not_allowed", ["model_denylist"])
    assert "Model 'azure/mistral-large'" in err["message"] and "model deny list" in err["message"]
    err = denied(org, "claude-sonnet-4.5")
    assert (err["code"], err["failed_requirements"]) == ("model_not_allowed", ["model_allowlist"])
    deadline = time.monotonic() + 5
    while len(events := org.events()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [e["failed_requirements"] for e in events] == [["model_denylist"], ["model_allowlist"]]
    assert {e["reason"] for e in events} == {"model_not_allowed"}


def test_custom_provider_needs_an_attestation(org):
    stack = org.stack
    h = {"authorization": f"Bearer {stack.token(org.id, subject='owner@corp')}"}
    url = f"{stack.authz_http}/v1/orgs/{org.id}/custom-providers/acme-llm"
    org.set_policy(enabled=True, require_gdpr=True, require_no_prompt_training=True)
    r = httpx.put(url, headers=h, json={"provider": {"name": "ACME LLM", "models": ["llama-3-ft"]}})
    assert r.status_code == 200, r.text

    def wait_status(model: str, status: int) -> httpx.Response:
        deadline = time.monotonic() + 5
        while (resp := org.post(chat(model))).status_code != status:
            assert time.monotonic() < deadline, resp.text
            time.sleep(0.02)
        return resp

    err = wait_status("acme-llm/llama-3-ft", 403).json()["error"]
    assert err["failed_requirements"][0] == "custom_provider_attestation"
    assert "custom provider without a compliance attestation" in err["message"]
    assert org.received() == []

    attestation = {"gdpr": True, "trains_on_prompts": False, "evidence": {"gdpr": {"source": "our DPA v3"}}}
    r = httpx.put(
        url, headers=h, json={"provider": {"name": "ACME LLM", "models": ["llama-3-ft"], "attestation": attestation}}
    )
    assert r.status_code == 200 and r.json()["provider"]["attested_by"] == "owner@corp"
    wait_status("acme-llm/llama-3-ft", 200)
    assert allowed(org, "llama-3-ft") == ["acme-llm"]  # automatic routing finds it too

    clash = httpx.put(
        f"{stack.authz_http}/v1/orgs/{org.id}/custom-providers/azure", headers=h, json={"provider": {"models": ["x"]}}
    )
    assert clash.status_code == 400 and "catalog already has" in clash.json()["error"]["message"]
    audit = httpx.get(f"{stack.authz_http}/v1/orgs/{org.id}/audit-events", headers=h).json()["events"]
    sets = [e for e in audit if e["action"] == "custom_provider.set"]
    assert len(sets) == 2 and all(e["actor"] == "owner@corp" for e in sets) and '"gdpr": true' in sets[0]["after"]

    assert httpx.delete(url, headers=h).status_code == 200
    wait_status("acme-llm/llama-3-ft", 403)
    assert httpx.delete(url, headers=h).status_code == 404


def test_preview_shows_each_new_reason_and_blocked_models(org):
    h = {"authorization": f"Bearer {org.stack.token(org.id)}"}
    policy = {
        "enabled": True,
        "require_soc2_type2": True,
        "require_zero_data_retention": True,
        "allowed_countries": ["US"],
        "provider_denylist": ["openai"],
        "model_denylist": ["kimi-k2"],
    }
    r = httpx.post(f"{org.stack.authz_http}/v1/orgs/{org.id}/policy:preview", headers=h, json={"policy": policy})
    assert r.status_code == 200, r.text
    result = r.json()
    by_id = {p["provider"]: p for p in result["providers"]}
    assert {u["requirement"] for u in by_id["openai"]["unmet"]} >= {"provider_denylist", "zero_data_retention"}
    assert {(u["requirement"], u["cause"]) for u in by_id["groq"]["unmet"]} == {("headquarters_country", "unknown")}
    assert by_id["azure"]["allowed"] is True
    assert result["models_blocked_by_lists"] == ["kimi-k2"]


def test_data_residency_counts_processing_regions_never_headquarters(org):
    """EU residency: only a provider whose every published processing region is in the EU
    qualifies. Mistral (EU only) passes; Azure processes in the EU and the US, so it may route a
    prompt to the US: not met; DeepSeek publishes no region: unknown (fails closed), whatever
    its headquarters. The block is a security event naming the requirement, and the preview
    says the same."""
    org.set_policy(enabled=True, data_residency=["eu"])
    assert allowed(org, "mistral-large") == ["mistral"]
    err = denied(org, "azure/gpt-4o")
    assert err["failed_requirements"] == ["data_residency"]
    assert unmet_of(err, "azure") == (["data_residency"], [])
    assert "data processed only in allowed regions (not met)" in err["message"]
    err = denied(org, "deepseek/deepseek-v3.2")
    assert unmet_of(err, "deepseek") == (["data_residency"], ["data_residency"])
    assert "data processed only in allowed regions (unknown)" in err["message"]
    wait_until(lambda: len(org.events()) >= 2, 5, "both security events")
    events = org.events()
    assert {e["providers"][0]["provider"] for e in events} == {"azure", "deepseek"}
    assert all(e["failed_requirements"] == ["data_residency"] for e in events)

    headers = {"authorization": f"Bearer {org.stack.token(org.id)}"}
    preview = httpx.post(
        f"{org.stack.authz_http}/v1/orgs/{org.id}/policy:preview",
        headers=headers,
        json={"policy": {"enabled": True, "data_residency": ["eu", "us"]}},
    ).json()
    by_id = {p["provider"]: p for p in preview["providers"]}
    assert by_id["azure"]["allowed"] and by_id["mistral"]["allowed"]
    assert by_id["deepseek"]["unmet"] == [
        {
            "requirement": "data_residency",
            "label": "data processed only in allowed regions",
            "cause": "unknown",
            "evidence": "",  # DeepSeek publishes no processing region: nothing to point to
            "checked_at": "",
        }
    ]
    bad = httpx.put(
        f"{org.stack.authz_http}/v1/orgs/{org.id}/policy",
        headers=headers,
        json={"policy": {"enabled": True, "data_residency": ["EU"]}},
    )
    assert bad.status_code == 400 and "data_residency: 'EU'" in bad.json()["error"]["message"]


def test_block_stealth_providers(org):
    """A provider whose operator is undisclosed is blocked: explicitly stealth (here an org's
    own provider attested as such) is not met; one that does not say (novita in the sample
    catalog) is unknown and fails closed; a named operator (stealth: false) passes."""
    stack = org.stack
    h = {"authorization": f"Bearer {stack.token(org.id, subject='owner@corp')}"}
    r = httpx.put(
        f"{stack.authz_http}/v1/orgs/{org.id}/custom-providers/shadow-llm",
        headers=h,
        json={"provider": {"models": ["shadow-1"], "attestation": {"stealth": True}}},
    )
    assert r.status_code == 200, r.text
    org.set_policy(enabled=True, block_stealth_providers=True)
    assert allowed(org, "deepseek-r1-0528") == ["deepseek"]  # novita: does not say
    err = denied(org, "novita/deepseek-r1-0528")
    assert unmet_of(err, "novita") == (["no_stealth_provider"], ["no_stealth_provider"])
    assert "a disclosed operator (not a stealth provider) (unknown)" in err["message"]
    deadline = time.monotonic() + 5
    while (resp := org.post(chat("shadow-llm/shadow-1"))).status_code != 403:
        assert time.monotonic() < deadline, resp.text
        time.sleep(0.02)
    err = resp.json()["error"]
    assert unmet_of(err, "shadow-llm") == (["no_stealth_provider"], [])
    wait_until(lambda: len(org.events()) >= 2, 5, "both security events")
    assert [e["failed_requirements"] for e in org.events()] == [["no_stealth_provider"]] * 2
