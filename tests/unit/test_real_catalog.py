"""The shipped catalog (catalog/catalog.json): built by `authz catalog build --from llmgateway`
from the pinned @llmgateway/models (tests/integration/test_catalog_build.py holds the file to the
build), every value sourced, unpublished facts unknown, decisions as expected on real data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authz.policy import rules as policy_rules
from authz.policy.catalog import parse
from authz.policy.requirements import NOT_MET, UNKNOWN
from authz.v1 import catalog_pb2, policy_pb2
from support.policies import DEMO_POLICY

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog" / "catalog.json"
VERSION = r"@llmgateway/models@\d+\.\d+\.\d+"
FIELD = re.compile(VERSION + r" providers\[[\w.-]+\]\.[\w.\[\]-]+")  # a field of the package's provider data
FUNCTION = re.compile(VERSION + r" isStealthProvider\([\w.-]+\)")  # the package's own function's answer
REGION = re.compile(VERSION + r" providers\[[\w.-]+\]\.regionConfig\.endpointMap\[[\w-]+\] ")


@pytest.fixture(scope="module")
def cat() -> catalog_pb2.Catalog:
    return parse(CATALOG.read_text())


def test_what_the_package_publishes_is_all_there(cat):
    own = {pid: p for pid, p in cat.providers.items() if not p.region_of}
    described = [p for p in own.values() if any(".dataPolicy." in e.source for e in p.data_policy.evidence.values())]
    assert len(described) >= 46  # a dataPolicy published
    assert sum(1 for p in own.values() if p.legal_entity) >= 49
    assert len(cat.models) >= 390
    assert "custom" not in cat.providers and "auto" not in cat.models  # LLMGateway's routing placeholders
    ended = [(m, d.provider) for m, s in cat.models.items() for d in s.deactivated]
    assert len(ended) > 250 and all(p not in cat.models[m].providers or True for m, p in ended)
    assert cat.published_at and "@llmgateway/models@" in cat.description


def test_every_published_value_names_the_package_version_field_and_day(cat):
    fields = [f.name for f in catalog_pb2.DataPolicy.DESCRIPTOR.fields if f.name != "evidence"]
    for pid, provider in cat.providers.items():
        dp = provider.data_policy
        for name in fields:
            field = catalog_pb2.DataPolicy.DESCRIPTOR.fields_by_name[name]
            present = dp.HasField(name) if field.has_presence else bool(getattr(dp, name))
            if present:
                evidence = dp.evidence[name]
                assert FIELD.match(evidence.source) or FUNCTION.match(evidence.source), (pid, name, evidence.source)
                assert evidence.checked_at == cat.published_at, (pid, name)
        if provider.legal_entity:
            assert dp.evidence["legal_entity"].source.endswith(f"providers[{provider.region_of or pid}].legalEntity")
    for model, serving in cat.models.items():
        assert re.fullmatch(VERSION + rf" models\[{re.escape(model)}\]\.providers", serving.source), model


def test_facts_as_published(cat):
    dp = {pid: p.data_policy for pid, p in cat.providers.items()}
    assert dp["deepseek"].trains_on_prompts is True and dp["deepseek"].headquarters_country == "CN"
    assert not dp["deepseek"].HasField("soc2") and not dp["deepseek"].HasField("gdpr")
    assert dp["openai"].logs_prompts is True and dp["openai"].soc2_report == catalog_pb2.SOC2_REPORT_TYPE2
    assert not dp["openai"].HasField("prompt_retention_days")  # retentionPeriod: null
    assert cat.providers["openai"].legal_entity == "OpenAI OpCo, LLC"
    assert dp["canopywave"].iso27001 is False and dp["canopywave"].gdpr is False
    assert dp["bytedance"].prompt_retention_days == 1  # "24 hours", rounded up to whole days
    assert not dp["atlascloud"].HasField("prompt_retention_days")  # prose, not a number of days
    assert dp["nebius"].headquarters_country == "NL" and dp["runware"].headquarters_country == "GB"
    for stealth in ("glacier", "iceberg", "granite", "quartz"):
        assert dp[stealth].stealth is True and not dp[stealth].HasField("soc2")
    # Stealth as LLMGateway's isStealthProvider answers it: atlascloud (no headquarters
    # published, but a named operator) is not one.
    assert dp["openai"].stealth is False and dp["atlascloud"].stealth is False
    assert cat.providers["openai"].privacy_policy_url.startswith("https://openai.com/")


def test_deactivated_mappings_are_no_candidates_and_are_listed_with_their_date(cat):
    serving = cat.models["deepseek-v3.2"]
    ended = {d.provider: d.at for d in serving.deactivated}
    assert ended["vertex-openai"].startswith("2026-10-21") and "vertex-openai" not in serving.providers
    assert set(serving.providers) == {"novita", "bytedance", "deepinfra"}
    gone = cat.models["claude-sonnet-4-20250514"]  # every mapping ended: still known, no candidate
    assert not gone.providers and {d.provider for d in gone.deactivated} == {"anthropic", "aws-bedrock"}
    for model, s in cat.models.items():  # one dated on or before the catalog's day is never a candidate
        for d in s.deactivated:
            assert (d.at[:10] > cat.published_at) == (d.provider in s.providers), (model, d.provider)


def test_processing_regions_only_where_an_endpoint_says_so(cat):
    dp = {pid: p.data_policy for pid, p in cat.providers.items()}
    for pid in ("openai", "aws-bedrock", "alibaba", "google-vertex", "azure", "vertex-openai"):
        assert not dp[pid].processing_regions, pid  # headquarters never count as a processing region
    assert list(dp["aws-bedrock-eu"].processing_regions) == ["eu"]
    assert list(dp["aws-bedrock-eu-central-1"].processing_regions) == ["eu"]
    assert list(dp["aws-bedrock-eu-west-2"].processing_regions) == ["uk"]  # London is not in the EU
    assert list(dp["aws-bedrock-apac"].processing_regions) == ["apac"]  # a cross-region profile: its area
    assert list(dp["alibaba-us-virginia"].processing_regions) == ["us"]
    assert list(dp["alibaba-eu-frankfurt"].processing_regions) == ["eu"]
    assert list(dp["alibaba-singapore"].processing_regions) == ["sg"]
    assert dp["aws-bedrock-eu"].soc2 and dp["aws-bedrock-eu"].headquarters_country == "US"
    assert REGION.match(dp["aws-bedrock-eu"].evidence["processing_regions"].source)
    assert "alibaba-singapore" in cat.models["qwen-plus"].providers
    regions = {pid: p.region_of for pid, p in cat.providers.items() if p.region_of}
    assert regions["alibaba-singapore"] == "alibaba" and regions["aws-bedrock-eu-west-2"] == "aws-bedrock"
    assert set(regions.values()) == {"alibaba", "aws-bedrock", "aws-mantle"}
    assert not any(pid.endswith("-global") for pid in regions)  # "global" may be anywhere: the provider itself


def test_a_provider_list_covers_its_region_entries(cat):
    """As in LLMGateway, where a regional mapping keeps its provider id: deny alibaba and
    qwen-plus has no provider left; allow alibaba and its regions stay allowed."""
    denied = verdict(cat, "qwen-plus", provider_denylist=["alibaba"])
    assert all(failures and failures[0].requirement == "provider_denylist" for failures in denied.values())
    allowed = verdict(cat, "qwen-plus", provider_allowlist=["alibaba"])
    assert all(not failures for p, failures in allowed.items() if p.startswith("alibaba")), allowed
    one_region = verdict(cat, "qwen-plus", provider_denylist=["alibaba-singapore"])
    assert one_region["alibaba-singapore"] and not one_region["alibaba"]


def verdict(cat, model: str, **fields) -> dict[str, policy_rules.Failures]:
    rules = policy_rules.rules_of(policy_pb2.CompliancePolicy(enabled=True, **fields))
    return {
        p: policy_rules.unmet(p, cat.providers[p].data_policy, rules, cat.providers[p].region_of)
        for p in cat.models[model].providers
    }


def test_demo_policy_on_real_data(cat):
    got = verdict(cat, "deepseek-v3.2", **{k: v for k, v in DEMO_POLICY.items() if k != "enabled"})
    assert sorted(p for p, f in got.items() if not f) == ["deepinfra"]  # vertex-openai's mapping is deactivated
    assert ("gdpr", UNKNOWN) in got["novita"] and ("soc2_or_iso27001", UNKNOWN) in got["novita"]


def test_residency_on_real_data(cat):
    got = verdict(cat, "qwen-plus", data_residency=["us"])
    assert got["alibaba-us-virginia"] == ()
    assert got["alibaba"] == (("data_residency", UNKNOWN),)
    assert got["alibaba-cn-beijing"] == (("data_residency", NOT_MET),)


def test_stealth_on_real_data(cat):
    got = verdict(cat, "gemini-3-pro-image", block_stealth_providers=True)
    assert got["glacier"] == (("no_stealth_provider", NOT_MET),)
    assert got["google-vertex"] == ()
    assert policy_rules.unmet(
        "quartz",
        cat.providers["quartz"].data_policy,
        policy_rules.rules_of(policy_pb2.CompliancePolicy(enabled=True, block_stealth_providers=True)),
    ) == (("no_stealth_provider", NOT_MET),)  # LLMGateway's isStealthProvider says it is one


def test_the_preview_shows_what_a_provider_list_entry_covers(cat):
    from authz.admin.service import preview
    from authz.policy.catalog import CatalogIndex

    index = CatalogIndex.build(cat)
    result = preview(index, policy_pb2.CompliancePolicy(enabled=True, provider_denylist=["alibaba", "deepseek"]))
    covers = {c.entry: list(c.covers) for c in result.list_coverage}
    regions = ["alibaba-cn-beijing", "alibaba-eu-frankfurt", "alibaba-singapore", "alibaba-us-virginia"]
    assert covers["alibaba"] == ["alibaba", *regions]
    assert covers["deepseek"] == ["deepseek"]
    by_id = {p.provider: p for p in result.providers}
    assert by_id["alibaba-singapore"].region_of == "alibaba" and not by_id["alibaba-singapore"].allowed
    assert [u.requirement for u in by_id["alibaba-singapore"].unmet] == ["provider_denylist"]
    assert "qwen-plus" in result.models_without_compliant_provider
