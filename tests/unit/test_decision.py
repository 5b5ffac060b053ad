"""The decision: every row of the decision table (docs/requests.md), and properties checked against an oracle."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz.check.decision import AUTOMATIC, HEADER, PINNED, STRICT, Gateway, decide
from authz.check.request import ReadConfig, read
from authz.check.verdict import Verdict
from authz.policy import rules as policy_rules
from authz.policy.orgs import OrgPolicy
from authz.reasons import OUTCOMES, Reason
from authz.v1 import policy_pb2
from support.checkrequests import check_request
from support.generated import assert_reached, catalog_index, data_policies
from support.generated import policies as policies_for
from support.oracle import oracle_compliant, oracle_model_allowed

FULL = dict(soc2=True, iso27001=True, gdpr=True, trains_on_prompts=False, logs_prompts=False)


def org_with(version=4, mode=policy_pb2.POLICY_MODE_ENFORCE, **fields) -> OrgPolicy:
    p = policy_pb2.CompliancePolicy(mode=mode, **fields)
    return OrgPolicy("acme", version, policy_rules.rules_of(p), p.enabled, p.mode != policy_pb2.POLICY_MODE_DRY_RUN)


CATALOG = catalog_index(
    {
        "good": FULL,
        "good2": FULL,
        "trainer": {**FULL, "trains_on_prompts": True},
        "vague": {**FULL, "gdpr": None},
        "silent": None,
    },
    {"m1": ["good", "trainer", "vague"], "m2": ["trainer", "vague", "silent"], "m3": ["good", "good2"]},
)
ALL_ON = dict(
    enabled=True,
    require_soc2=True,
    require_iso27001=True,
    require_gdpr=True,
    require_no_prompt_training=True,
    require_no_prompt_logging=True,
)
NAMES = ReadConfig(model="x-model", provider="x-provider")


HEADER_ROUTING = Gateway(routing=HEADER)


def run(model=None, org=None, headers=None, catalog=CATALOG, body=None, gateway=HEADER_ROUTING):
    body = body if body is not None else ({"model": model} if model is not None else None)
    return decide(read(check_request(body, headers), NAMES), org or org_with(**ALL_ON), catalog, gateway)


def test_no_policy_allows_without_reading_the_request():
    v = run(body="not json", org=org_with())
    assert v.reason is Reason.NO_POLICY and v.allowed and not v.restricts_routing


def test_disabled_policy_allows():
    v = run("silent/m2", org=org_with(**{**ALL_ON, "enabled": False}))
    assert v.reason is Reason.NO_POLICY and v.allowed


def test_pinned_compliant():
    v = run("good/m1")
    assert (v.reason, v.routing, v.provider, v.allowed_providers) == (Reason.COMPLIANT, PINNED, "good", ("good",))
    assert v.allowed and v.restricts_routing


def test_pinned_non_compliant_names_every_failed_requirement():
    v = run("trainer/m1")
    assert v.reason is Reason.PROVIDER_NOT_COMPLIANT and not v.allowed
    assert v.blocked == (("trainer", (policy_rules.Unmet("no_prompt_training", policy_rules.NOT_MET),)),)
    assert OUTCOMES[v.reason].http_status == 403


def test_unknown_attribute_is_non_compliant():
    v = run("vague/m1")
    assert v.reason is Reason.PROVIDER_NOT_COMPLIANT
    assert v.blocked[0][1] == (policy_rules.Unmet("gdpr", policy_rules.UNKNOWN),)


def test_provider_without_data_policy_fails_every_requirement_as_unknown():
    v = run("silent/m2")
    assert v.reason is Reason.PROVIDER_NOT_COMPLIANT
    assert {u.requirement for u in v.blocked[0][1]} == {
        "soc2",
        "iso27001",
        "gdpr",
        "no_prompt_training",
        "no_prompt_logging",
    }
    assert all(u.cause == policy_rules.UNKNOWN for u in v.blocked[0][1])


def test_automatic_keeps_only_compliant_candidates():
    v = run("m1")
    assert (v.reason, v.routing, v.allowed_providers) == (Reason.COMPLIANT, AUTOMATIC, ("good",))
    assert [p for p, _ in v.blocked] == ["trainer", "vague"]


def test_automatic_with_none_compliant_blocks():
    v = run("m2")
    assert v.reason is Reason.NO_COMPLIANT_PROVIDER and not v.allowed
    assert [p for p, _ in v.blocked] == ["trainer", "vague", "silent"]


def test_dry_run_allows_but_keeps_the_would_be_block():
    v = run("trainer/m1", org=org_with(mode=policy_pb2.POLICY_MODE_DRY_RUN, **ALL_ON))
    assert v.reason is Reason.PROVIDER_NOT_COMPLIANT and v.allowed and not v.enforced
    assert not v.restricts_routing


@pytest.mark.parametrize(
    ("model", "headers", "reason"),
    [
        ("nope", {}, Reason.UNKNOWN_MODEL),
        ("good/nope", {}, Reason.UNKNOWN_MODEL),
        ("ghost/m1", {}, Reason.UNKNOWN_MODEL),  # not a provider prefix: read as a model id
        ("good2/m1", {}, Reason.PROVIDER_DOES_NOT_SERVE_MODEL),
        ("m1", {"x-provider": "ghost"}, Reason.UNKNOWN_PROVIDER),
        ("good/m1", {"x-provider": "trainer"}, Reason.PROVIDER_CONFLICT),
        ("GOOD/m1", {}, Reason.UNKNOWN_MODEL),  # ids are exact: a look-alike never matches
        (" m1", {}, Reason.UNKNOWN_MODEL),
        ("m1", {"x-model": "m3"}, Reason.MODEL_MISMATCH),
    ],
)
def test_fail_closed_rows(model, headers, reason):
    v = run(model, headers=headers)
    assert v.reason is reason and not v.allowed


def test_provider_header_pins():
    v = run("m1", headers={"x-provider": "good"})
    assert (v.reason, v.routing, v.allowed_providers) == (Reason.COMPLIANT, PINNED, ("good",))


def test_no_catalog_is_unavailable_not_allowed():
    v = run("m1", catalog=None)
    assert v.reason is Reason.CATALOG_NOT_LOADED and not v.allowed


def test_certifications_any_accepts_either():
    """SOC 2 or ISO 27001, as LLMGateway reads it: a SOC 2 Type 2 report or ISO 27001. A Type 1
    report alone does not count (not met), and `soc2: true` without a report type is unknown."""
    cat = catalog_index(
        {
            "soc": {**FULL, "iso27001": False, "soc2_report": 3},
            "iso": {**FULL, "soc2": None},
            "type1": {**FULL, "iso27001": False, "soc2_report": 2},
            "neither": {**FULL, "soc2": False, "iso27001": None},
        },
        {"m": ["soc", "iso", "type1", "neither"]},
    )
    any_ = run(
        "m",
        org=org_with(
            enabled=True, require_soc2=True, require_iso27001=True, certifications=policy_pb2.CERTIFICATION_MATCH_ANY
        ),
        catalog=cat,
    )
    assert any_.allowed_providers == ("soc", "iso")
    assert any_.blocked == (
        ("type1", (policy_rules.Unmet("soc2_or_iso27001", policy_rules.NOT_MET),)),
        ("neither", (policy_rules.Unmet("soc2_or_iso27001", policy_rules.UNKNOWN),)),
    )
    all_ = run("m", org=org_with(enabled=True, require_soc2=True, require_iso27001=True), catalog=cat)
    assert all_.reason is Reason.NO_COMPLIANT_PROVIDER


def test_compiled_tables_are_shared_by_requirement_set():
    a = policy_rules.rules_of(policy_pb2.CompliancePolicy(**ALL_ON))
    b = policy_rules.rules_of(policy_pb2.CompliancePolicy(**ALL_ON, mode=policy_pb2.POLICY_MODE_DRY_RUN))
    assert CATALOG.table(a) is CATALOG.table(b)


# --- properties against an independent oracle ------------------------------------------

provider_ids = st.sampled_from([f"p{i}" for i in range(6)])
attrs = data_policies()
policies = policies_for([f"p{i}" for i in range(6)], ["a", "b", "c"])


@st.composite
def catalogs(draw):
    providers = draw(st.dictionaries(provider_ids, attrs, min_size=1, max_size=6))
    ids = sorted(providers)
    models = draw(
        st.dictionaries(
            st.sampled_from(["a", "b", "c"]),
            st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True),
            min_size=2,
            max_size=3,
        )
    )
    return providers, models


def _decision_matches_oracle(cat, p, model, pin) -> str:
    providers, models = cat
    index = catalog_index(providers, models)
    org = org_with(**p)
    requested = f"{pin}/{model}" if pin else model
    v = run(requested, org=org, catalog=index)
    assert run(requested, org=org, catalog=index) == v  # a remembered judgement is the same one

    if not p["enabled"]:
        assert v.reason is Reason.NO_POLICY and v.allowed
        return v.reason.value
    enforced = p["mode"] != 2
    assert v.enforced is enforced
    if pin is not None and pin not in providers:
        pin = None
        model = requested  # "p9/a" with no provider p9 is a bare model id, unknown to the catalog
    if v.reason is Reason.COMPLIANT:
        # allowed => every provider the gateway may use is compliant (the safety invariant) ...
        assert v.allowed_providers and oracle_model_allowed(model, p)
        assert all(oracle_compliant(providers[x], p, x) for x in v.allowed_providers)
        # ... and automatic routing drops no compliant candidate.
        expected = [pin] if pin else [x for x in models[model] if oracle_compliant(providers[x], p, x)]
        assert list(v.allowed_providers) == expected
    else:
        assert OUTCOMES[v.reason].http_status != 200
        assert v.allowed is (not enforced)
        if model not in models:
            assert v.reason is Reason.UNKNOWN_MODEL
        elif not oracle_model_allowed(model, p):
            assert v.reason is Reason.MODEL_NOT_ALLOWED and v.model_unmet
        elif pin in providers and pin not in models[model]:
            assert v.reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL
        elif pin in providers:
            assert v.reason is Reason.PROVIDER_NOT_COMPLIANT and not oracle_compliant(providers[pin], p, pin)
        else:
            assert v.reason is Reason.NO_COMPLIANT_PROVIDER
            assert not any(oracle_compliant(providers[x], p, x) for x in models[model])
        for provider, unmet in v.blocked:
            assert unmet and not oracle_compliant(providers[provider], p, provider)
    return v.reason.value


def test_a_custom_id_the_catalog_also_has_never_allows_the_catalog_provider():
    """An org attested 'trainer' as its own provider before the catalog gained a 'trainer'; the
    gateway routes by id, so an allow-list naming 'trainer' would reach the catalog's one."""
    from authz.policy.orgs import CustomEntry

    base = org_with(**ALL_ON)
    custom = {"trainer": CustomEntry(unmet=(), models=frozenset({"m2"}))}
    org = OrgPolicy(base.org_id, base.version, base.rules, base.enabled, base.enforced, custom=custom)
    automatic = run("m2", org=org)
    assert automatic.reason is Reason.NO_COMPLIANT_PROVIDER and "trainer" not in automatic.allowed_providers
    assert run("trainer/m2", org=org).reason is Reason.PROVIDER_NOT_COMPLIANT


