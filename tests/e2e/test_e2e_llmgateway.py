"""LLMGateway's routing contract (docs/gateways.md, "LLMGateway"), proven against its real
gateway, built from the source snapshot (support.llmgateway), behind our Envoy and authz with
naming_profile = "llmgateway" and strict routing. Every provider is a loopback capture server
(the org's provider keys' base URLs), so each test sees which provider a prompt reached.

Each rule is shown twice: straight to the gateway, where it moves the prompt (the premise,
so the test would notice a gateway that no longer does), and through authz, where it does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from authz.check import assertion
from devstack.stack import Stack, wait_until
from support.capture import Capture
from support.egress import egress_envoy

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CATALOG = ROOT / "catalog" / "catalog.json"
ORG = "acme"
KEY = "llmgdev_" + "acme" * 8
MODEL = "glm-4.7"  # served by both providers the org has keys for
PROVIDERS = ("together-ai", "cerebras")
ASSERTION_KEY = "k" * 40
# An org whose provider keys' base URLs are the egress checkpoint's routes (one company: the
# egress knows the org statically, as the gateway forwards no assertion).
EGRESS_ORG = "beta"
EGRESS_KEY = "llmgdev_" + "beta" * 8
EGRESS_MODEL = "deepseek-v4-pro"  # served by deepseek and together-ai, both egress routes


@pytest.fixture(scope="module")
def gateway(llmgateway_gateway, capture):
    # alibaba too: its glm-4.7 mapping is deactivated in the snapshot's data (2026-07-08)
    keys = {p: f"http://127.0.0.1:{capture.port}/{p}" for p in (*PROVIDERS, "alibaba")}
    llmgateway_gateway.seed(ORG, KEY, keys)
    return llmgateway_gateway


@pytest.fixture(scope="module")
def stack(gateway, tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp("llmgateway-stack"),
        upstream_port=int(gateway.url.rpartition(":")[2]),
        authz_settings={
            "naming_profile": "llmgateway",
            "routing_enforcement": "strict",
            "org_assertion_key": ASSERTION_KEY,  # the assertion ingress adds for an egress
        },
    )
    s.admin.load_catalog(SHIPPED_CATALOG)
    s.admin.set_plan(ORG, "enterprise")
    s.admin.add_api_key(KEY, ORG)
    s.wait_ready()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def clean(gateway, capture):
    """Each case starts with no sticky choice, no uptime history, no failing provider."""
    gateway.forget_choices()
    gateway.psql("DELETE FROM model_provider_mapping_history")
    capture.failing.clear()
    with capture.lock:
        capture.seen.clear()
    yield
    gateway.psql("DELETE FROM model_provider_mapping_history")  # the gateway is shared (e2e/conftest.py)
    gateway.forget_choices()


def chat(url: str, model: str, **headers: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "the prompt"}]}
    return httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}", **headers}, timeout=60
    )


def reached(capture: Capture) -> list[str]:
    return capture.providers()


def low_uptime(gateway, provider: str, model: str = MODEL) -> None:
    """The last minute of `provider` for the model: every request an upstream error (uptime 0),
    as the gateway's own fallback.spec.ts seeds it (setRoutingMetrics)."""
    gateway.psql(
        "INSERT INTO model_provider_mapping_history (id, model_id, provider_id, model_provider_mapping_id,"
        " minute_timestamp, logs_count, errors_count, upstream_errors_count, total_duration,"
        " total_output_tokens, total_time_to_first_token, time_to_first_token_count) VALUES"
        f" ('h-{provider}-{model}', '{model}', '{provider}', '{model}::{provider}',"
        " date_trunc('minute', now() AT TIME ZONE 'utc'), 100, 100, 100, 1000, 100, 10000, 100)"
    )


def test_a_pin_is_moved_by_low_uptime_unless_authz_holds_it(gateway, stack, capture):
    """chat.ts moves even a pinned request off a provider whose recent uptime is low, unless it
    carries `x-no-fallback: true`, which authz sets on every request it forwards."""
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=[])
    low_uptime(gateway, "together-ai")
    moved = chat(gateway.url, f"together-ai/{MODEL}")
    assert moved.status_code == 200 and reached(capture) == ["cerebras"], (moved.text, reached(capture))
    capture.seen.clear()
    gateway.forget_choices()
    held = chat(stack.url, f"together-ai/{MODEL}", **{"x-no-fallback": "false"})  # the client's value replaced
    assert held.status_code == 200, held.text
    assert reached(capture) == ["together-ai"]
    assert held.json()["choices"][0]["message"]["content"] == "served by together-ai"


def test_an_unpinned_request_is_not_retried_on_another_provider(gateway, stack, capture):
    """An unpinned request falls back to the next provider after a 500; behind authz
    (`x-no-fallback: true`) the one provider the gateway chose is the only one called."""
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=[])
    capture.failing.update({p: 500 for p in PROVIDERS})
    direct = chat(gateway.url, MODEL)
    assert direct.status_code >= 500 and sorted(reached(capture)) == sorted(PROVIDERS), reached(capture)
    capture.seen.clear()
    gateway.forget_choices()
    through = chat(stack.url, MODEL)
    assert through.status_code >= 500
    assert len(reached(capture)) == 1, reached(capture)


