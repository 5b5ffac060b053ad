"""End to end through the real Envoy: every row of the decision table (docs/requests.md) and every fail-closed
case, asserting the status, the body, and what the stand-in gateway received."""

from __future__ import annotations

import gzip
import json
import re
import time

import httpx
import pytest

from support.policies import DEMO_POLICY
from support.transports import both_transports

pytestmark = pytest.mark.e2e
stack = both_transports()  # every test here runs over gRPC and over HTTP ext_authz

CHAT = {"messages": [{"role": "user", "content": "PROMPT-MARKER-7f3a tell me a secret"}]}
SPOOF = {
    "x-compliance-allowed-providers": "deepseek",
    "x-compliance-org": "someone-else",
    "x-compliance-policy-version": "999",
    "x-compliance-bypass": "1",
}


def chat(model: str) -> dict:
    return {"model": model, **CHAT}


def wait_for_events(org, n: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = org.events()
        if len(events) >= n:
            return events
        time.sleep(0.02)
    raise AssertionError(f"expected {n} events for {org.id}, have {len(org.events())}")


def assert_denied(org, r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["code"] == code
    assert r.headers["x-compliance-decision-id"] == err["decision_id"]
    assert org.received() == [], "a denied request reached the gateway"
    return err


# --- allowed rows ----------------------------------------------------------------------


def ours(org) -> set[str]:
    """authz's headers the gateway may see on a request no policy restricts: none over gRPC; over
    HTTP the decision id, which Envoy's HTTP ext_authz passes to the gateway and the client alike."""
    return {"x-compliance-decision-id"} if org.stack.transport == "http" else set()


def test_no_policy_passes_and_strips_client_compliance_headers(org):
    r = org.post(chat("deepseek/deepseek-v3.2"), headers=SPOOF)
    assert r.status_code == 200
    [got] = org.received()
    assert not [h for h in got["headers"] if h.startswith("x-compliance-") and h not in ours(org)]
    assert json.loads(got["body"])["model"] == "deepseek/deepseek-v3.2"


def test_disabled_policy_passes(org):
    org.set_policy(**{**DEMO_POLICY, "enabled": False})
    r = org.post(chat("deepseek/deepseek-v3.2"), headers={"x-compliance-decision-id": "spoofed"})
    assert r.status_code == 200 and r.headers["x-compliance-decision-id"] != "spoofed"
    assert len(org.received()) == 1


def test_pinned_compliant_provider(org):
    org.set_policy(**DEMO_POLICY)
    r = org.post(chat("azure/gpt-4o"), headers=SPOOF)
    assert r.status_code == 200 and r.json()["provider"] == "azure"
    [got] = org.received()
    h = got["headers"]
    assert h["x-compliance-allowed-providers"] == "azure"
    assert h["x-compliance-org"] == org.id and h["x-compliance-policy-version"] == "1"
    assert "x-compliance-bypass" not in h
    # the client gets the decision id too, the same one the gateway was sent, to quote it
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-compliance-decision-id"])
    assert r.headers["x-compliance-decision-id"] == h["x-compliance-decision-id"]


def test_automatic_routing_keeps_only_compliant_providers_and_overrides_spoofing(org):
    org.set_policy(**DEMO_POLICY)
    sent = json.dumps(chat("deepseek-v3.2"), indent=1)
    r = org.post(content=sent.encode(), headers={**SPOOF, "content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["provider"] in ("together", "fireworks", "deepinfra")
    [got] = org.received()
    assert got["headers"]["x-compliance-allowed-providers"] == "together,fireworks,deepinfra"
    assert got["headers"]["x-compliance-org"] == org.id
    assert "x-compliance-bypass" not in got["headers"]
    assert got["body"] == sent, "the body reaches the gateway unchanged"


def test_streaming_completion_passes_through(org):
    org.set_policy(**DEMO_POLICY)
    with httpx.stream(
        "POST",
        org.stack.url + "/v1/chat/completions",
        json={**chat("gpt-4o"), "stream": True},
        headers={"authorization": f"Bearer {org.key}"},
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert "data: [DONE]" in text and '"provider": "azure"' in text


# --- blocked rows ----------------------------------------------------------------------


def test_pinned_non_compliant_is_403_before_the_gateway(org):
    org.set_policy(**DEMO_POLICY)
    r = org.post(chat("deepseek/deepseek-v3.2"), headers={"x-request-id": "req-abc", "user-agent": "sdk-test/1"})
    err = assert_denied(org, r, 403, "provider_not_compliant")
    assert err["type"] == "provider_compliance_violation"
    assert (err["provider"], err["model"], err["policy_version"]) == ("deepseek", "deepseek/deepseek-v3.2", 1)
    assert err["failed_requirements"] == ["soc2_or_iso27001", "gdpr", "no_prompt_training", "no_prompt_logging"]
    assert "deepseek" in err["message"] and "GDPR (not met)" in err["message"]
    [event] = wait_for_events(org, 1)
    assert event["decision_id"] == err["decision_id"] and event["org_id"] == org.id
    assert (event["routing"], event["reason"], event["enforced"], event["http_status"]) == (
        "pinned",
        "provider_not_compliant",
        True,
        403,
    )
    [blocked] = err["blocked_providers"]  # the event says what the deny body says, unknown vs not met
    assert event["providers"] == [
        {"provider": "deepseek", "failed_requirements": err["failed_requirements"], "unknown": blocked["unknown"]}
    ]
    # where each failing fact was published, or that it was not: the developer can check it
    assert "(checked 20" in blocked["evidence"]["gdpr"] and "not published" in blocked["evidence"].values()
    assert event["user_agent"] == "sdk-test/1" and event["client_address"] == "127.0.0.1"
    assert event["policy_version"] == 1 and len(event["api_key_id"]) == 12


def test_automatic_with_no_compliant_provider_is_403(org):
    org.set_policy(**DEMO_POLICY)
    err = assert_denied(org, org.post(chat("deepseek-r1-0528")), 403, "no_compliant_provider")
    assert [b["provider"] for b in err["blocked_providers"]] == ["deepseek", "novita"]
    assert err["blocked_providers"][1]["unknown"] == err["blocked_providers"][1]["failed_requirements"]
    [event] = wait_for_events(org, 1)
    assert event["routing"] == "automatic" and [p["provider"] for p in event["providers"]] == ["deepseek", "novita"]


def test_dry_run_passes_and_records_the_would_be_block(org):
    org.set_policy(**DEMO_POLICY, mode=2)  # POLICY_MODE_DRY_RUN
    r = org.post(chat("deepseek/deepseek-v3.2"), headers=SPOOF)
    assert r.status_code == 200
    [got] = org.received()
    assert not [h for h in got["headers"] if h.startswith("x-compliance-") and h not in ours(org)]
    [event] = wait_for_events(org, 1)
    assert (event["enforced"], event["http_status"], event["reason"]) == (False, 200, "provider_not_compliant")


# --- fail closed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (dict(body=chat("no-such-model")), 403, "unknown_model"),
        (dict(body=chat("deepseek/no-such-model")), 403, "unknown_model"),
        (dict(body=chat("DeepSeek/deepseek-v3.2")), 403, "unknown_model"),
        (dict(body=chat("deepseek\u2215deepseek-v3.2")), 403, "unknown_model"),  # division slash look-alike
        (dict(body=chat("azure/deepseek-v3.2")), 403, "provider_does_not_serve_model"),
        (dict(body=chat("gpt-4o"), headers={"x-provider": "nobody"}), 403, "unknown_provider"),
        (dict(body=chat("azure/gpt-4o"), headers={"x-provider": "openai"}), 400, "provider_conflict"),
        (dict(body=chat("azure/gpt-4o"), headers={"x-model": "deepseek/deepseek-v3.2"}), 400, "model_mismatch"),
        (
            dict(
                content=b'{"model": "azure/gpt-4o", "model": "deepseek/deepseek-v3.2", "messages": []}',
                headers={"content-type": "application/json"},
            ),
            400,
            "duplicate_model",
        ),
        (dict(content=b"model=azure/gpt-4o", headers={"x-model": "azure/gpt-4o"}), 400, "body_not_json"),
        (dict(content=b"\xff\xfe\x00garbage"), 400, "body_not_json"),
        (dict(body=CHAT), 400, "model_missing"),
        (dict(body={"model": ["azure/gpt-4o"], **CHAT}), 400, "model_invalid"),
        (
            dict(
                content=gzip.compress(json.dumps(chat("azure/gpt-4o")).encode()),
                headers={"content-encoding": "gzip", "content-type": "application/json"},
            ),
            415,
            "body_encoded",
        ),
    ],
)
def test_fail_closed(org, kwargs, status, code):
    org.set_policy(**DEMO_POLICY)
    assert_denied(org, org.post(**kwargs), status, code)
    if code == "model_missing":  # a client error, counted by reason, not a policy block: no event
        metrics = httpx.get(org.stack.authz_metrics + "/metrics").text
        assert 'authz_decisions_total{reason="model_missing",result="denied"}' in metrics
        org.post(chat("deepseek/deepseek-v3.2"))  # a block after it: the events are in order
        [event] = wait_for_events(org, 1)
        assert event["reason"] == "provider_not_compliant"
        assert event["providers"] == [
            {
                "provider": "deepseek",
                "failed_requirements": ["soc2_or_iso27001", "gdpr", "no_prompt_training", "no_prompt_logging"],
                "unknown": ["soc2_or_iso27001"],
            }
        ]
        return
    [event] = wait_for_events(org, 1)
    assert event["reason"] == code


def test_body_past_the_inspection_limit_is_denied_even_with_a_model_header(org):
    org.set_policy(**DEMO_POLICY)
    # A compliant model first, then a second "model" after Envoy's 32 MiB cut.
    padding = "x" * (32 << 20)
    body = f'{{"model": "azure/gpt-4o", "pad": "{padding}", "model": "deepseek/deepseek-v3.2"}}'
    r = org.post(
        content=body.encode(), headers={"x-model": "azure/gpt-4o", "content-type": "application/json"}, timeout=60
    )
    err = assert_denied(org, r, 413, "body_truncated")
    assert "inspection limit" in err["message"]


def test_no_credentials_is_401(org):
    org.set_policy(**DEMO_POLICY)
    org.stack.clear_received()  # earlier tests' requests (some with x-api-key alone) are not this one
    r = org.post(chat("azure/gpt-4o"), key=False)
    assert r.status_code == 401 and r.json()["error"]["code"] == "org_missing"
    assert org.stack.received() == []


def test_unknown_api_key_is_401(stack):
    stack.clear_received()
    r = httpx.post(
        stack.url + "/v1/chat/completions",
        json=chat("azure/gpt-4o"),
        headers={"authorization": "Bearer sk-made-up-UNKNOWN"},
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_unknown"
    assert not [x for x in stack.received() if "UNKNOWN" in x["headers"].get("authorization", "")]


# --- propagation, privacy, the warm path ------------------------------------------------


def test_policy_change_is_enforced_without_restart(org):
    assert org.post(chat("deepseek/deepseek-v3.2")).status_code == 200  # cached: no policy
    org.set_policy(**DEMO_POLICY)
    deadline = time.monotonic() + 5
    while org.post(chat("deepseek/deepseek-v3.2")).status_code != 403:
        assert time.monotonic() < deadline, "policy change not enforced within 5 s"
        time.sleep(0.02)
    org.set_policy(**{**DEMO_POLICY, "enabled": False})
    deadline = time.monotonic() + 5
    while org.post(chat("deepseek/deepseek-v3.2")).status_code != 200:
        assert time.monotonic() < deadline, "disabling not applied within 5 s"
        time.sleep(0.02)


def test_events_and_logs_never_hold_the_prompt_or_the_key(org):
    org.set_policy(**DEMO_POLICY)
    for model in ("deepseek/deepseek-v3.2", "deepseek-r1-0528", "nope"):
        assert org.post(chat(model)).status_code == 403
    wait_for_events(org, 3)
    stream = json.dumps(org.stack.admin.security_events())
    logs = org.stack.authz.log()
    for haystack in (stream, logs):
        assert org.id in haystack
        assert "PROMPT-MARKER-7f3a" not in haystack
        assert org.key not in haystack


def test_warm_checks_make_no_redis_call(org):
    org.set_policy(**DEMO_POLICY)
    assert org.post(chat("deepseek-v3.2")).status_code == 200  # warms the key and the org
    client = org.stack.redis.client()

    # The alert dispatcher's blocking XREADGROUP runs on its own clock, whatever the traffic.
    background = {"cmdstat_info", "cmdstat_xreadgroup", "cmdstat_xautoclaim", "cmdstat_ping"}

    def calls() -> dict[str, int]:
        return {k: v["calls"] for k, v in client.info("commandstats").items() if k not in background}

    before = calls()
    for model in ("deepseek-v3.2", "azure/gpt-4o", "gpt-4o", "claude-sonnet-4.5") * 10:
        assert org.post(chat(model)).status_code == 200
    after = calls()
    assert after == before, {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)}