# Every class the oracle comparison distinguishes, and the share of allowed decisions below
# which the safety invariant is checked too rarely to mean anything.
_DECISION_CLASSES = (
    "compliant",
    "no_policy",
    "unknown_model",
    "model_not_allowed",
    "provider_does_not_serve_model",
    "provider_not_compliant",
    "no_compliant_provider",
)


def test_property_decision_matches_oracle():
    seen: Counter = Counter()

    @settings(max_examples=600, derandomize=True, database=None)
    @given(
        cat=catalogs(),
        p=policies,
        model=st.sampled_from(["a", "a", "b", "b", "c", "zz"]),
        pin=st.sampled_from([None, None]) | provider_ids,
    )
    def prop(cat, p, model, pin):
        seen[_decision_matches_oracle(cat, p, model, pin)] += 1

    prop()
    assert_reached(seen, _DECISION_CLASSES, of="decision properties")
    assert seen["compliant"] / sum(seen.values()) >= 0.15, seen


# --- every path of decide(), with the whole Verdict --------------------------------------------


def _custom(**entries):
    from authz.policy.orgs import CustomEntry

    return {cid: CustomEntry(unmet=unmet, models=frozenset(models)) for cid, (unmet, models) in entries.items()}


def _org(custom=None, **fields) -> OrgPolicy:
    base = org_with(**fields)
    return OrgPolicy(base.org_id, base.version, base.rules, base.enabled, base.enforced, custom=custom or {})


