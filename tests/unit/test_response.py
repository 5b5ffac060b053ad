"""Building CheckResponses: our headers are always overwritten or stripped; deny bodies are
OpenAI-shaped and name provider, model and every failed requirement."""

from __future__ import annotations

import json

from envoy.config.core.v3 import base_pb2
from google.rpc import code_pb2

from authz.check.response import ALLOWED_PROVIDERS_HEADER, build, message
from authz.check.verdict import Verdict
from authz.policy import rules as policy_rules
from authz.reasons import OUTCOMES, Reason
from authz.v1 import catalog_pb2

OWNED = ("x-compliance-allowed-providers", "x-compliance-org", "x-compliance-anything")
UNMET = (
    policy_rules.Unmet("gdpr", policy_rules.UNKNOWN),
    policy_rules.Unmet("no_prompt_training", policy_rules.NOT_MET),
)


def test_allowed_overwrites_ours_and_strips_the_rest():
    v = Verdict(
        Reason.COMPLIANT, org_id="acme", policy_version=3, model="m", routing="automatic", allowed_providers=("a", "b")
    )
    r = build(v, "d1", "r1", OWNED)
    assert r.status.code == code_pb2.OK
    headers = {h.header.key: h for h in r.ok_response.headers}
    assert headers[ALLOWED_PROVIDERS_HEADER].header.value == "a,b"
    assert headers["x-compliance-org"].header.value == "acme"
    assert headers["x-compliance-policy-version"].header.value == "3"
    assert all(h.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD for h in headers.values())
    assert list(r.ok_response.headers_to_remove) == ["x-compliance-anything"]
    assert r.dynamic_metadata["decision_id"] == "d1" and r.dynamic_metadata["reason"] == "compliant"
    [to_client] = r.ok_response.response_headers_to_add  # the client can quote the decision
    assert (to_client.header.key, to_client.header.value) == ("x-compliance-decision-id", "d1")


def test_no_policy_strips_every_owned_header():
    r = build(Verdict(Reason.NO_POLICY, org_id="acme"), "d1", "r1", OWNED)
    assert not r.ok_response.headers and list(r.ok_response.headers_to_remove) == list(OWNED)
    assert [h.header.value for h in r.ok_response.response_headers_to_add] == ["d1"]


def test_dry_run_allows_without_restricting_routing():
    v = Verdict(
        Reason.PROVIDER_NOT_COMPLIANT, org_id="acme", enforced=False, provider="p", model="p/m", blocked=(("p", UNMET),)
    )
    r = build(v, "d1", "r1", OWNED)
    assert r.HasField("ok_response") and not r.ok_response.headers
    assert list(r.ok_response.headers_to_remove) == list(OWNED)


def test_pinned_deny_body():
    v = Verdict(
        Reason.PROVIDER_NOT_COMPLIANT,
        org_id="acme",
        policy_version=7,
        model="deepseek/deepseek-v3.2",
        routing="pinned",
        provider="deepseek",
        blocked=(("deepseek", UNMET),),
    )
    r = build(v, "d1", "r1", ())
    assert r.status.code == code_pb2.PERMISSION_DENIED
    assert r.denied_response.status.code == 403
    assert {h.header.key: h.header.value for h in r.denied_response.headers}["content-type"] == "application/json"
    err = json.loads(r.denied_response.body)["error"]
    assert err["type"] == "provider_compliance_violation" and err["code"] == "provider_not_compliant"
    assert err["provider"] == "deepseek" and err["model"] == "deepseek/deepseek-v3.2"
    assert err["failed_requirements"] == ["gdpr", "no_prompt_training"]
    assert err["blocked_providers"] == [
        {"provider": "deepseek", "failed_requirements": ["gdpr", "no_prompt_training"], "unknown": ["gdpr"]}
    ]
    assert (err["policy_version"], err["decision_id"], err["request_id"]) == (7, "d1", "r1")
    for part in ("deepseek", "deepseek/deepseek-v3.2", "GDPR (unknown)", "no training on prompts (not met)"):
        assert part in err["message"]


