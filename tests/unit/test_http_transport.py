"""The Check over Envoy's HTTP ext_authz protocol: the CheckResponse as HTTP, the facts read
from the forwarded request exactly as from a gRPC CheckRequest (end to end: the e2e modules
that run over both transports)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from authz import config
from authz.check import request as request_mod
from authz.check import response as response_mod
from authz.check.verdict import Verdict
from authz.reasons import Reason
from authz.server.http_transport import client_address, headers_of
from support.checkrequests import check_request


def as_http(response) -> tuple[int, list[tuple[str, str]], bytes]:
    """The oracle: what Envoy's HTTP ext_authz must receive for a CheckResponse, built field by field."""
    if response.HasField("ok_response"):
        ok = response.ok_response
        headers = [(h.header.key, h.header.value) for h in ok.headers]
        headers += [
            (h.header.key, h.header.value)
            for h in ok.response_headers_to_add
            if (h.header.key, h.header.value) not in headers
        ]
        if ok.headers_to_remove:
            headers.append(("x-envoy-auth-headers-to-remove", ",".join(ok.headers_to_remove)))
        return 200, headers, b""
    denied = response.denied_response
    return denied.status.code, [(h.header.key, h.header.value) for h in denied.headers], denied.body.encode()


VERDICTS = [
    Verdict(Reason.COMPLIANT, org_id="acme", policy_version=3, allowed_providers=("azure",)),
    Verdict(Reason.COMPLIANT, org_id="acme", policy_version=3, allowed_providers=("azure", "openai"), enforced=True),
    Verdict(Reason.NO_POLICY, org_id="free"),
    Verdict(Reason.PROVIDER_NOT_COMPLIANT, org_id="acme", provider="deepseek", model="deepseek/x", enforced=False),
    Verdict(Reason.UNKNOWN_MODEL, org_id="acme", model="nope"),
    Verdict(Reason.STATE_UNAVAILABLE, org_id="acme"),
    Verdict(Reason.ORG_MISSING),
]


@pytest.mark.parametrize("verdict", VERDICTS, ids=lambda v: v.reason.value)
@pytest.mark.parametrize("owned", [(), ("x-compliance-evil", "x-compliance-org-assertion")])
@pytest.mark.parametrize("signed", ["", "v1.acme.123.n.sig"])
def test_the_http_answer_is_the_check_response_as_envoy_reads_it(verdict, owned, signed):
    args = (verdict, "d1", "r1", owned, {}, 1, (("x-no-fallback", "true"),), signed)
    status, headers, body = response_mod.build_http(*args)
    expected = as_http(response_mod.build(*args))
    assert (status, sorted(headers), body) == (expected[0], sorted(expected[1]), expected[2])  # order is no matter


def test_an_allowed_answer_names_the_clients_own_headers_for_removal_and_carries_one_decision_id():
    verdict = Verdict(Reason.COMPLIANT, org_id="acme", policy_version=3, allowed_providers=("azure",))
    status, headers, body = response_mod.build_http(verdict, "d1", "r1", ("x-compliance-evil",), {}, 1)
    names = dict(headers)
    assert (status, body) == (200, b"") and names["x-compliance-allowed-providers"] == "azure"
    assert [k for k, _ in headers].count("x-compliance-decision-id") == 1 and names["x-compliance-decision-id"] == "d1"
    assert names["x-envoy-auth-headers-to-remove"] == "x-compliance-evil"
    status, headers, body = response_mod.build_http(Verdict(Reason.UNKNOWN_MODEL, model="nope"), "d2", "r2", (), {}, 1)
    assert status == 403 and b'"unknown_model"' in body and ("x-compliance-decision-id", "d2") in headers


@dataclass
class Scope:
    headers: object


class Headers:
    def __init__(self, items):
        self._items = items

    def items(self):
        return list(self._items)


def test_headers_are_lower_case_and_a_repeated_one_is_joined_as_envoy_joins_them():
    scope = Scope(Headers([("X-Model", "a"), ("x-model", "b"), ("Authorization", "Bearer k")]))
    assert headers_of(scope) == {"x-model": "a,b", "authorization": "Bearer k"}
    assert headers_of(Scope(Headers([("X-Model", "a"), ("authorization", "k")]))) == {
        "x-model": "a",
        "authorization": "k",
    }
    assert headers_of(Scope(Headers([("x-model", "a"), ("x-1", "k")]))) == {"x-model": "a", "x-1": "k"}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-envoy-external-address": "203.0.113.9", "x-forwarded-for": "10.0.0.1, 198.51.100.7"}, "203.0.113.9"),
        ({"x-forwarded-for": "10.0.0.1, 198.51.100.7"}, "198.51.100.7"),  # the hop Envoy appended
        ({}, "127.0.0.1"),  # Envoy itself
    ],
)
def test_the_client_address_is_the_one_envoy_saw(headers, expected):
    assert client_address(headers, "127.0.0.1:51234") == expected


def test_the_same_request_reads_to_the_same_facts_over_both_transports():
    names = request_mod.ReadConfig(model="x-model", provider="x-provider")
    headers = {
        "authorization": "Bearer sk-1",
        "content-type": "application/json",
        "x-request-id": "rid",
        "x-compliance-evil": "1",
        "x-model": "m",
    }
    body = b'{"model": "deepseek/deepseek-v3.2"}'
    forwarded = {**headers, "x-envoy-auth-partial-body": "false"}  # Envoy adds it on both transports
    grpc = request_mod.read(check_request(body, forwarded, path="/v1/chat/completions?x=1"), names)
    http = request_mod.read_http("POST", "/v1/chat/completions?x=1", forwarded, body, grpc.client_address, names)
    assert http == grpc


def test_http_ext_authz_cannot_carry_jwt_metadata_so_jwt_orgs_are_refused_with_it():
    with pytest.raises(config.ConfigError, match="sends over gRPC only"):
        config.load(None, {"AUTHZ_EXT_AUTHZ_HTTP_LISTEN": "127.0.0.1:9003", "AUTHZ_ORG_SOURCE": "jwt"})
    with pytest.raises(config.ConfigError, match="listen on the same port"):
        config.load(None, {"AUTHZ_EXT_AUTHZ_HTTP_LISTEN": "127.0.0.1:9001", "AUTHZ_GRPC_LISTEN": "127.0.0.1:9001"})
    on = config.load(None, {"AUTHZ_EXT_AUTHZ_HTTP_LISTEN": "127.0.0.1:9003"})
    assert on.listens()["ext_authz_http_listen"] == "127.0.0.1:9003"
    assert "ext_authz_http_listen" not in config.load(None, {}).listens()  # off unless set