def test_a_blocked_pin_never_leaves_and_an_unpinned_model_is_judged_over_every_provider(gateway, stack, capture):
    """Strict routing: a pin to a denied provider is 403 before the gateway sees it; the
    unpinned model is judged as every provider the gateway may pick, so it is 403 too, naming the
    pinned spelling that passes, which the real gateway serves."""
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=["cerebras"])
    blocked = chat(stack.url, f"cerebras/{MODEL}")
    assert blocked.status_code == 403 and "cerebras" in str(blocked.json()["error"]["blocked_providers"]), blocked.text
    unpinned = chat(stack.url, MODEL)
    assert unpinned.status_code == 403, unpinned.text
    alternatives = unpinned.json()["error"]["alternatives"]
    assert f"together-ai/{MODEL}" in alternatives, alternatives
    assert reached(capture) == []
    served = chat(stack.url, alternatives[alternatives.index(f"together-ai/{MODEL}")])
    assert served.status_code == 200 and reached(capture) == ["together-ai"], served.text


def test_a_spelling_the_gateway_refuses_is_not_judged_as_its_provider(gateway, stack):
    """`together.ai` is no provider id of the real gateway ("Provider 'together.ai' not found"):
    the llmgateway profile does not map it (the catalog's own alias may still name it)."""
    refused = chat(gateway.url, f"together.ai/{MODEL}", **{"x-no-fallback": "true"})
    assert refused.status_code == 400 and "not found" in refused.text, refused.text


def test_on_v1_responses_a_pin_is_moved_whatever_the_header_so_authz_judges_it_unpinned(gateway, stack, capture):
    """/v1/responses does not pass x-no-fallback on to the chat path it calls: even with the
    header, a pin is moved off a low-uptime provider. So authz judges a pin there as unpinned."""
    low_uptime(gateway, "together-ai")
    body = {"model": f"together-ai/{MODEL}", "input": "the prompt"}
    headers = {"authorization": f"Bearer {KEY}", "x-no-fallback": "true"}
    moved = httpx.post(f"{gateway.url}/v1/responses", json=body, headers=headers, timeout=60)
    assert moved.status_code == 200 and reached(capture) == ["cerebras"], (moved.text, reached(capture))
    capture.seen.clear()
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=["cerebras"])
    judged = httpx.post(f"{stack.url}/v1/responses", json=body, headers=headers, timeout=60)
    assert judged.status_code == 403 and judged.json()["error"]["code"] == "routing_not_enforceable", judged.text
    assert reached(capture) == []
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=[])
    served = httpx.post(f"{stack.url}/v1/responses", json=body, headers=headers, timeout=60)
    assert served.status_code == 200, served.text


def test_it_forwards_no_org_assertion_to_providers(gateway, stack, capture):
    """The assertion ingress adds (for an egress to know the org) is not passed on: behind
    LLMGateway an egress knows the org statically (one company) or not at all."""
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=[])
    assert chat(stack.url, f"together-ai/{MODEL}").status_code == 200
    with capture.lock:
        sent = capture.headers[-1]
    assert assertion.HEADER not in sent and not any(h.startswith("x-compliance") for h in sent), sorted(sent)


@pytest.fixture(scope="module")
def egress(gateway, capture, tmp_path_factory):
    """The egress checkpoint (envoy/egress.yaml, its providers sent to the capture server) and its
    authz, which knows the one org statically; the org's provider base URLs are its routes."""
    s = Stack.start(
        tmp_path_factory.mktemp("llmgateway-egress"),
        authz_settings={"org_source": "static", "static_org_id": EGRESS_ORG},
    )
    s.admin.load_catalog(SHIPPED_CATALOG)
    s.admin.set_plan(EGRESS_ORG, "enterprise")
    s.admin.set_policy(EGRESS_ORG, enabled=True, provider_denylist=["deepseek"])
    s.wait_ready()
    try:
        with egress_envoy(s.ports["authz_grpc"], capture.port, tmp_path_factory.mktemp("egress-envoy")) as url:
            gateway.seed(EGRESS_ORG, EGRESS_KEY, {"deepseek": f"{url}/deepseek", "together-ai": f"{url}/together"})
            yield s
    finally:
        s.stop()


