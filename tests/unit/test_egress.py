"""The egress checkpoint's pure parts: org assertions and the judgement of a provider call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.check import assertion, egress, endpoints
from authz.check.request import ReadConfig, read
from authz.check.verdict import Verdict
from authz.ids import ORG_ID
from authz.policy import rules as policy_rules
from authz.policy.orgs import OrgPolicy
from authz.reasons import Reason
from authz.v1 import policy_pb2
from support.checkrequests import check_request
from support.generated import catalog_index

KEY = b"k" * 32
NOW = 1_800_000_000.0
FULL = dict(soc2=True, iso27001=True, gdpr=True, trains_on_prompts=False, logs_prompts=False)
CATALOG = catalog_index(
    {"groq": FULL, "deepseek": {**FULL, "trains_on_prompts": True}}, {"llama": ["groq"], "deepseek-v3.2": ["deepseek"]}
)
POLICY = policy_pb2.CompliancePolicy(enabled=True, require_no_prompt_training=True)


def org(**fields):
    p = policy_pb2.CompliancePolicy(**fields) if fields else POLICY
    return OrgPolicy("acme", 3, policy_rules.rules_of(p), p.enabled, True)


@given(st.from_regex(ORG_ID, fullmatch=True))
def test_property_an_assertion_names_the_org_it_was_signed_for(org_id):
    assert assertion.verify(assertion.sign(org_id, KEY, NOW, 60), KEY, NOW + 59) == org_id


def test_a_forged_expired_or_foreign_assertion_names_no_org():
    token = assertion.sign("acme", KEY, NOW, 60)
    payload, _, signature = token.rpartition(".")
    assert assertion.verify(token, KEY, NOW + 60) is None  # expired: a replay from an old request
    assert assertion.verify(token, b"x" * 32, NOW) is None  # another key
    assert assertion.verify(payload.replace("acme", "evil") + "." + signature, KEY, NOW) is None  # org changed
    assert assertion.verify(payload.replace("v1.", "v2.") + "." + signature, KEY, NOW) is None
    for junk in ("", "v1", "v1.acme.1.2.3", token + "x", "." * 600, token.replace(".", "", 1)):
        assert assertion.verify(junk, KEY, NOW) is None


TABLE = endpoints.default_table()


def judge(provider, org_policy=None, body=None, path=None, **request):
    """The gateway's call through the egress route /<provider>/... (the route prefix kept)."""
    path = path or f"/{provider}/v1/chat/completions"
    facts = read(check_request(body or {"model": "llama", "messages": []}, path=path, **request), ReadConfig())
    return egress.decide(facts, provider, org_policy or org(), CATALOG, TABLE)


def test_the_route_provider_alone_decides_whatever_model_the_body_names():
    assert judge("groq").reason is Reason.COMPLIANT
    blocked = judge("deepseek", body={"model": "llama", "messages": []})  # a compliant model's name
    assert blocked.reason is Reason.PROVIDER_NOT_COMPLIANT and blocked.provider == "deepseek"
    assert blocked.checkpoint == "egress" and not blocked.restricts_routing
    assert judge("nowhere").reason is Reason.UNKNOWN_PROVIDER


def test_model_lists_apply_when_the_body_names_a_catalog_model():
    denied = org(enabled=True, model_denylist=["llama"])
    assert judge("groq", denied).reason is Reason.MODEL_NOT_ALLOWED
    assert judge("groq", denied, {"model": "llama-3.3-70b-versatile"}).reason is Reason.COMPLIANT


def test_no_policy_allows_and_a_dry_run_records():
    assert judge("deepseek", org(enabled=False)).reason is Reason.NO_POLICY
    dry = OrgPolicy("acme", 1, policy_rules.rules_of(POLICY), True, False)
    verdict = judge("deepseek", dry)
    assert verdict.reason is Reason.PROVIDER_NOT_COMPLIANT and verdict.allowed


@pytest.mark.parametrize(
    ("extensions", "provider"),
    [
        ({}, None),
        ({"checkpoint": "egress", "provider": "groq"}, "groq"),
        ({"checkpoint": "egress"}, ""),
        ({"provider": "groq"}, None),
    ],
)
def test_only_an_egress_route_makes_an_egress_check(extensions, provider):
    assert egress.route_provider(extensions) == provider