_GDPR_UNKNOWN = (policy_rules.Unmet("gdpr", policy_rules.UNKNOWN),)
_TRAINS = (policy_rules.Unmet("no_prompt_training", policy_rules.NOT_MET),)
_ATTEST = (policy_rules.Unmet("custom_provider_attestation", policy_rules.UNKNOWN),)
_ON = dict(enabled=True, require_gdpr=True, require_no_prompt_training=True)
SLASHED = catalog_index(
    {"good": FULL, "trainer": {**FULL, "trains_on_prompts": True}}, {"org/c": ["good"], "m1": ["good", "trainer"]}
)


@pytest.mark.parametrize(
    ("request_args", "org", "expected"),
    [
        (
            dict(model="silent/m2"),
            dict(enabled=False, version=9),
            Verdict(Reason.NO_POLICY, org_id="acme", policy_version=9),
        ),
        (dict(body="not json"), dict(**_ON), Verdict(Reason.BODY_NOT_JSON, org_id="acme", policy_version=4)),
        (
            dict(body="not json", headers={"x-model": "m1"}),
            dict(**_ON),
            Verdict(Reason.BODY_NOT_JSON, org_id="acme", policy_version=4, model="m1"),
        ),
        (
            dict(model="good/m1", headers={"x-provider": "ghost"}),
            dict(**_ON),
            Verdict(
                Reason.UNKNOWN_PROVIDER,
                org_id="acme",
                policy_version=4,
                model="good/m1",
                provider="ghost",
                alternatives=("good/m1",),
            ),
        ),
        (
            dict(model="good/m1", headers={"x-provider": "trainer"}),
            dict(**_ON),
            Verdict(Reason.PROVIDER_CONFLICT, org_id="acme", policy_version=4, model="good/m1", provider="trainer"),
        ),
        (
            dict(model="good/zz"),
            dict(**_ON),
            Verdict(
                Reason.UNKNOWN_MODEL,
                org_id="acme",
                policy_version=4,
                model="good/zz",
                routing="pinned",
                provider="good",
                alternatives=("good/m1", "good/m3"),
            ),
        ),
        (
            dict(model="zz"),
            dict(**_ON),
            Verdict(
                Reason.UNKNOWN_MODEL,
                org_id="acme",
                policy_version=4,
                model="zz",
                routing="automatic",
                alternatives=("good/m1", "good/m3"),
            ),
        ),
        (
            dict(model="good/m1"),
            dict(**_ON, model_denylist=["m1"]),
            Verdict(
                Reason.MODEL_NOT_ALLOWED,
                org_id="acme",
                policy_version=4,
                model="good/m1",
                routing="pinned",
                provider="good",
                model_unmet=(policy_rules.Unmet("model_denylist", policy_rules.NOT_MET),),
                alternatives=("good/m3",),
            ),
        ),
        (
            dict(model="good/m2"),
            dict(**_ON),
            Verdict(
                Reason.PROVIDER_DOES_NOT_SERVE_MODEL,
                org_id="acme",
                policy_version=4,
                model="good/m2",
                routing="pinned",
                provider="good",
                alternatives=("good/m1", "good/m3"),
            ),
        ),
        (
            dict(model="trainer/m1"),
            dict(**_ON, mode=policy_pb2.POLICY_MODE_DRY_RUN),
            Verdict(
                Reason.PROVIDER_NOT_COMPLIANT,
                org_id="acme",
                enforced=False,
                policy_version=4,
                model="trainer/m1",
                routing="pinned",
                provider="trainer",
                blocked=(("trainer", _TRAINS),),
                alternatives=("good/m1",),
            ),
        ),
        (
            dict(model="m1", headers={"x-provider": "good"}),
            dict(**_ON),
            Verdict(
                Reason.COMPLIANT,
                org_id="acme",
                policy_version=4,
                model="m1",
                routing="pinned",
                provider="good",
                allowed_providers=("good",),
            ),
        ),
        (
            dict(model="m2"),
            dict(**_ON),
            Verdict(
                Reason.NO_COMPLIANT_PROVIDER,
                org_id="acme",
                policy_version=4,
                model="m2",
                routing="automatic",
                blocked=(
                    ("trainer", _TRAINS),
                    ("vague", _GDPR_UNKNOWN),
                    (
                        "silent",
                        (
                            policy_rules.Unmet("gdpr", policy_rules.UNKNOWN),
                            policy_rules.Unmet("no_prompt_training", policy_rules.UNKNOWN),
                        ),
                    ),
                ),
                alternatives=("good/m1", "good/m3"),
            ),
        ),
    ],
)
def test_every_path_of_decide(request_args, org, expected):
    fields = dict(org)  # the parameter is shared by every run of this case: never change it
    version = fields.pop("version", 4)
    v = run(org=_with_version(org_with(**fields), version), **request_args)
    assert v == expected


