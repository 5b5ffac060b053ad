"""Regression tests for what an attacker with an API key could do (issue: security review):
each failed on the code before its fix. End to end through the real Envoy and authz."""

from __future__ import annotations

import json

import httpx
import pytest

from devstack.stack import wait_until

pytestmark = pytest.mark.e2e


def test_client_controlled_text_is_bounded_everywhere(stack, org):
    org.set_policy(enabled=True, require_gdpr=True)
    huge_model = "m" * 900_000
    huge_agent = "a" * 50_000
    log_before = len(stack.authz.log())
    r = org.post({"model": huge_model, "messages": []}, headers={"user-agent": huge_agent})
    assert r.status_code == 403 and r.json()["error"]["code"] == "unknown_model"
    assert len(r.content) < 4_000, len(r.content)
    assert r.json()["error"]["model"].endswith("…[cut 899744 chars]")
    wait_until(lambda: org.events(), 5, "security event written")
    [event] = org.events()
    assert len(json.dumps(event)) < 4_000
    assert event["model"] == "m" * 256 + "…[cut 899744 chars]"
    assert event["user_agent"] == "a" * 512 + "…[cut 49488 chars]"
    entries = stack.redis.client().xrevrange(stack.admin.keys.security_events, count=5)
    assert all(len(fields[b"event"]) < 4_000 for _, fields in entries)
    assert len(stack.authz.log()) - log_before < 8_000


def test_catalog_load_refuses_ids_of_custom_providers(stack, org):
    from authz.policy import catalog as catalog_mod
    from devstack.stack import SAMPLE_CATALOG

    h = {"authorization": f"Bearer {stack.token(org.id)}"}
    custom_id = f"own-{org.id}"[:60]
    attestation = {"gdpr": True, "trains_on_prompts": False}
    r = httpx.put(
        f"{stack.authz_http}/v1/orgs/{org.id}/custom-providers/{custom_id}",
        headers=h,
        json={"provider": {"models": ["deepseek-v3.2"], "attestation": attestation}},
    )
    assert r.status_code == 200, r.text
    org.set_policy(enabled=True, require_gdpr=True)
    changed = json.loads(SAMPLE_CATALOG.read_text())
    changed["providers"][custom_id] = {"name": "Look-alike", "data_policy": {"gdpr": False}}
    changed["models"]["deepseek-v3.2"]["providers"].append(custom_id)
    with pytest.raises(catalog_mod.CatalogError) as refused:
        stack.admin.load_catalog(changed)
    assert repr(custom_id) in str(refused.value) and repr(org.id) in str(refused.value)
    # Nothing changed: the org's own provider still serves its automatic requests.
    wait_until(lambda: org.post({"model": "deepseek-v3.2"}).status_code == 200, 5, "custom provider allowed")
    assert custom_id in org.received()[-1]["headers"]["x-compliance-allowed-providers"].split(",")


def _from(address: str) -> httpx.Client:
    """A client whose connections come from another loopback address (Envoy sees it as the peer)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_key_spraying_is_limited_per_client_address(stack, org):
    org.set_policy(enabled=True, require_gdpr=True)
    url = stack.url + "/v1/chat/completions"
    redis_client = stack.redis.client()

    def lookups() -> int:
        return redis_client.info("commandstats").get("cmdstat_get", {}).get("calls", 0)

    with _from("127.0.0.9") as sprayer, _from("127.0.0.10") as neighbour:
        assert (
            sprayer.post(url, json={"model": "gpt-4o"}, headers={"authorization": f"Bearer {org.key}"}).status_code
            == 200
        )  # warm key
        before = lookups()
        responses = [
            sprayer.post(url, json={"model": "gpt-4o"}, headers={"authorization": f"Bearer sk-sprayed-{i}"})
            for i in range(300)
        ]
        statuses = [r.status_code for r in responses]
        spent = lookups() - before
        # The burst (50) and the tokens refilled meanwhile (5/s) reach Redis; the rest is refused
        # in process. (A slow machine sends fewer requests per second, so more refills land.)
        assert statuses.count(401) >= 50 and statuses.count(429) >= 150, statuses
        assert spent <= statuses.count(401) + 5, spent
        limited = next(r for r in responses if r.status_code == 429)
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert limited.json()["error"]["code"] == "too_many_unknown_api_keys"
        # The sprayer's own cached key still works, and so does another address.
        assert (
            sprayer.post(url, json={"model": "gpt-4o"}, headers={"authorization": f"Bearer {org.key}"}).status_code
            == 200
        )
        assert (
            neighbour.post(
                url, json={"model": "gpt-4o"}, headers={"authorization": "Bearer sk-unknown-neighbour"}
            ).status_code
            == 401
        )


def test_a_key_in_the_query_never_reaches_envoys_access_log(stack, org):
    """Gemini-style clients send ?key=...; the access log writes the path without its query."""
    org.set_policy(enabled=True, require_gdpr=True)
    secret = "AIzaSyD-this-is-a-secret-key-0123456789"
    for path in (f"/v1beta/models/gemini-2.5-pro:generateContent?key={secret}", f"/v1/models?key={secret}&x=1"):
        httpx.post(stack.url + path, json={"contents": []}, timeout=10)
    marker = "/v1beta/models/gemini-2.5-pro:generateContent"
    wait_until(lambda: marker in stack.envoy.log(), 5, "access log lines")
    log = stack.envoy.log()
    assert secret not in log and "key=" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{") and marker in line]
    assert lines and lines[-1]["path"] == marker
