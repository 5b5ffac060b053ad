"""Same verdicts as LLMGateway's own compliance code (differential test).

LLMGateway's published functions (`getProviderComplianceFailures`,
`getAttestationComplianceFailures` of the npm package @llmgateway/models, pinned in
tools/llmgateway and installed by `make test`) judge LLMGateway's own provider data under
generated policies; authz judges the same data as it ships it (catalog/catalog.json, built from
the same pinned package by `authz catalog build`, regional entries included) under the same
policies. Verdicts must agree everywhere, and so must the failed requirements, except for the
differences listed in DELIBERATE (each asserted, so one that disappears fails too);
docs/policy.md's parity table is this list.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from authz.policy import catalog as catalog_mod
from authz.policy import rules as policy_rules
from authz.policy.imports import llmgateway_catalog as lg
from authz.v1 import catalog_pb2

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "llmgateway"
SHIPPED = ROOT / "catalog" / "catalog.json"


def shipped_entries(result: dict) -> list[list[catalog_pb2.Provider]]:
    """For each provider the package lists, the shipped catalog's entry and its regional ones
    (LLMGateway's `custom` placeholder is the org's own provider: judged by the attestation test)."""
    catalog = catalog_mod.parse(SHIPPED.read_text())
    missing = {d["id"] for d in result["providers"]} - set(catalog.providers)
    assert missing == {"custom"}, missing
    return [
        [catalog.providers[d["id"]], *(p for p in catalog.providers.values() if p.region_of == d["id"])]
        if d["id"] in catalog.providers
        else []
        for d in result["providers"]
    ]


# Differences we keep on purpose: never a pass where LLMGateway blocks.
DELIBERATE = {
    # An org's own provider without an attestation: LLMGateway reports only "noAttestation";
    # authz also names each requirement it cannot check (all unknown). Same verdict.
    "no attestation: every requirement reported too": "reporting",
    # block_stealth_providers on an attested custom provider: LLMGateway's attestation carries
    # no stealth field and passes; authz needs the attestation to state it (unknown fails closed).
    "attestation: stealth unknown fails block_stealth_providers": "stricter",
}


def oracle(policies: list[dict], attestations: list[dict | None]) -> dict:
    assert shutil.which("node"), "node is needed (make test runs with the machine's Node.js)"
    assert (TOOLS / "node_modules" / "@llmgateway" / "models").exists(), "make test installs tools/llmgateway"
    out = subprocess.run(
        ["node", "compliance.mjs"],
        cwd=TOOLS,
        input=json.dumps({"policies": policies, "attestations": attestations}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def generated_policies() -> list[dict]:
    """Every subset of the nine requirement flags; countries, provider lists and a disabled
    policy over a seeded sample of them."""
    flags = list(lg.POLICY_FLAGS)
    subsets = [{flag: bool(bits >> i & 1) for i, flag in enumerate(flags)} for bits in range(1 << len(flags))]
    policies = [{"enabled": True, **s} for s in subsets]
    rnd = random.Random(32)
    sample = rnd.sample(subsets, 12) + [dict.fromkeys(flags, False)]
    for extra in (
        {"allowedCountries": ["US"]},
        {"allowedCountries": ["CN"]},
        {"allowedCountries": ["US", "FR", "NL", "GB"]},
        {"blockedProviders": ["alibaba"]},
        {"blockedProviders": ["aws-bedrock", "deepseek"]},
        {"allowedProviders": ["openai", "azure", "alibaba", "aws-bedrock"]},
        {"blockedProviders": ["deepseek", "alibaba"], "allowedProviders": ["openai", "alibaba"]},
        {"allowedCountries": ["US"], "blockedProviders": ["openai"], "allowedProviders": ["openai", "groq"]},
    ):
        policies += [{"enabled": True, **s, **extra} for s in sample]
    policies += [{"enabled": False, **dict.fromkeys(flags, True), "blockedProviders": ["openai"]}]
    return policies


def attestations() -> list[dict | None]:
    values = {
        "soc2": [None, 1, 2],
        "iso27001": [None, True, False],
        "gdpr": [None, True, False],
        "apiTraining": [None, True, False],
        "promptLogging": [None, True, False],
        "retentionPeriod": [None, "0 days", "30 days", "24 hours", "0 hours"],
        "headquarters": [None, "US", "CN"],
    }
    return [None] + [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]


@pytest.fixture(scope="module")
def judged():
    policies = generated_policies()
    attested = attestations()
    # Attestations are judged under the policies without provider lists (LLMGateway checks a
    # custom provider's lists by another id, "custom:<name>", elsewhere).
    plain = [p for p in policies if not p.get("blockedProviders") and not p.get("allowedProviders")][::4]
    result = oracle(policies, [])
    result["attestation_failures"] = oracle(plain, attested)["attestation_failures"]
    return policies, plain, attested, result


def theirs(reasons: list[str]) -> set[str]:
    return {lg.FAILURES[r] for r in reasons}


def ours(failures: policy_rules.Failures) -> set[str]:
    return {u.requirement for u in failures}


def test_every_package_provider_and_region_gets_the_same_verdict_and_failures(judged):
    policies, _, _, result = judged
    shipped = shipped_entries(result)
    compared, differences = 0, Counter()
    for published, failures_by_provider in zip(policies, result["provider_failures"], strict=True):
        rules = policy_rules.rules_of(lg.policy(published))
        for entries, failed in zip(shipped, failures_by_provider, strict=True):
            expected = theirs(failed)
            for entry in entries:  # a regional entry keeps its provider's verdict, lists included
                got = ours(policy_rules.unmet(entry.id, entry.data_policy, rules, entry.region_of))
                compared += 1
                if got != expected:
                    differences[(entry.id, tuple(sorted(got ^ expected)))] += 1
    assert compared > 30_000
    assert not differences, differences.most_common(10)


def test_attestations_get_the_same_verdict_and_failures_but_where_listed(judged):
    _, plain, attested, result = judged
    compared, seen, unexplained = 0, Counter(), Counter()
    for published, failures_by_attestation in zip(plain, result["attestation_failures"], strict=True):
        ours_policy = lg.policy(published)
        rules = policy_rules.rules_of(ours_policy)
        for given, failed in zip(attested, failures_by_attestation, strict=True):
            custom = catalog_pb2.CustomProvider(id="own", models=["m"])
            if given is not None:
                custom.attestation.CopyFrom(lg.attestation(given))
            got = ours(policy_rules.custom_unmet("own", custom, rules, enabled=ours_policy.enabled))
            expected = theirs(failed)
            compared += 1
            if got == expected:
                continue
            if given is None and "custom_provider_attestation" in got and bool(got) == bool(expected):
                seen["no attestation: every requirement reported too"] += 1
            elif got - expected == {"no_stealth_provider"} and not expected - got:
                seen["attestation: stealth unknown fails block_stealth_providers"] += 1
            else:
                unexplained[(json.dumps(given), tuple(sorted(got ^ expected)))] += 1
    assert compared > 40_000
    assert not unexplained, unexplained.most_common(5)
    assert set(seen) == set(DELIBERATE), seen  # each listed difference still exists, and only those


def test_never_more_lenient(judged):
    """The rule behind every difference: no provider or attestation passes here that LLMGateway blocks."""
    policies, plain, attested, result = judged
    shipped = shipped_entries(result)
    for published, failures_by_provider in zip(policies, result["provider_failures"], strict=True):
        rules = policy_rules.rules_of(lg.policy(published))
        for entries, failed in zip(shipped, failures_by_provider, strict=True):
            for entry in entries if failed else ():
                assert policy_rules.unmet(entry.id, entry.data_policy, rules, entry.region_of), (entry.id, published)


def test_the_mapping_reads_retention_as_llmgateway_compares_it():
    assert lg.retention_days("0 days") == 0
    assert lg.retention_days("30 days") == 30
    assert lg.retention_days("24 hours") == 1 and lg.retention_days("25 hours") == 2
    assert lg.retention_days("0 hours") is None  # not LLMGateway's "0 days": never zero retention here
    assert lg.retention_days("varies by service; Enterprise ZDR available") is None


def test_docs_parity_table_lists_exactly_the_deliberate_differences():
    text = (ROOT / "docs" / "policy.md").read_text().split("## Parity with LLMGateway", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|") for line in text.splitlines() if line.startswith("| ")]
    rows = {row[1].strip(): row[2].strip() for row in cells}
    rows.pop("difference", None)
    assert rows == DELIBERATE