def _with_version(org: OrgPolicy, version: int) -> OrgPolicy:
    return OrgPolicy(org.org_id, version, org.rules, org.enabled, org.enforced)


def test_a_pinned_model_id_may_contain_a_slash():
    v = run("good/org/c", org=org_with(**_ON), catalog=SLASHED)
    assert (v.reason, v.provider, v.routing, v.allowed_providers) == (Reason.COMPLIANT, "good", "pinned", ("good",))


def test_no_catalog_loaded():
    v = run("m1", org=org_with(**_ON), catalog=None)
    assert v == Verdict(Reason.CATALOG_NOT_LOADED, org_id="acme", model="m1")


def test_custom_providers_in_pinned_and_automatic_routing():
    custom = _custom(mine=((), ["m2", "own"]), unattested=(_ATTEST, ["m2"]))
    org = _org(custom, **_ON)
    assert run("mine/own", org=org) == Verdict(
        Reason.COMPLIANT,
        org_id="acme",
        policy_version=4,
        model="mine/own",
        routing="pinned",
        provider="mine",
        allowed_providers=("mine",),
    )
    assert run("mine/m1", org=org) == Verdict(
        Reason.PROVIDER_DOES_NOT_SERVE_MODEL,
        org_id="acme",
        policy_version=4,
        model="mine/m1",
        routing="pinned",
        provider="mine",
        alternatives=("good/m1",),
    )
    assert run("unattested/m2", org=org).blocked == (("unattested", _ATTEST),)
    automatic = run("m2", org=org)
    assert automatic.reason is Reason.COMPLIANT and automatic.allowed_providers == ("mine",)
    assert ("unattested", _ATTEST) in automatic.blocked and ("trainer", _TRAINS) in automatic.blocked
    only_custom = run("own", org=org)
    assert (only_custom.reason, only_custom.allowed_providers, only_custom.blocked) == (Reason.COMPLIANT, ("mine",), ())
    assert run("own", org=_org(_custom(mine=(_ATTEST, ["own"])), **_ON)).blocked == (("mine", _ATTEST),)