def test_an_orgs_requests_in_one_second_share_one_assertion_and_the_next_second_signs_anew(monkeypatch):
    """One HMAC per org and second (the expiry counts whole seconds anyway); each still verifies."""
    from authz.check.verdict import Verdict
    from authz.reasons import Reason
    from authz.server.org_sources import assertion as assertion_source

    sign = assertion_source.AssertionSigner(KEY, 60)
    clock = iter([NOW + 0.1, NOW + 0.9, NOW + 1.2, NOW + 1.3])
    monkeypatch.setattr(assertion_source.time, "time", lambda: next(clock))
    allowed = Verdict(Reason.COMPLIANT, org_id="acme")
    first, same = sign(allowed), sign(allowed)
    later = sign(allowed)
    other = sign(Verdict(Reason.COMPLIANT, org_id="beta"))
    assert first == same != later and other != later
    assert [assertion.verify(t, KEY, NOW + 2) for t in (first, later, other)] == ["acme", "acme", "beta"]
    assert sign(Verdict(Reason.PROVIDER_NOT_COMPLIANT, org_id="acme")) == ""  # blocked: none
    assert assertion_source.AssertionSigner(b"", 60)(allowed) == ""  # no key: no assertions


# --- the red team's five findings -------------------------------------------------------------

DENY_LLAMA = dict(enabled=True, require_no_prompt_training=True, model_denylist=["llama"])


@pytest.mark.parametrize(
    "path",
    [
        "/groq/v1beta/models/llama:generateContent",  # Gemini: the model in the path
        "/groq/v1beta/models/llama:streamGenerateContent",
        "/groq/model/llama/invoke",  # Bedrock
        "/groq/model/llama/converse-stream",
        "/groq/v1/projects/p/locations/europe-west4/publishers/google/models/llama:generateContent",  # Vertex
        "/groq/openai/v1/chat/completions",  # Groq's own API under /openai/v1: the body's model
    ],
)
def test_a_model_named_in_the_path_is_judged_at_egress(path):
    body = {"contents": []} if "openai" not in path else {"model": "llama", "messages": []}
    verdict = judge("groq", org(**DENY_LLAMA), body=body, path=path)
    assert verdict.reason is Reason.MODEL_NOT_ALLOWED and verdict.model == "llama", verdict


def test_an_azure_deployment_is_judged_by_the_model_it_maps_to():
    table = endpoints.EndpointTable(TABLE.endpoints, {"llama-prod": "llama"})
    facts = read(
        check_request({"messages": []}, path="/groq/openai/deployments/llama-prod/chat/completions"), ReadConfig()
    )
    verdict = egress.decide(facts, "groq", org(**DENY_LLAMA), CATALOG, table)
    assert verdict.reason is Reason.MODEL_NOT_ALLOWED and verdict.model == "llama"  # the deployment's model


def test_a_body_envoy_cut_is_refused_as_at_ingress():
    verdict = judge("groq", org(**DENY_LLAMA), partial=True)
    assert verdict.reason is Reason.BODY_TRUNCATED and not verdict.allowed
    # Without model lists too: the unread body of an allowed call is still one Envoy saw whole.
    assert judge("groq", partial=True).reason is Reason.BODY_TRUNCATED


@pytest.mark.parametrize("content_type", ["Application/JSON; charset=utf-8", "application/json; charset=utf-8"])
def test_a_json_body_with_parameters_is_read(content_type):
    assert judge("groq", org(**DENY_LLAMA), content_type=content_type).reason is Reason.MODEL_NOT_ALLOWED


def test_a_body_of_another_declared_type_is_refused():
    verdict = judge("groq", org(**DENY_LLAMA), content_type="text/plain")
    assert verdict.reason is Reason.UNSUPPORTED_CONTENT_TYPE and not verdict.allowed


def test_an_api_the_table_does_not_describe_is_refused_only_where_model_lists_apply():
    path = "/groq/v9/unknown"
    assert judge("groq", org(**DENY_LLAMA), path=path).reason is Reason.ENDPOINT_NOT_COVERED
    assert judge("groq", path=path).reason is Reason.COMPLIANT  # the provider decides
    assert judge("deepseek", path="/deepseek/v9/unknown").reason is Reason.PROVIDER_NOT_COMPLIANT


