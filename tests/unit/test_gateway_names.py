"""A catalog imported from LiteLLM's config: only the names LiteLLM routes are judged, a deny
names the fallback that reaches a failing provider, suggestions fit the endpoint, and each
name's preview verdict is the Check's own."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz.check import response
from authz.check.decision import STRICT, Gateway, decide
from authz.check.request import ReadConfig, read
from authz.policy import catalog as catalog_mod
from authz.policy import gateway_names
from authz.policy import rules as policy_rules
from authz.policy.imports.litellm_config import import_config
from authz.policy.orgs import OrgPolicy
from authz.reasons import Reason
from authz.v1 import policy_pb2
from support.checkrequests import check_request
from support.litellm import EU_POLICY, SHIPPED_CATALOG, SOC2_GDPR_NO_DEEPSEEK, eu_config

LITELLM = Gateway(routing=STRICT, naming="litellm")
NAMES = ReadConfig(model="x-model", provider="")
SHIPPED = catalog_mod.parse(SHIPPED_CATALOG.read_text())
IMPORTED = catalog_mod.CatalogIndex.build(import_config(eu_config("http://127.0.0.1:1"), SHIPPED).catalog)


def org(fields) -> OrgPolicy:
    p = policy_pb2.CompliancePolicy(**fields)
    return OrgPolicy("acme", 1, policy_rules.rules_of(p), p.enabled)


def judge(model, fields=SOC2_GDPR_NO_DEEPSEEK, path="/v1/chat/completions", catalog=IMPORTED, gateway=LITELLM):
    return decide(read(check_request({"model": model}, path=path), NAMES), org(fields), catalog, gateway)


@pytest.mark.parametrize(
    "name",
    [
        # The newcomer's four wrongful allows: catalog ids, which LiteLLM routes to default_fallbacks.
        "azure-swedencentral/gpt-4o",
        "aws-bedrock-eu-central-1/claude-sonnet",
        "google-vertex-europe-west4/gemini-pro",
        "azure-westeurope/text-embedding-3-large",
        # A deployment's litellm_params.model: LiteLLM's router serves it from any deployment of
        # that model (_get_deployment_by_litellm_model), under no one group's fallbacks.
        "azure/gpt-4o",
        "gpt-4o",  # a model the catalog knows, but no group of this config
    ],
)
def test_a_name_litellm_does_not_route_is_refused_naming_its_groups(name):
    v = judge(name, EU_POLICY)
    assert v.reason is Reason.UNKNOWN_MODEL and not v.allowed
    text = response.message(v)
    assert "not a model name the litellm gateway routes" in text and "default fallbacks" in text


def test_a_deny_names_the_fallback_that_reaches_a_failing_provider():
    v = judge("gpt-4o-eu", EU_POLICY)
    assert v.reason is Reason.ROUTING_NOT_ENFORCEABLE
    assert dict(v.via) == {"openai": "router_settings.default_fallbacks -> gpt-4o-mini"}
    text = response.message(v)
    assert "'openai' (reached through router_settings.default_fallbacks -> gpt-4o-mini)" in text
    body = response.deny_body(v, "d", "r")
    assert '"reached_through":"router_settings.default_fallbacks -> gpt-4o-mini"' in body


def test_a_wildcard_routes_fallback_chain_is_judged():
    v = judge("anthropic/claude-sonnet-4-5")
    assert v.reason is Reason.ROUTING_NOT_ENFORCEABLE
    assert "deepseek" in {p for p, _ in v.blocked}
    assert dict(v.via)["deepseek"] == (
        "router_settings.fallbacks -> gpt-4o-fb, then router_settings.fallbacks -> deepseek-chat"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/v1/chat/completions", ["gpt-4o-eu", "gpt-4o-mini"]), ("/v1/embeddings", ["embed-eu"])],
)
def test_suggested_groups_serve_the_endpoint_asked_for(path, expected):
    v = judge("deepseek-chat", path=path)
    assert v.reason is Reason.ROUTING_NOT_ENFORCEABLE
    assert list(v.alternatives) == expected
    assert all(judge(name, path=path).allowed for name in v.alternatives)


def test_the_shipped_catalog_suggests_no_embedding_model_for_chat():
    shipped = catalog_mod.CatalogIndex.build(SHIPPED)
    native = Gateway(routing=STRICT)
    strict = {"enabled": True, "require_zero_data_retention": True, "require_soc2_type2": True}
    chat = judge("qwen3-max", strict, catalog=shipped, gateway=native)
    embeddings = judge("qwen3-max", strict, path="/v1/embeddings", catalog=shipped, gateway=native)
    assert chat.alternatives and embeddings.alternatives
    assert not any(shipped.produces(a.partition("/")[2], "embedding") for a in chat.alternatives)
    assert all(shipped.produces(a.partition("/")[2], "embedding") for a in embeddings.alternatives)


POLICY_FIELDS = st.fixed_dictionaries(
    {"enabled": st.just(True)},
    optional={
        "require_soc2": st.booleans(),
        "require_gdpr": st.booleans(),
        "require_no_prompt_training": st.booleans(),
        "data_residency": st.sampled_from([["eu"], ["us"], ["eu", "us"]]),
        "provider_denylist": st.sampled_from([["deepseek"], ["openai"], ["azure"]]),
        "model_denylist": st.sampled_from([["gpt-4o-mini"], ["embed-eu"]]),
    },
)


@settings(max_examples=60, deadline=None)
@given(POLICY_FIELDS)
def test_each_names_preview_verdict_is_the_checks_own(fields):
    """gateway_names (preview, catalog diff, check-routing) against decide, for every group and
    for a name each wildcard route matches."""
    rules = org(fields).rules
    for found in gateway_names.judge(IMPORTED, rules):
        name = found.name.replace("*", "claude-sonnet-4-5") if found.wildcard else found.name
        checked = judge(name, fields)
        assert checked.reason.value == found.reason, (found, checked)
        assert {p for p, _ in checked.blocked} == {c.provider for c in found.blocked}
        assert dict(checked.via) == {c.provider: c.via for c in found.blocked if c.via}


def test_a_catalog_not_imported_from_a_gateway_has_no_gateway_names():
    assert gateway_names.judge(catalog_mod.CatalogIndex.build(SHIPPED), org(EU_POLICY).rules) == []


def test_under_the_eu_policy_default_fallbacks_block_every_group():
    lines = [v.describe() for v in gateway_names.judge(IMPORTED, org(EU_POLICY).rules)]
    assert all(line.startswith("BLOCK") for line in lines), lines
    assert any("openai (data_residency) reached through router_settings.default_fallbacks" in x for x in lines)


def test_check_routing_lines_say_what_fails_and_through_which_fallback():
    """The lines `authz catalog check-routing` prints, whole: a group its own deployments fail, one
    a fallback fails, a wildcard route (named as a route), and one a model list refuses."""
    rules = org({**EU_POLICY, "model_denylist": ["gpt-4o-eu"]}).rules
    lines = {v.name: v.describe() for v in gateway_names.judge(IMPORTED, rules)}
    assert lines["gpt-4o-eu"] == "BLOCK  gpt-4o-eu: model_denylist"
    assert lines["gpt-4o-mini"] == "BLOCK  gpt-4o-mini [no_compliant_provider]: openai (data_residency)"
    assert lines["embed-eu"] == (
        "BLOCK  embed-eu [routing_not_enforceable]: openai (data_residency)"
        " reached through router_settings.default_fallbacks -> gpt-4o-mini"
    )
    assert lines["anthropic/*"].startswith(
        "BLOCK  route anthropic/* [routing_not_enforceable]: anthropic (data_residency); openai (data_residency)"
        " reached through router_settings.default_fallbacks -> gpt-4o-mini; deepseek (provider_denylist, soc2,"
        " gdpr, data_residency) reached through router_settings.fallbacks -> gpt-4o-fb, then"
    )
    verdicts = {v.name: v for v in gateway_names.judge(IMPORTED, rules)}
    assert verdicts["anthropic/*"].wildcard is True and verdicts["gpt-4o-eu"].wildcard is False
    assert verdicts["gpt-4o-mini"] == gateway_names.NameVerdict(
        "gpt-4o-mini", False, "no_compliant_provider", (gateway_names.Candidate("openai", ("data_residency",), ""),)
    )
    assert gateway_names.NameVerdict("g", False, "compliant", ()).describe() == "ALLOW  g"
    two = gateway_names.NameVerdict("g", False, "model_not_allowed", (), ("model_allowlist", "model_denylist"))
    assert two.describe() == "BLOCK  g: model_allowlist, model_denylist"


def test_a_wildcard_route_is_no_name_the_model_lists_can_refuse():
    """A route's pattern is no model name: the lists judge the names a request sends through it."""
    rules = org({**EU_POLICY, "model_allowlist": ["gpt-4o-eu"]}).rules
    verdicts = {v.name: v for v in gateway_names.judge(IMPORTED, rules)}
    assert verdicts["anthropic/*"].reason == "routing_not_enforceable" and not verdicts["anthropic/*"].model_unmet
    assert verdicts["gpt-4o-mini"].reason == "model_not_allowed"
    assert verdicts["gpt-4o-mini"].model_unmet == ("model_allowlist",)