def test_alternatives_include_the_orgs_own_compliant_providers_of_the_same_model():
    # A model only the org's own providers serve: the attested one is the way to succeed, not
    # some unrelated catalog model.
    org = _org(_custom(mine=((), ["own"]), unattested=(_ATTEST, ["own"])), **_ON)
    assert run("unattested/own", org=org).alternatives == ("mine/own",)
    # The catalog's compliant providers come first, then the org's own.
    both = _org(_custom(mine=((), ["m1"]), unattested=(_ATTEST, ["m1"])), **_ON)
    assert run("trainer/m1", org=both).alternatives == ("good/m1", "mine/m1")
    # A model the policy denies has no same-model alternative, custom or not.
    denied = _org(_custom(mine=((), ["own"]), unattested=(_ATTEST, ["own"])), **_ON, model_denylist=["own"])
    assert "mine/own" not in run("unattested/own", org=denied).alternatives


def test_custom_providers_add_to_compliant_catalog_providers():
    org = _org(_custom(mine=((), ["m3", "own"])), **_ON)
    assert run("m3", org=org).allowed_providers == ("good", "good2", "mine")
    # A catalog provider pinned to a model only a custom provider serves: it does not serve it.
    assert run("good/own", org=org).reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL


# --- strict routing and alternatives -----------------------------------------------------------