@pytest.mark.parametrize("signature", ["é" * 43, "\u0000" * 10, "😀"])
def test_a_non_ascii_signature_names_no_org(signature):
    payload = assertion.sign("acme", KEY, NOW, 60).rpartition(".")[0]
    assert assertion.verify(f"{payload}.{signature}", KEY, NOW) is None


@given(st.text(max_size=600))
def test_property_verify_never_raises(token):
    assert assertion.verify(token, KEY, NOW) in (None, "acme")


def egress_verdict(reason, **details):
    """A whole egress Verdict, as decide() must build it for org() and the groq route."""
    base = dict(org_id="acme", enforced=True, policy_version=3, checkpoint="egress", routing="pinned", provider="groq")
    return Verdict(reason, **{**base, **details})


def test_each_egress_outcome_is_the_whole_verdict():
    """Every field of each outcome (the security event and the deny body read them), not only the
    reason: mutmut showed the org, the model, the item and the detail could each go missing."""
    # Without model lists an allowed call's body is not read (nothing needs its model).
    assert judge("groq") == egress_verdict(Reason.COMPLIANT, allowed_providers=("groq",))
    allowing = org(enabled=True, require_no_prompt_training=True, model_allowlist=["llama"])
    assert judge("groq", allowing) == egress_verdict(Reason.COMPLIANT, model="llama", allowed_providers=("groq",))
    denied = org(**DENY_LLAMA)
    unmet = policy_rules.model_unmet("llama", denied.rules)
    assert judge("groq", denied) == egress_verdict(Reason.MODEL_NOT_ALLOWED, model="llama", model_unmet=unmet)
    cut = judge("groq", denied, partial=True)
    limit = read(check_request({"model": "llama"}, partial=True), ReadConfig()).body_limit
    assert cut == egress_verdict(Reason.BODY_TRUNCATED, detail=f"{limit} bytes")
    off_table = judge("groq", denied, path="/groq/v9/unknown")
    assert off_table == egress_verdict(Reason.ENDPOINT_NOT_COVERED, detail="POST /v9/unknown")
    failures = CATALOG.table(org().rules).unmet["deepseek"]
    assert judge("deepseek", path="/deepseek/v1/chat/completions") == egress_verdict(
        Reason.PROVIDER_NOT_COMPLIANT, provider="deepseek", model="llama", blocked=(("deepseek", failures),)
    )


def test_a_body_envoy_cut_is_refused_even_with_no_model_lists():
    """Without model lists the route's provider decides, and an unreadable body is no reason to
    refuse; a cut body still is (as at ingress): what was cut may be what the lists would see,
    and the gateway would forward only what Envoy passed."""
    verdict = judge("groq", partial=True)
    assert verdict.reason is Reason.BODY_TRUNCATED and not verdict.allowed
    unreadable = judge("groq", content_type="text/plain")  # no lists: the provider decides
    assert unreadable == egress_verdict(Reason.COMPLIANT, allowed_providers=("groq",))


@pytest.mark.parametrize(
    ("path", "provider_path"),
    [("/groq/v1/chat/completions", "/v1/chat/completions"), ("//groq/x", "/x"), ("/groq", "/")],
)
def test_the_provider_path_drops_the_route_prefix_only(path, provider_path):
    assert egress.provider_path(path) == provider_path


@pytest.mark.parametrize(
    "payload",
    [
        f"v2.acme.{int(NOW) + 60}.0123456789abcdef",  # another version
        f"v1.ac me.{int(NOW) + 60}.0123456789abcdef",  # no org id
        "v1.acme.soon.0123456789abcdef",  # an expiry that is no number
        f"v1.acme.{int(NOW) + 60}.0123456789",  # a nonce of another length
    ],
)
def test_a_well_signed_assertion_of_another_shape_names_no_org(payload):
    """Signed with the right key, yet not an assertion sign() makes: each part is checked on its
    own (a key leaked to a tool that signs other payloads still cannot name an org with them)."""
    token = f"{payload}.{assertion._signature(KEY, payload)}"
    assert assertion.verify(token, KEY, NOW) is None
    good = f"v1.acme.{int(NOW) + 60}.0123456789abcdef"
    assert assertion.verify(f"{good}.{assertion._signature(KEY, good)}", KEY, NOW) == "acme"
