"""Each requirement, met only by the explicit value that satisfies it; unknown fails closed
and is reported as unknown, an explicit failure as not met."""

from __future__ import annotations

import pytest

from authz.policy import rules as policy_rules
from authz.policy.rules import NOT_MET, UNKNOWN, Unmet, model_unmet, rules_of, unmet
from authz.v1 import catalog_pb2, policy_pb2

T2, T1, NONE = catalog_pb2.SOC2_REPORT_TYPE2, catalog_pb2.SOC2_REPORT_TYPE1, catalog_pb2.SOC2_REPORT_NONE


def dp(**fields) -> catalog_pb2.DataPolicy:
    return catalog_pb2.DataPolicy(**fields)


def check(rule_fields: dict, data_policy, provider: str = "p") -> tuple[Unmet, ...]:
    return unmet(provider, data_policy, rules_of(policy_pb2.CompliancePolicy(enabled=True, **rule_fields)))


@pytest.mark.parametrize(
    ("rule", "data_policy", "expected"),
    [
        (dict(require_soc2=True), dp(soc2=True), ()),
        (dict(require_soc2=True), dp(soc2_report=T1), ()),
        (dict(require_soc2=True), dp(soc2=False), (Unmet("soc2", NOT_MET),)),
        (dict(require_soc2=True), dp(soc2_report=NONE), (Unmet("soc2", NOT_MET),)),
        (dict(require_soc2=True), dp(), (Unmet("soc2", UNKNOWN),)),
        (dict(require_soc2_type2=True), dp(soc2=True, soc2_report=T2), ()),
        (dict(require_soc2_type2=True), dp(soc2=True, soc2_report=T1), (Unmet("soc2_type2", NOT_MET),)),
        (dict(require_soc2_type2=True), dp(soc2=True), (Unmet("soc2_type2", UNKNOWN),)),
        (dict(require_zero_data_retention=True), dp(logs_prompts=False, prompt_retention_days=0), ()),
        (dict(require_zero_data_retention=True), dp(logs_prompts=False), (Unmet("zero_data_retention", UNKNOWN),)),
        (dict(require_zero_data_retention=True), dp(prompt_retention_days=0), (Unmet("zero_data_retention", UNKNOWN),)),
        (
            dict(require_zero_data_retention=True),
            dp(logs_prompts=False, prompt_retention_days=30),
            (Unmet("zero_data_retention", NOT_MET),),
        ),
        (dict(require_zero_data_retention=True), dp(logs_prompts=True), (Unmet("zero_data_retention", NOT_MET),)),
        (dict(allowed_countries=["DE", "FR"]), dp(headquarters_country="FR"), ()),
        (
            dict(allowed_countries=["DE", "FR"]),
            dp(headquarters_country="US"),
            (Unmet("headquarters_country", NOT_MET),),
        ),
        (dict(allowed_countries=["DE", "FR"]), dp(), (Unmet("headquarters_country", UNKNOWN),)),
        (dict(allowed_countries=["DE"]), None, (Unmet("headquarters_country", UNKNOWN),)),
        (dict(provider_denylist=["p"], provider_allowlist=["p"]), dp(), (Unmet("provider_denylist", NOT_MET),)),
        (dict(provider_allowlist=["q"]), dp(), (Unmet("provider_allowlist", NOT_MET),)),
        (dict(provider_allowlist=["p"], require_gdpr=True), dp(gdpr=True), ()),
        (dict(require_soc2=True, require_iso27001=True, certifications=2), dp(soc2_report=T2), ()),
        (
            dict(require_soc2=True, require_iso27001=True, certifications=2),
            dp(iso27001=False, soc2_report=NONE),
            (Unmet("soc2_or_iso27001", NOT_MET),),
        ),
    ],
)
def test_requirements(rule, data_policy, expected):
    assert check(rule, data_policy) == expected


def test_failures_come_in_canonical_order_lists_first():
    got = check(dict(provider_denylist=["p"], require_gdpr=True, require_soc2=True, allowed_countries=["DE"]), None)
    assert [u.requirement for u in got] == ["provider_denylist", "soc2", "gdpr", "headquarters_country"]


def test_model_lists_deny_beats_allow_and_empty_restricts_nothing():
    rules = rules_of(policy_pb2.CompliancePolicy(enabled=True, model_allowlist=["a", "b"], model_denylist=["b"]))
    assert model_unmet("a", rules) == ()
    assert model_unmet("b", rules) == (Unmet("model_denylist", NOT_MET),)
    assert model_unmet("c", rules) == (Unmet("model_allowlist", NOT_MET),)
    assert model_unmet("c", rules_of(policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True))) == ()


def test_disabled_policy_has_no_rules_and_rules_are_hashable_values():
    assert rules_of(policy_pb2.CompliancePolicy(enabled=False, require_gdpr=True)) == policy_rules.NO_RULES
    a = rules_of(policy_pb2.CompliancePolicy(enabled=True, provider_denylist=["x", "y"]))
    b = rules_of(policy_pb2.CompliancePolicy(enabled=True, provider_denylist=["y", "x"], mode=2))
    assert a == b and hash(a) == hash(b)