def test_strict_routing_refuses_an_automatic_request_with_any_non_compliant_candidate():
    strict = Gateway(routing=STRICT)
    v = run("m1", gateway=strict)
    assert (v.reason, v.allowed, v.restricts_routing) == (Reason.ROUTING_NOT_ENFORCEABLE, False, False)
    assert v.alternatives == ("good/m1",) and [p for p, _ in v.blocked] == ["trainer", "vague"]
    assert OUTCOMES[v.reason].http_status == 403 and OUTCOMES[v.reason].policy_block
    # Every candidate compliant, or the client pinned a compliant provider: allowed as in header mode.
    assert run("m3", gateway=strict).allowed_providers == ("good", "good2")
    assert run("good/m1", gateway=strict).reason is Reason.COMPLIANT
    assert run("m1", headers={"x-provider": "good"}, gateway=strict).reason is Reason.COMPLIANT
    # Header mode narrows instead.
    assert run("m1").allowed_providers == ("good",)


def test_strict_routing_in_dry_run_is_allowed_and_recorded_as_the_would_be_block():
    v = run("m1", org=org_with(**ALL_ON, mode=policy_pb2.POLICY_MODE_DRY_RUN), gateway=Gateway(routing=STRICT))
    assert v.reason is Reason.ROUTING_NOT_ENFORCEABLE and v.allowed and not v.enforced and not v.restricts_routing


def test_alternatives_name_the_same_model_from_compliant_providers_else_compliant_models():
    assert run("trainer/m3").reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL
    assert run("trainer/m1").alternatives == ("good/m1",)
    assert run("m2").alternatives == ("good/m1", "good/m3")
    assert run("nope").alternatives == ("good/m1", "good/m3")
    nothing = run("m2", org=org_with(**ALL_ON, provider_denylist=["good", "good2"]))
    assert nothing.reason is Reason.NO_COMPLIANT_PROVIDER and nothing.alternatives == ()


# --- a client's own requirements (x-compliance-require) ----------------------------------------


def test_a_client_may_add_requirements_never_remove_them():
    gdpr_only = org_with(enabled=True, require_gdpr=True)
    assert run("good/m1", org=gdpr_only).reason is Reason.COMPLIANT
    assert run("trainer/m1", org=gdpr_only).reason is Reason.COMPLIANT  # the org does not require it
    v = run("trainer/m1", org=gdpr_only, headers={"x-compliance-require": "no_prompt_training"})
    assert (v.reason, v.client_requirements) == (Reason.PROVIDER_NOT_COMPLIANT, ("no_prompt_training",))
    assert v.failed_requirements == ["no_prompt_training"]
    # Automatic routing narrows to what meets both.
    assert run("m1", org=gdpr_only, headers={"x-compliance-require": "no_prompt_training"}).allowed_providers == (
        "good",
    )
    # Asking for less than the org changes nothing: vague's unknown GDPR still blocks it.
    assert (
        run("vague/m1", org=gdpr_only, headers={"x-compliance-require": "no_prompt_logging"}).reason
        is Reason.PROVIDER_NOT_COMPLIANT
    )


def test_client_requirements_hold_without_an_org_policy_and_unknown_names_are_named():
    v = run("trainer/m1", org=org_with(), headers={"x-compliance-require": "gdpr, no_prompt_training"})
    assert v.reason is Reason.PROVIDER_NOT_COMPLIANT and v.enforced
    bad = run("good/m1", headers={"x-compliance-require": "gdpr,zero_retention"})
    assert (bad.reason, bad.detail) == (Reason.UNKNOWN_REQUIREMENT, "zero_retention")
    assert OUTCOMES[bad.reason].http_status == 400
    assert run("good/m1", headers={"x-compliance-require": ""}).reason is Reason.UNKNOWN_REQUIREMENT