def test_a_reroute_to_a_denied_provider_is_stopped_at_egress(gateway, egress, capture):
    """Straight to the gateway (no ingress check, no x-no-fallback): a low-uptime pin is moved to
    deepseek, which the org denies; the egress refuses the call, so no prompt reaches it. The
    same pin with a healthy provider goes out through the egress."""
    body = {"model": f"together-ai/{EGRESS_MODEL}", "messages": [{"role": "user", "content": "the prompt"}]}
    headers = {"authorization": f"Bearer {EGRESS_KEY}"}
    served = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert served.status_code == 200 and reached(capture) == ["together"], (served.text, reached(capture))
    capture.seen.clear()
    gateway.forget_choices()
    low_uptime(gateway, "together-ai", EGRESS_MODEL)
    rerouted = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert rerouted.status_code != 200, rerouted.text
    assert reached(capture) == [], reached(capture)
    wait_until(
        lambda: any("deepseek" in str(e) for e in egress.admin.security_events()),
        10,
        "the egress's security event for deepseek",
    )


def test_a_pin_to_a_deactivated_mapping_does_not_hold_so_authz_judges_it_unpinned(gateway, stack, capture):
    """alibaba's glm-4.7 mapping was deactivated (the package's data): the gateway serves
    `alibaba/glm-4.7` from another provider, x-no-fallback or not. authz judges the pin as
    unpinned: with cerebras denied it is 403, and nothing reaches a provider."""
    moved = chat(gateway.url, f"alibaba/{MODEL}", **{"x-no-fallback": "true"})
    assert moved.status_code == 200 and reached(capture) and "alibaba" not in reached(capture), reached(capture)
    capture.seen.clear()
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=["cerebras"])
    judged = chat(stack.url, f"alibaba/{MODEL}")
    assert judged.status_code == 403, judged.text
    assert reached(capture) == []
    stack.admin.set_policy(ORG, enabled=True, provider_denylist=[])
    served = chat(stack.url, f"alibaba/{MODEL}")
    assert served.status_code == 200 and "alibaba" not in reached(capture), (served.text, reached(capture))


@pytest.mark.parametrize("path", ["/v1/ai/generate", "/v1/ocr", "/v1/videos", "/mcp"])
def test_its_routes_outside_the_endpoint_table_are_refused_before_it(gateway, stack, capture, path):
    refused = httpx.post(
        stack.url + path,
        json={"model": f"together-ai/{MODEL}", "messages": []},
        headers={"authorization": f"Bearer {KEY}", "ai-language-model-id": f"together-ai/{MODEL}"},
        timeout=30,
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "endpoint_not_covered")
    assert reached(capture) == []


def test_a_streamed_request_is_judged_before_the_first_byte(gateway, stack, capture):
    """Streaming: the Check is on the request, so an allowed stream arrives as the gateway sends
    it (server-sent events, the provider's words) and a denied one is a 403 before any event."""
    capture.streams = True
    try:
        stack.admin.set_policy(ORG, enabled=True, provider_denylist=["cerebras"])
        body = {"model": f"together-ai/{MODEL}", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        headers = {"authorization": f"Bearer {KEY}"}
        with httpx.stream("POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            text = "".join(r.iter_text())
        words = [
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in text.splitlines()
            if line.startswith("data: {") and json.loads(line[6:]).get("choices")
        ]
        assert "".join(words).strip() == "served by together-ai", text[:500]
        assert "data: [DONE]" in text.splitlines()  # its own framing: event/id lines around the data
        denied = chat(stack.url, f"cerebras/{MODEL}")
        streamed_denial = httpx.post(
            f"{stack.url}/v1/chat/completions", json={**body, "model": f"cerebras/{MODEL}"}, headers=headers, timeout=60
        )
        assert denied.status_code == streamed_denial.status_code == 403
        assert streamed_denial.headers["content-type"].startswith("application/json")
        assert reached(capture) == ["together-ai"]
    finally:
        capture.streams = False


def test_a_region_follows_the_model_and_is_judged_as_its_regional_entry(gateway, stack, capture):
    """`alibaba/qwen-flash:eu-frankfurt` is a spelling the gateway serves (and `:mars` one it
    refuses); authz judges each as the catalog's regional entry: under EU residency the Frankfurt
    region passes, Beijing and the bare pin (which the gateway serves from its default region,
    cn-beijing) do not, and an unknown region is an unknown model."""
    served = chat(gateway.url, "alibaba/qwen-flash", **{"x-no-fallback": "true"})
    assert served.json()["model"] == "alibaba/qwen-flash:cn-beijing"  # its default region
    assert chat(gateway.url, "alibaba/qwen-flash:mars").status_code == 400
    capture.seen.clear()
    stack.admin.set_policy(ORG, enabled=True, data_residency=["eu"])
    assert chat(stack.url, "alibaba/qwen-flash:eu-frankfurt").status_code == 200
    assert reached(capture) == ["alibaba"]
    capture.seen.clear()
    for name in ("alibaba/qwen-flash:cn-beijing", "alibaba/qwen-flash"):
        refused = chat(stack.url, name)
        assert refused.status_code == 403 and "data_residency" in refused.text, (name, refused.text)
    unknown = chat(stack.url, "alibaba/qwen-flash:mars")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (403, "unknown_model")
    assert reached(capture) == []