def test_describe_reads_as_a_sentence():
    text = policy_rules.describe(
        (Unmet("provider_denylist", NOT_MET), Unmet("gdpr", UNKNOWN), Unmet("zero_data_retention", NOT_MET))
    )
    assert text == "is on the provider deny list and fails GDPR (unknown), zero data retention (not met)"


def test_zero_data_retention_needs_zero_days_exactly():
    from authz.v1 import catalog_pb2

    rules = policy_rules.Rules(requirements=frozenset({"zero_data_retention"}))
    for days, expected in ((0, ()), (1, (policy_rules.Unmet("zero_data_retention", policy_rules.NOT_MET),))):
        dp = catalog_pb2.DataPolicy(logs_prompts=False, prompt_retention_days=days)
        assert policy_rules.unmet("p", dp, rules) == expected


def test_custom_providers_are_judged_by_their_attestation():
    from authz.v1 import catalog_pb2

    rules = policy_rules.Rules(requirements=frozenset({"gdpr"}))
    attested = catalog_pb2.CustomProvider(id="own", models=["m"], attestation=catalog_pb2.DataPolicy(gdpr=True))
    assert policy_rules.custom_unmet("own", attested, rules, enabled=True) == ()
    failing = catalog_pb2.CustomProvider(id="own", models=["m"], attestation=catalog_pb2.DataPolicy(gdpr=False))
    assert policy_rules.custom_unmet("own", failing, rules, enabled=True) == (
        policy_rules.Unmet("gdpr", policy_rules.NOT_MET),
    )
    bare = catalog_pb2.CustomProvider(id="own", models=["m"])
    assert policy_rules.custom_unmet("own", bare, rules, enabled=True) == (
        policy_rules.Unmet("custom_provider_attestation", policy_rules.UNKNOWN),
        policy_rules.Unmet("gdpr", policy_rules.UNKNOWN),
    )
    assert policy_rules.custom_unmet("own", bare, rules, enabled=False) == ()
    listed = policy_rules.Rules(provider_deny=frozenset({"own"}))
    assert policy_rules.custom_unmet("own", bare, listed, enabled=True) == (
        policy_rules.Unmet("custom_provider_attestation", policy_rules.UNKNOWN),
        policy_rules.Unmet("provider_denylist", policy_rules.NOT_MET),
    )


def test_an_attested_custom_provider_still_obeys_the_provider_lists():
    from authz.v1 import catalog_pb2

    attested = catalog_pb2.CustomProvider(id="own", models=["m"], attestation=catalog_pb2.DataPolicy(gdpr=True))
    rules = policy_rules.Rules(requirements=frozenset({"gdpr"}), provider_deny=frozenset({"own"}))
    assert policy_rules.custom_unmet("own", attested, rules, enabled=True) == (
        policy_rules.Unmet("provider_denylist", policy_rules.NOT_MET),
    )


def test_a_provider_failing_both_lists_is_reported_under_both():
    """LLMGateway reports blockedProviders and allowedProviders; so do we (the verdict is the same)."""
    got = check(dict(provider_denylist=["p"], provider_allowlist=["q"]), dp())
    assert sorted(got) == [Unmet("provider_allowlist", NOT_MET), Unmet("provider_denylist", NOT_MET)]


@pytest.mark.parametrize(
    ("lists", "expected"),
    [
        (dict(provider_denylist=["alibaba"]), (Unmet("provider_denylist", NOT_MET),)),
        (dict(provider_allowlist=["alibaba"]), ()),
        (dict(provider_denylist=["alibaba-singapore"]), (Unmet("provider_denylist", NOT_MET),)),
        (dict(provider_allowlist=["alibaba-us-virginia"]), (Unmet("provider_allowlist", NOT_MET),)),
        (dict(provider_denylist=["aws-bedrock"]), ()),
    ],
)
def test_a_region_entry_is_covered_by_its_providers_list_entries(lists, expected):
    rules = rules_of(policy_pb2.CompliancePolicy(enabled=True, **lists))
    assert unmet("alibaba-singapore", dp(), rules, region_of="alibaba") == expected


@pytest.mark.parametrize(
    ("data_policy", "expected"),
    [
        (dp(soc2=True, soc2_report=T2), ()),  # SOC 2, and Type 2
        (dp(soc2=True, soc2_report=T1, iso27001=True), ()),  # SOC 2, and ISO 27001
        (dp(soc2=True, soc2_report=T1, iso27001=False), (Unmet("soc2_or_iso27001", NOT_MET),)),
        (dp(iso27001=True), (Unmet("soc2", UNKNOWN),)),
    ],
)
def test_soc2_or_iso27001_combines_with_soc2(data_policy, expected):
    """ "SOC 2 and (a Type 2 report or ISO 27001)": impossible to say before its own flag."""
    assert check(dict(require_soc2=True, require_soc2_or_iso27001=True), data_policy) == expected


def test_a_stored_certifications_any_policy_keeps_its_meaning():
    """Policies saved before the flag (both flags, certifications = any) mean the same rules."""
    legacy = rules_of(
        policy_pb2.CompliancePolicy(enabled=True, require_soc2=True, require_iso27001=True, certifications=2)
    )
    flag = rules_of(policy_pb2.CompliancePolicy(enabled=True, require_soc2_or_iso27001=True))
    assert legacy == flag and legacy.requirements == {"soc2_or_iso27001"}