# --- remembered judgements ------------------------------------------------------------------


def test_a_judgement_is_remembered_for_the_same_org_and_catalog():
    org = org_with(**ALL_ON)
    first = run("good/m1", org=org)
    assert run("good/m1", org=org) is first
    assert run("good/m1", org=org, headers={"x-provider": "trainer"}) is not first  # another input


def test_a_changed_policy_or_catalog_is_judged_anew():
    # A remembered allow must never outlive the policy or the catalog it was made with.
    org = org_with(**ALL_ON)
    assert run("good/m1", org=org).reason is Reason.COMPLIANT
    stricter = org_with(**{**ALL_ON, "provider_denylist": ["good"]})
    assert run("good/m1", org=stricter).reason is not Reason.COMPLIANT
    lapsed = catalog_index({"good": {**FULL, "soc2": None, "iso27001": None}}, {"m1": ["good"]})
    assert run("good/m1", org=org, catalog=lapsed).reason is Reason.PROVIDER_NOT_COMPLIANT
    assert run("good/m1", org=org).reason is Reason.COMPLIANT


def test_client_requirements_are_never_remembered():
    org = org_with(**ALL_ON)
    plain = run("good/m1", org=org)
    asked = run("good/m1", org=org, headers={"x-compliance-require": "zero_data_retention"})
    assert asked.client_requirements == ("zero_data_retention",) and asked.reason is not Reason.COMPLIANT
    assert run("good/m1", org=org) is plain


def test_remembered_judgements_are_bounded_and_belong_to_their_catalog(monkeypatch):
    from authz.check import decision

    monkeypatch.setattr(decision, "_JUDGED_MAX", 8)
    org = org_with(**ALL_ON)
    catalog = catalog_index({"good": FULL}, {"m1": ["good"]})
    for i in range(50):
        run(f"made-up-{i}", org=org, catalog=catalog)
        assert len(catalog.judgements) <= 8
    long_name = "m" * 300  # a long name is judged, never kept
    assert run(long_name, org=org, catalog=catalog).reason is Reason.UNKNOWN_MODEL
    assert all(len(model) < 300 for _, model, _, _, _ in catalog.judgements)
    # A new catalog starts with none: the old catalog's judgements go with it.
    fresh = catalog_index({"good": FULL}, {"m1": ["good"]})
    assert fresh.judgements == {}


def _with_deactivations(index, ended: dict[tuple[str, str], str]):
    """The index with (model, provider) -> ISO date-time deactivations, as CatalogIndex.build reads them."""
    import dataclasses as dc

    from authz.policy.catalog import deactivation_epoch

    found = {key: (deactivation_epoch(at) or 0.0, at) for key, at in ended.items()}
    return dc.replace(index, deactivations=found, deactivation_times=tuple(sorted(v[0] for v in found.values())))


# m1's mapping at "good" ended in the past (still listed: a deactivation after the catalog was
# built); m3's at "good2" ends in 2099.
DEACTIVATED = _with_deactivations(
    CATALOG, {("m1", "good"): "2026-01-01T00:00:00Z", ("m3", "good2"): "2099-01-01T00:00:00Z"}
)
LLMGATEWAY = Gateway(routing=STRICT, naming="llmgateway")


def test_llmgateway_moves_a_pin_to_a_deactivated_mapping_so_it_is_judged_unpinned():
    from authz.check.response import message

    v = run("good/m1", catalog=DEACTIVATED, gateway=LLMGATEWAY)
    # m1's other providers fail: a strict gateway may pick either, so the pin to good does not save it.
    assert (v.reason, v.routing, v.provider) == (Reason.ROUTING_NOT_ENFORCEABLE, AUTOMATIC, "")
    assert v.deactivated == "good 2026-01-01T00:00:00Z"
    text = message(v)
    assert "The pin to 'good' does not hold" in text and "deactivated at 2026-01-01T00:00:00Z" in text
    # The same pin, before the mapping ends, is a pin.
    later = run("good2/m3", catalog=DEACTIVATED, gateway=LLMGATEWAY)
    assert (later.reason, later.routing, later.deactivated) == (Reason.COMPLIANT, PINNED, "")


