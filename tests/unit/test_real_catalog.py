"""The shipped catalog (catalog/catalog.json): built from LLMGateway's published facts by
catalog/build_catalog.py, every value sourced, unpublished facts unknown, decisions as expected."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from authz.policy import rules as policy
from authz.policy.catalog import parse
from authz.policy.requirements import NOT_MET, UNKNOWN
from authz.v1 import catalog_pb2, policy_pb2
from support.policies import DEMO_POLICY

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog" / "catalog.json"
COMMIT = re.compile(r"theopenco/llmgateway packages/models/src/[\w/.-]+\.ts@[0-9a-f]{40}")
PACKAGE = re.compile(r"@llmgateway/models@\d+\.\d+\.\d+ \w+")  # a fact from the published package's functions


def builder():
    spec = importlib.util.spec_from_file_location("build_catalog", ROOT / "catalog" / "build_catalog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cat() -> catalog_pb2.Catalog:
    return parse(CATALOG.read_text())


def test_committed_catalog_is_what_the_builder_makes():
    assert json.loads(CATALOG.read_text()) == builder().build(), (
        "run: python catalog/build_catalog.py > catalog/catalog.json"
    )


def test_every_provider_llmgateway_describes_is_in_it_with_at_least_150_models(cat):
    described = set(builder().PROVIDERS)
    assert len(described) >= 45
    assert described <= set(cat.providers)
    assert len(cat.models) >= 150
    assert cat.published_at and "LLMGateway" in cat.description


def test_every_published_value_names_its_file_commit_and_check_date(cat):
    fields = [f.name for f in catalog_pb2.DataPolicy.DESCRIPTOR.fields if f.name != "evidence"]
    for pid, provider in cat.providers.items():
        dp = provider.data_policy
        for name in fields:
            field = catalog_pb2.DataPolicy.DESCRIPTOR.fields_by_name[name]
            present = dp.HasField(name) if field.has_presence else bool(getattr(dp, name))
            if present:
                evidence = dp.evidence[name]
                assert COMMIT.search(evidence.source) or PACKAGE.match(evidence.source), (pid, name, evidence.source)
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", evidence.checked_at), (pid, name)
    for model, serving in cat.models.items():
        assert COMMIT.fullmatch(serving.source), model


def test_facts_as_published(cat):
    dp = {pid: p.data_policy for pid, p in cat.providers.items()}
    assert dp["deepseek"].trains_on_prompts is True and dp["deepseek"].headquarters_country == "CN"
    assert not dp["deepseek"].HasField("soc2") and not dp["deepseek"].HasField("gdpr")
    assert dp["openai"].logs_prompts is True and dp["openai"].soc2_report == catalog_pb2.SOC2_REPORT_TYPE2
    assert not dp["openai"].HasField("prompt_retention_days")  # retentionPeriod: null
    assert dp["canopywave"].soc2_report == catalog_pb2.SOC2_REPORT_TYPE1 and dp["canopywave"].iso27001 is False
    assert dp["bytedance"].prompt_retention_days == 1  # "24 hours", rounded up to whole days
    assert not dp["atlascloud"].HasField("prompt_retention_days")  # prose, not a number of days
    assert dp["nebius"].headquarters_country == "NL" and dp["runware"].headquarters_country == "GB"
    for stealth in ("glacier", "iceberg", "granite", "tundra"):
        assert dp[stealth].stealth is True and not dp[stealth].HasField("soc2")
    assert dp["openai"].stealth is False
    # Stealth as LLMGateway's isStealthProvider answers it: quartz is one, atlascloud (no
    # headquarters published, but a named operator) is not.
    assert dp["quartz"].stealth is True and dp["atlascloud"].stealth is False
    assert not cat.providers["fireworks"].HasField("data_policy")  # named by a model file only
    assert cat.providers["openai"].privacy_policy_url.startswith("https://openai.com/")


def test_processing_regions_only_where_an_endpoint_says_so(cat):
    dp = {pid: p.data_policy for pid, p in cat.providers.items()}
    for pid in ("openai", "aws-bedrock", "alibaba", "google-vertex", "azure"):
        assert not dp[pid].processing_regions, pid  # headquarters never count as a processing region
    assert list(dp["aws-bedrock-eu"].processing_regions) == ["eu"]
    assert list(dp["aws-bedrock-eu-west-2"].processing_regions) == ["uk"]  # London is not in the EU
    assert list(dp["alibaba-us-virginia"].processing_regions) == ["us"]
    assert dp["aws-bedrock-eu"].soc2 and dp["aws-bedrock-eu"].headquarters_country == "US"
    assert "alibaba-singapore" in cat.models["qwen-plus"].providers
    regions = {pid: p.region_of for pid, p in cat.providers.items() if p.region_of}
    assert regions["alibaba-singapore"] == "alibaba" and regions["aws-bedrock-eu-west-2"] == "aws-bedrock"
    assert set(regions.values()) == {"alibaba", "aws-bedrock"} and len(regions) == 19


def test_a_provider_list_covers_its_region_entries(cat):
    """As in LLMGateway, where a regional mapping keeps its provider id: deny alibaba and
    qwen-plus has no provider left; allow alibaba and its regions stay allowed."""
    denied = verdict(cat, "qwen-plus", provider_denylist=["alibaba"])
    assert all(failures and failures[0].requirement == "provider_denylist" for failures in denied.values())
    allowed = verdict(cat, "qwen-plus", provider_allowlist=["alibaba"])
    assert all(not failures for p, failures in allowed.items() if p.startswith("alibaba")), allowed
    one_region = verdict(cat, "qwen-plus", provider_denylist=["alibaba-singapore"])
    assert one_region["alibaba-singapore"] and not one_region["alibaba"]


def verdict(cat, model: str, **fields) -> dict[str, policy.Failures]:
    rules = policy.rules_of(policy_pb2.CompliancePolicy(enabled=True, **fields))
    return {
        p: policy.unmet(p, cat.providers[p].data_policy, rules, cat.providers[p].region_of)
        for p in cat.models[model].providers
    }


def test_demo_policy_on_real_data(cat):
    got = verdict(cat, "deepseek-v3.2", **{k: v for k, v in DEMO_POLICY.items() if k != "enabled"})
    assert sorted(p for p, f in got.items() if not f) == ["deepinfra", "vertex-openai"]
    assert ("gdpr", UNKNOWN) in got["novita"] and ("soc2_or_iso27001", UNKNOWN) in got["novita"]


def test_residency_on_real_data(cat):
    got = verdict(cat, "qwen-plus", data_residency=["us"])
    assert got["alibaba-us-virginia"] == ()
    assert got["alibaba"] == (("data_residency", UNKNOWN),)
    assert got["alibaba-cn-beijing"] == (("data_residency", NOT_MET),)


def test_stealth_on_real_data(cat):
    got = verdict(cat, "glm-5.2", block_stealth_providers=True)
    assert got["granite"] == (("no_stealth_provider", NOT_MET),)
    assert got["zai"] == ()
    assert got["nebius"] == ()
    assert policy.unmet(
        "quartz",
        cat.providers["quartz"].data_policy,
        policy.rules_of(policy_pb2.CompliancePolicy(enabled=True, block_stealth_providers=True)),
    ) == (("no_stealth_provider", NOT_MET),)  # LLMGateway's isStealthProvider says it is one


def test_the_preview_shows_what_a_provider_list_entry_covers(cat):
    from authz.admin.service import preview
    from authz.policy.catalog import CatalogIndex

    index = CatalogIndex.build(cat)
    result = preview(index, policy_pb2.CompliancePolicy(enabled=True, provider_denylist=["alibaba", "deepseek"]))
    covers = {c.entry: list(c.covers) for c in result.list_coverage}
    regions = ["alibaba-cn-beijing", "alibaba-singapore", "alibaba-us-virginia"]
    assert covers["alibaba"] == ["alibaba", *regions]
    assert covers["deepseek"] == ["deepseek"]
    by_id = {p.provider: p for p in result.providers}
    assert by_id["alibaba-singapore"].region_of == "alibaba" and not by_id["alibaba-singapore"].allowed
    assert [u.requirement for u in by_id["alibaba-singapore"].unmet] == ["provider_denylist"]
    assert "qwen-plus" in result.models_without_compliant_provider
