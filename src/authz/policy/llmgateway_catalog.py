"""LLMGateway's published provider data (the npm package @llmgateway/models) as catalog entries.

One mapping, used by the parity test against LLMGateway's own compliance functions
(tests/integration/test_llmgateway_parity.py) and meant for the catalog builder. A provider
definition arrives as tools/llmgateway/compliance.mjs writes it: the package's fields, plus
`stealth`, the package's own isStealthProvider answer, and `regions`, its regionConfig ids.

What the package publishes and what it becomes (absent or null stays unknown, fails closed):
  dataPolicy.apiTraining      -> trains_on_prompts
  dataPolicy.promptLogging    -> logs_prompts
  dataPolicy.retentionPeriod  -> prompt_retention_days: "N days" -> N, "N hours" -> whole days
                                 rounded up; "0 hours" and prose -> unknown (LLMGateway's zero data
                                 retention wants exactly "0 days": we are never more lenient)
  dataPolicy.soc2 (1 | 2)     -> soc2 = true, soc2_report TYPE1 | TYPE2
  dataPolicy.iso27001, .gdpr  -> iso27001, gdpr
  headquarters                -> headquarters_country (never a processing region)
  isStealthProvider(p)        -> stealth
  regionConfig.regions[].id   -> a regional entry "<id>-<region>" with region_of = <id>
"""

from __future__ import annotations

import re
from typing import Any

from authz.v1 import catalog_pb2, policy_pb2

PACKAGE = "@llmgateway/models"

# LLMGateway's policy flags and failure reasons, and ours.
POLICY_FLAGS = {
    "requireSoc2": "require_soc2",
    "requireSoc2Type2": "require_soc2_type2",
    "requireIso27001": "require_iso27001",
    "requireSoc2OrIso27001": "require_soc2_or_iso27001",
    "requireGdpr": "require_gdpr",
    "blockApiTraining": "require_no_prompt_training",
    "blockPromptLogging": "require_no_prompt_logging",
    "zeroDataRetention": "require_zero_data_retention",
    "blockStealthProviders": "block_stealth_providers",
}
POLICY_LISTS = {
    "allowedCountries": "allowed_countries",
    "blockedProviders": "provider_denylist",
    "allowedProviders": "provider_allowlist",
    "blockedModels": "model_denylist",
    "allowedModels": "model_allowlist",
}
FAILURES = {
    "requireSoc2": "soc2",
    "requireSoc2Type2": "soc2_type2",
    "requireIso27001": "iso27001",
    "requireSoc2OrIso27001": "soc2_or_iso27001",
    "requireGdpr": "gdpr",
    "blockApiTraining": "no_prompt_training",
    "blockPromptLogging": "no_prompt_logging",
    "zeroDataRetention": "zero_data_retention",
    "blockStealthProviders": "no_stealth_provider",
    "allowedCountries": "headquarters_country",
    "blockedProviders": "provider_denylist",
    "allowedProviders": "provider_allowlist",
    "blockedModels": "model_denylist",
    "allowedModels": "model_allowlist",
    "noAttestation": "custom_provider_attestation",
}


def retention_days(text: str) -> int | None:
    """Days of retention, rounded up; None (unknown) for prose and for "0 hours"."""
    found = re.fullmatch(r"(\d+) (days?|hours?)", text.strip())
    if not found:
        return None
    amount = int(found.group(1))
    if found.group(2).startswith("day"):
        return amount
    return -(-amount // 24) if amount else None


def data_policy(
    published: dict[str, Any] | None, headquarters: str | None, where: str, checked_at: str
) -> catalog_pb2.DataPolicy:
    """Our DataPolicy for LLMGateway's dataPolicy (or an attestation), each value with evidence."""
    dp = catalog_pb2.DataPolicy()

    def put(attribute: str, value: Any, field: str) -> None:
        setattr(dp, attribute, value)
        dp.evidence[attribute].source = f"{where} {field}"
        dp.evidence[attribute].checked_at = checked_at

    published = published or {}
    for key, attribute in (
        ("apiTraining", "trains_on_prompts"),
        ("promptLogging", "logs_prompts"),
        ("iso27001", "iso27001"),
        ("gdpr", "gdpr"),
    ):
        if isinstance(published.get(key), bool):
            put(attribute, published[key], f"dataPolicy.{key}")
    soc2 = published.get("soc2")
    if soc2 in (1, 2):
        put("soc2", True, "dataPolicy.soc2")
        report = catalog_pb2.SOC2_REPORT_TYPE2 if soc2 == 2 else catalog_pb2.SOC2_REPORT_TYPE1
        put("soc2_report", report, "dataPolicy.soc2")
    retention = published.get("retentionPeriod")
    if isinstance(retention, str) and (days := retention_days(retention)) is not None:
        put("prompt_retention_days", days, f"dataPolicy.retentionPeriod {retention!r}")
    if headquarters:
        put("headquarters_country", headquarters, "headquarters")
    return dp


def provider(defn: dict[str, Any], version: str, checked_at: str) -> catalog_pb2.Provider:
    """A catalog provider for one package provider definition."""
    where = f"{PACKAGE}@{version} providers[{defn['id']}]"
    dp = data_policy(defn.get("dataPolicy"), defn.get("headquarters"), where, checked_at)
    dp.stealth = bool(defn["stealth"])
    dp.evidence["stealth"].source = f"{PACKAGE}@{version} isStealthProvider({defn['id']})"
    dp.evidence["stealth"].checked_at = checked_at
    out = catalog_pb2.Provider(id=defn["id"], name=defn.get("name") or defn["id"], data_policy=dp)
    out.privacy_policy_url = defn.get("privacyPolicyUrl") or ""
    out.terms_url = defn.get("termsUrl") or ""
    return out


def regional(parent: catalog_pb2.Provider, region: str) -> catalog_pb2.Provider:
    """The entry of one of a provider's regions: its data, and its provider's list entries."""
    entry = catalog_pb2.Provider()
    entry.CopyFrom(parent)
    entry.id = f"{parent.id}-{region}"
    entry.name = f"{parent.name} ({region})"
    entry.region_of = parent.id
    return entry


def policy(published: dict[str, Any]) -> policy_pb2.CompliancePolicy:
    """Our policy for LLMGateway's ProviderCompliancePolicy."""
    out = policy_pb2.CompliancePolicy(enabled=bool(published.get("enabled")))
    for theirs, ours in POLICY_FLAGS.items():
        setattr(out, ours, bool(published.get(theirs)))
    for theirs, ours in POLICY_LISTS.items():
        getattr(out, ours).extend(published.get(theirs) or [])
    return out


def attestation(published: dict[str, Any]) -> catalog_pb2.DataPolicy:
    """An org's attestation of its own provider, as LLMGateway's attestation fields say it."""
    return data_policy(
        {k: published.get(k) for k in ("apiTraining", "promptLogging", "retentionPeriod", "soc2", "iso27001", "gdpr")},
        published.get("headquarters"),
        "attestation",
        "",
    )
