"""Attempts to get a non-compliant provider past the gate, through the real Envoy. For each,
the client gets a clear denial and the stand-in gateway receives nothing."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from support.policies import DEMO_POLICY
from support.transports import both_transports

pytestmark = pytest.mark.e2e
stack = both_transports()  # every test here runs over gRPC and over HTTP ext_authz

PINNED_BAD = "deepseek/deepseek-v3.2"


def assert_blocked(org, r: httpx.Response, code: str | None = None) -> None:
    assert r.status_code in (400, 403, 413, 415), r.text
    if code:
        assert r.json()["error"]["code"] == code, r.text
    assert org.received() == [], "the gateway received a request it must not"


@pytest.fixture
def guarded(org):
    org.set_policy(**DEMO_POLICY)
    return org


@pytest.mark.parametrize(
    ("model", "code"),
    [
        ("deepseek%2Fdeepseek-v3.2", "unknown_model"),  # percent-encoded slash
        ("deepseek／deepseek-v3.2", "unknown_model"),  # fullwidth solidus
        ("dеepseek/deepseek-v3.2", "unknown_model"),  # Cyrillic "е"
        (" deepseek/deepseek-v3.2", "unknown_model"),
        ("deepseek/deepseek-v3.2 ", "unknown_model"),
        ("deepseek/deepseek-v3.2\u0000", "unknown_model"),
        ("DEEPSEEK/DEEPSEEK-V3.2", "unknown_model"),
        ("deepseek/" + "x" * 20_000, "unknown_model"),  # very long
        ("deepseek//deepseek-v3.2", "unknown_model"),
    ],
)
def test_model_spelling_tricks_fail_closed(guarded, model, code):
    assert_blocked(guarded, guarded.post({"model": model, "messages": []}), code)


def test_two_model_headers_fail_closed(guarded):
    # Envoy joins repeated headers with ","; the result names no catalog model.
    r = httpx.post(
        guarded.stack.url + "/v1/chat/completions",
        headers=[("authorization", f"Bearer {guarded.key}"), ("x-model", "azure/gpt-4o"), ("x-model", PINNED_BAD)],
    )
    assert_blocked(guarded, r, "unknown_model")


def test_escaped_duplicate_model_key(guarded):
    body = b'{"model": "azure/gpt-4o", "mod\\u0065l": "deepseek/deepseek-v3.2", "messages": []}'
    assert_blocked(guarded, guarded.post(content=body), "duplicate_model")


def test_byte_order_mark_and_trailing_garbage(guarded):
    assert_blocked(guarded, guarded.post(content=b'\xef\xbb\xbf{"model": "azure/gpt-4o"}'), "body_not_json")
    assert_blocked(guarded, guarded.post(content=b'{"model": "azure/gpt-4o"} {"model": "deepseek/x"}'), "body_not_json")


def test_client_cannot_claim_the_body_is_complete(guarded):
    body = ('{"model": "azure/gpt-4o", "pad": "' + "y" * (32 << 20) + '", "model": "deepseek/deepseek-v3.2"}').encode()
    r = guarded.post(
        content=body, headers={"x-envoy-auth-partial-body": "false", "content-type": "application/json"}, timeout=60
    )
    assert_blocked(guarded, r, "body_truncated")


def test_chunked_request_body_is_read(guarded):
    def chunks(data: bytes):
        for i in range(0, len(data), 7):
            yield data[i : i + 7]

    body = json.dumps({"model": PINNED_BAD, "messages": [{"role": "user", "content": "z" * 500}]}).encode()
    r = httpx.post(
        guarded.stack.url + "/v1/chat/completions",
        content=chunks(body),
        headers={"authorization": f"Bearer {guarded.key}", "content-type": "application/json"},
    )
    assert_blocked(guarded, r, "provider_not_compliant")
    good = json.dumps({"model": "azure/gpt-4o", "messages": []}).encode()
    r = httpx.post(
        guarded.stack.url + "/v1/chat/completions",
        content=chunks(good),
        headers={"authorization": f"Bearer {guarded.key}", "content-type": "application/json"},
    )
    assert r.status_code == 200 and json.loads(guarded.received()[0]["body"])["model"] == "azure/gpt-4o"


def test_oversized_chunked_body_is_denied(guarded):
    body = ('{"model": "azure/gpt-4o", "pad": "' + "q" * (33 << 20) + '"}').encode()
    r = httpx.post(
        guarded.stack.url + "/v1/chat/completions",
        content=iter([body[:1000], body[1000:]]),
        headers={"authorization": f"Bearer {guarded.key}", "content-type": "application/json"},
        timeout=60,
    )
    assert_blocked(guarded, r, "body_truncated")


def test_http2_clients_are_checked_the_same(guarded):
    def curl(model: str) -> tuple[int, str]:
        out = subprocess.run(
            [
                "curl",
                "-s",
                "--http2-prior-knowledge",
                "-o",
                "-",
                "-w",
                "\n%{http_code} %{http_version}",
                "-H",
                f"authorization: Bearer {guarded.key}",
                "-H",
                "content-type: application/json",
                "--data",
                json.dumps({"model": model, "messages": []}),
                guarded.stack.url + "/v1/chat/completions",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        body, _, status = out.stdout.rpartition("\n")
        code, version = status.split()
        assert version == "2"
        return int(code), body

    status, body = curl(PINNED_BAD)
    assert status == 403 and json.loads(body)["error"]["provider"] == "deepseek"
    assert guarded.received() == []
    assert curl("azure/gpt-4o")[0] == 200 and len(guarded.received()) == 1


def test_spoofed_org_header_does_not_switch_org(guarded, stack):
    other = "org-without-policy"
    stack.admin.set_plan(other, "enterprise")
    r = guarded.post({"model": PINNED_BAD, "messages": []}, headers={"x-org-id": other, "x-compliance-org": other})
    assert_blocked(guarded, r, "provider_not_compliant")