def test_a_dropped_pin_whose_every_other_provider_complies_passes_as_unpinned():
    cat = _with_deactivations(CATALOG, {("m3", "good"): "2026-01-01T00:00:00Z"})
    v = run("good/m3", catalog=cat, gateway=LLMGATEWAY)
    assert (v.reason, v.routing, v.allowed_providers) == (Reason.COMPLIANT, AUTOMATIC, ("good", "good2"))


def test_other_gateways_keep_the_pin_they_were_sent():
    # A gateway that does not read LLMGateway's deactivations calls the provider it is pinned to.
    v = run("good/m1", catalog=DEACTIVATED, gateway=Gateway(routing=STRICT))
    assert (v.reason, v.routing, v.provider, v.deactivated) == (Reason.COMPLIANT, PINNED, "good", "")


def test_a_pin_to_a_mapping_no_longer_listed_says_when_it_ended():
    from authz.check.response import message

    cat = _with_deactivations(
        catalog_index({"good": FULL, "gone": FULL}, {"m": ["good"]}), {("m", "gone"): "2025-07-15T00:00:00Z"}
    )
    v = run("gone/m", catalog=cat, gateway=Gateway(routing=STRICT))
    assert v.reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL and v.deactivated == "gone 2025-07-15T00:00:00Z"
    assert "Its mapping of this model was deactivated at 2025-07-15T00:00:00Z." in message(v)


def test_a_remembered_judgement_lasts_only_until_the_next_deactivation(monkeypatch):
    from authz.check import decision

    org = org_with(**ALL_ON)
    assert run("good2/m3", org=org, catalog=DEACTIVATED, gateway=LLMGATEWAY).routing == PINNED
    monkeypatch.setattr(decision, "clock", lambda: 4102444800.0 + 1)  # just past 2100-01-01
    after = run("good2/m3", org=org, catalog=DEACTIVATED, gateway=LLMGATEWAY)
    assert (after.routing, after.deactivated) == (AUTOMATIC, "good2 2099-01-01T00:00:00Z")


SHIPPED_INDEX = None


def _shipped():
    global SHIPPED_INDEX
    if SHIPPED_INDEX is None:
        from pathlib import Path

        from authz.policy import catalog as catalog_mod

        text = (Path(__file__).resolve().parents[2] / "catalog" / "catalog.json").read_text()
        SHIPPED_INDEX = catalog_mod.CatalogIndex.build(catalog_mod.parse(text))
    return SHIPPED_INDEX


def test_a_model_whose_every_mapping_is_deactivated_is_said_to_be_retired():
    from authz.check import response

    v = run("claude-3-7-sonnet", catalog=_shipped(), gateway=Gateway(routing=STRICT))
    assert v.reason is Reason.UNKNOWN_MODEL and v.deactivated.startswith("* 2026-07-07")
    text = response.message(v)
    assert "was retired" in text and "2026-07-07" in text and "not in the provider catalog" not in text
    assert v.alternatives  # what to send instead
    assert "not in the provider catalog" in response.message(run("no-such-model", catalog=_shipped()))


def test_a_pin_to_a_provider_the_org_denies_names_the_deny_list_whatever_it_serves():
    org = org_with(enabled=True, provider_denylist=["deepseek"])
    v = run("deepseek/deepseek-v3.2", org=org, catalog=_shipped(), gateway=Gateway(routing=STRICT))
    assert v.reason is Reason.PROVIDER_NOT_COMPLIANT
    assert [u.requirement for _, unmet in v.blocked for u in unmet] == ["provider_denylist"]


def test_residency_on_a_catalog_of_few_regions_is_explained_before_saving():
    """EU residency on the shipped catalog leaves most models without a provider (LLMGateway's
    package publishes processing regions for few providers): preview and set say so, and what
    to do."""
    from authz.admin.service import advice
    from authz.v1 import policy_pb2

    eu = policy_rules.rules_of(policy_pb2.CompliancePolicy(enabled=True, data_residency=["eu"]))
    [said] = advice(_shipped(), eu)
    assert "models without a provider" in said and "authz catalog import --from litellm" in said
    assert advice(_shipped(), policy_rules.rules_of(policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True))) == []
