"""Reading a CheckRequest: org credentials, the model, and every way the model can be doubtful."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.check import parsing
from authz.check.parsing import jsonbody
from authz.check.request import JWT_AUTHN, NOT_AN_ID, ReadConfig, read
from authz.ids import ORG_ID, api_key_hash, api_key_id
from authz.reasons import Reason
from support.checkrequests import check_request

NAMES = ReadConfig(model="x-model", provider="x-provider")


def model_of(f):
    """The one model a chat request names, or the reason it cannot be known."""
    found = parsing.requested(f)
    if isinstance(found, parsing.Refusal):
        return found.reason
    [(model, _)] = found
    return model


def model_in_body(raw: bytes):
    pairs = jsonbody.object_pairs(raw)
    return pairs if isinstance(pairs, Reason) else jsonbody.model_value(jsonbody.lookup(pairs, "model"))


def facts(body=None, headers=None, limit=None, **kw):
    names = NAMES if limit is None else ReadConfig(model="x-model", max_request_bytes=limit)
    return read(check_request(body, headers, **kw), names)


def test_reads_bearer_key_request_id_client_and_owned_headers():
    f = facts(
        {"model": "m"},
        {
            "Authorization": "Bearer  sk-1 ",
            "x-request-id": "rid",
            "user-agent": "sdk/1",
            "x-compliance-allowed-providers": "evil",
            "x-compliance-org": "other",
        },
    )
    assert f.api_key == "sk-1"
    assert f.request_id == "rid"
    assert f.user_agent == "sdk/1"
    assert f.client_address == "203.0.113.7"
    assert set(f.owned_headers) == {"x-compliance-allowed-providers", "x-compliance-org"}


@pytest.mark.parametrize("value", [None, "", "Basic abc", "Bearer", "Bearer   ", "sk-raw"])
def test_no_usable_bearer_key(value):
    headers = {} if value is None else {"authorization": value}
    assert facts({"model": "m"}, headers).api_key is None


def test_bearer_scheme_is_case_insensitive():
    assert facts(None, {"authorization": "bearer k"}).api_key == "k"


def test_api_key_id_is_a_short_prefix_of_the_hash_never_the_key():
    h = api_key_hash("sk-secret")
    assert len(h) == 64 and api_key_id(h) == h[:12] and "sk-secret" not in api_key_id(h)


def test_model_from_body():
    assert model_of(facts({"model": "gpt-4o", "messages": []})) == "gpt-4o"


def test_model_from_header_without_body():
    assert model_of(facts(None, {"x-model": "gpt-4o"})) == "gpt-4o"


def test_header_and_body_agree():
    assert model_of(facts({"model": "gpt-4o"}, {"x-model": "gpt-4o"})) == "gpt-4o"


@pytest.mark.parametrize(
    ("body", "headers", "kw", "reason"),
    [
        ({"model": "gpt-4o"}, {"x-model": "deepseek/deepseek-v3.2"}, {}, Reason.MODEL_MISMATCH),
        ('{"model": "gpt-4o", "model": "deepseek/deepseek-v3.2"}', {}, {}, Reason.DUPLICATE_MODEL),
        ('{"model": "gpt-4o", "mod\\u0065l": "deepseek/x"}', {}, {}, Reason.DUPLICATE_MODEL),
        ("model=gpt-4o", {}, {}, Reason.BODY_NOT_JSON),
        (b"\xff\xfe{}", {}, {}, Reason.BODY_NOT_JSON),
        ('["gpt-4o"]', {}, {}, Reason.BODY_NOT_JSON),
        ("[" * 100_000, {}, {}, Reason.BODY_NOT_JSON),
        ({"messages": []}, {}, {}, Reason.MODEL_MISSING),
        (None, {}, {}, Reason.MODEL_MISSING),
        ({"model": 7}, {}, {}, Reason.MODEL_INVALID),
        ({"model": ""}, {}, {}, Reason.MODEL_INVALID),
        ({"model": None}, {}, {}, Reason.MODEL_INVALID),
        ({"model": "gpt-4o"}, {}, {"partial": True}, Reason.BODY_TRUNCATED),
        ({"model": "gpt-4o"}, {"x-model": "gpt-4o"}, {"partial": True}, Reason.BODY_TRUNCATED),
        ({"model": "gpt-4o"}, {}, {"size": 10_000}, Reason.BODY_TRUNCATED),
        ({"model": "gpt-4o"}, {"content-length": "10000"}, {}, Reason.BODY_TRUNCATED),
        # Envoy's buffer filled exactly at the limit: it says "not partial"; the length says otherwise.
        ('{"model": "gpt-4o", "pad": "' + "x" * 100 + '"}', {}, {"limit": 100}, Reason.BODY_TRUNCATED),
        ({"model": "gpt-4o"}, {"content-encoding": "gzip"}, {}, Reason.BODY_ENCODED),
    ],
)
def test_doubtful_model_is_a_named_reason(body, headers, kw, reason):
    assert model_of(facts(body, headers, **kw)) is reason


def test_nested_model_keys_do_not_count():
    body = {"model": "gpt-4o", "metadata": {"model": "x", "inner": {"model": "y"}}, "tools": [{"model": "z"}]}
    assert model_of(facts(body)) == "gpt-4o"


def test_nested_duplicates_are_not_top_level_duplicates():
    assert model_in_body(b'{"a": {"model": 1, "model": 2}, "model": "m"}') == "m"


def test_matching_content_length_is_complete():
    body = b'{"model": "gpt-4o"}'
    assert model_of(facts(body, {"content-length": str(len(body))})) == "gpt-4o"


def test_identity_encoding_is_plain():
    assert model_of(facts({"model": "m"}, {"content-encoding": "identity"})) == "m"


# --- properties -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


@given(model=st.text(min_size=1, max_size=40), other=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_property_top_level_model_is_found_whatever_else_the_body_holds(model, other):
    other = {k: v for k, v in other.items() if k.casefold() != "model"}
    body = json.dumps({**other, "model": model})
    assert model_in_body(body.encode()) == model


@given(st.binary(max_size=300))
def test_property_arbitrary_bytes_never_raise(raw):
    result = model_of(facts(raw or None))
    assert isinstance(result, (str, Reason))


@given(a=st.text(min_size=1, max_size=20), b=st.text(min_size=1, max_size=20))
def test_property_header_and_body_must_agree(a, b):
    result = model_of(facts({"model": a}, {"x-model": b}))
    assert result == a if a == b else result is Reason.MODEL_MISMATCH


@given(
    first=st.text(min_size=1, max_size=20),
    second=st.text(min_size=1, max_size=20),
    filler=st.dictionaries(st.text(max_size=5).filter(lambda k: k.casefold() != "model"), st.integers(), max_size=3),
)
def test_property_two_top_level_models_always_deny(first, second, filler):
    middle = json.dumps(filler)[1:-1]
    sep = ", " if middle else ""
    body = f'{{"model": {json.dumps(first)}{sep}{middle}, "model": {json.dumps(second)}}}'
    assert model_in_body(body.encode()) is Reason.DUPLICATE_MODEL


@given(st.binary(min_size=1, max_size=200))
def test_property_truncated_body_always_denies(raw):
    assert model_of(facts(raw, partial=True)) is Reason.BODY_TRUNCATED


def test_protobuf_runs_on_the_upb_backend():
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb", "the pure-Python backend would make every Check far slower"


def test_defaults_when_headers_are_absent_or_not_configured():
    req = check_request({"model": "m"}, {"x-org-id": "spoofed", "x-provider": "p"})
    req.attributes.request.http.id = "envoy-stream-7"
    f = read(req, ReadConfig(model="x-model"))  # no org header, no provider header configured
    assert (f.request_id, f.user_agent, f.org_header, f.provider_header) == ("envoy-stream-7", "", None, None)
    g = read(req, ReadConfig(model="x-model", provider="x-provider", org="x-org-id"))
    assert (g.org_header, g.provider_header) == ("spoofed", "p")


def test_json_may_start_with_whitespace_but_nothing_else():
    assert model_in_body(b' \t\r\n{"model": "m"}') == "m"
    assert model_in_body(b'{"model": "m"} \n') == "m"
    assert model_in_body(b'\x0c{"model": "m"}') is Reason.BODY_NOT_JSON


def test_a_body_filling_the_inspection_limit_exactly_is_treated_as_cut():
    body = json.dumps({"model": "m", "pad": ""})
    exact = json.dumps({"model": "m", "pad": "x" * (100 - len(body))})
    assert len(exact) == 100
    assert model_of(facts(exact, limit=100)) is Reason.BODY_TRUNCATED
    assert model_of(facts(exact, limit=101)) == "m"


@pytest.mark.parametrize(
    ("claim", "read_as"),
    [
        ("acme", "acme"),
        (["acme"], NOT_AN_ID),
        (7, NOT_AN_ID),
        (True, NOT_AN_ID),
        ({"id": "acme"}, NOT_AN_ID),
        (None, NOT_AN_ID),  # JSON null is not a string either
    ],
)
def test_the_org_claim_keeps_its_json_type(claim, read_as):
    """org_source = "jwt": jwt_authn's verified payload arrives in the Check's metadata."""
    from google.protobuf import struct_pb2

    req = check_request({"model": "m"})
    payload = struct_pb2.Struct()
    payload.update({"jwt_payload": {"org": claim, "sub": "u"}})
    req.attributes.metadata_context.filter_metadata[JWT_AUTHN].CopyFrom(payload)
    names = ReadConfig(org_claim="org")
    assert read(req, names).org_header == read_as
    assert read(req, ReadConfig(org_claim="tenant")).org_header is None  # the claim is absent
    assert read(check_request({"model": "m"}), names).org_header is None  # no token verified


@pytest.mark.parametrize("org", ["acme", "acme-corp", "org_1", "team.eu", "a"])
def test_org_ids(org):
    assert ORG_ID.fullmatch(org)


@pytest.mark.parametrize("org", ["acme,acme", "a b", '["acme"]', "WyJhY21lIl0=", "", "-x", NOT_AN_ID, "x" * 129, "é"])
def test_what_is_not_one_org_id(org):
    assert not ORG_ID.fullmatch(org)


@pytest.mark.parametrize(
    ("method", "headers", "upgrade"),
    [
        ("GET", {"upgrade": "websocket"}, "websocket"),
        ("CONNECT", {":protocol": "websocket"}, "websocket"),  # HTTP/2 extended CONNECT
        ("CONNECT", {}, "connect"),
        ("POST", {}, None),
    ],
)
def test_an_upgrade_is_seen_however_it_is_asked(method, headers, upgrade):
    """Envoy masks CONNECT today; a mutant dropping it survived every test (defence in depth)."""
    facts = read(check_request({"model": "m"}, headers, method=method), ReadConfig())
    assert facts.upgrade == upgrade


def test_an_upgrade_on_a_row_that_is_no_websocket_endpoint_is_refused():
    from authz.check.decision import decide
    from authz.policy import rules
    from authz.policy.orgs import OrgPolicy
    from authz.reasons import Reason
    from authz.v1 import policy_pb2

    p = policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True)
    org = OrgPolicy("o", 1, rules.rules_of(p), True)
    for method, headers in (("POST", {"upgrade": "websocket"}), ("CONNECT", {":protocol": "websocket"})):
        facts = read(check_request({"model": "m"}, headers, method=method), ReadConfig())
        assert decide(facts, org, None).reason is Reason.UPGRADE_NOT_ALLOWED