def test_deny_body_points_to_the_published_evidence():
    deepseek = catalog_pb2.Provider(
        id="deepseek",
        privacy_policy_url="https://example.test/privacy",
        data_policy=catalog_pb2.DataPolicy(
            trains_on_prompts=True,
            evidence={"trains_on_prompts": catalog_pb2.Evidence(source="providers.ts@abc", checked_at="2026-11-26")},
        ),
    )
    v = Verdict(Reason.PROVIDER_NOT_COMPLIANT, provider="deepseek", model="deepseek/m", blocked=(("deepseek", UNMET),))
    err = json.loads(build(v, "d", "r", (), {"deepseek": deepseek}).denied_response.body)["error"]
    blocked = err["blocked_providers"][0]
    assert blocked["evidence"] == {
        "gdpr": "not published",
        "trains_on_prompts": "providers.ts@abc (checked 2026-11-26)",
    }
    assert blocked["privacy_policy_url"] == "https://example.test/privacy"
    # an org's custom provider is not in the catalog: its attestation is the org's own
    v = Verdict(Reason.PROVIDER_NOT_COMPLIANT, provider="mine", model="mine/m", blocked=(("mine", UNMET),))
    err = json.loads(build(v, "d", "r", (), {"deepseek": deepseek}).denied_response.body)["error"]
    assert "evidence" not in err["blocked_providers"][0]


def test_automatic_deny_names_each_provider():
    v = Verdict(Reason.NO_COMPLIANT_PROVIDER, model="m", blocked=(("a", UNMET), ("b", UNMET[:1])))
    err = json.loads(build(v, "d", "r", ()).denied_response.body)["error"]
    assert err["provider"] is None and [b["provider"] for b in err["blocked_providers"]] == ["a", "b"]
    assert "'a' fails" in err["message"] and "'b' fails" in err["message"]


def test_every_reason_has_an_outcome_and_a_message():
    for reason in Reason:
        outcome = OUTCOMES[reason]
        text = message(Verdict(reason, model="m", provider="p"))
        assert text and text.endswith(".")
        if outcome.http_status != 200:
            r = build(Verdict(reason), "d", "r", ())
            assert r.denied_response.status.code == outcome.http_status
            assert json.loads(r.denied_response.body)["error"]["code"] == reason.value


def test_deny_carries_the_decision_metadata_and_header():
    v = Verdict(
        Reason.PROVIDER_NOT_COMPLIANT,
        org_id="acme",
        policy_version=7,
        enforced=True,
        model="p/m",
        routing="pinned",
        provider="p",
        blocked=(("p", UNMET),),
    )
    r = build(v, "d9", "r9", ())
    meta = r.dynamic_metadata
    assert (meta["decision_id"], meta["reason"], meta["org_id"], meta["policy_version"], meta["enforced"]) == (
        "d9",
        "provider_not_compliant",
        "acme",
        7,
        True,
    )
    headers = {h.header.key: h for h in r.denied_response.headers}
    assert headers["x-compliance-decision-id"].header.value == "d9"
    assert all(h.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD for h in headers.values())
    assert r.denied_response.body.startswith('{"error":{"type":"provider_compliance_violation","code":')


def test_messages_name_every_part_exactly():
    automatic = Verdict(Reason.NO_COMPLIANT_PROVIDER, model="m", blocked=(("a", UNMET), ("b", UNMET[:1])))
    assert message(automatic) == (
        "No provider serving model 'm' meets your organization's provider compliance policy: "
        "'a' fails GDPR (unknown), no training on prompts (not met); 'b' fails GDPR (unknown)."
    )
    listed = Verdict(
        Reason.MODEL_NOT_ALLOWED, model="m", model_unmet=(policy_rules.Unmet("model_denylist", policy_rules.NOT_MET),)
    )
    assert message(listed) == (
        "Model 'm' is blocked by your organization's provider compliance policy: it is on the model deny list."
    )
    conflict = Verdict(Reason.PROVIDER_CONFLICT, model="a/m", provider="b")
    assert message(conflict) == "The provider header names 'b' but model 'a/m' is pinned to another provider."
