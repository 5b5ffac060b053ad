"""LLMGateway's published provider data (the npm package @llmgateway/models) as a catalog.

`authz catalog build --from llmgateway DIR` runs llmgateway_export.mjs under Node on an installed
package and hands its JSON here; the parity test (tests/integration/test_llmgateway_parity.py)
judges the result against LLMGateway's own compliance functions. Every value carries evidence
naming the package, its version and the field (`@llmgateway/models@1.324.0
providers[openai].dataPolicy.soc2`) and the day it was read.

What the package publishes and what it becomes (absent or null stays unknown, fails closed):
  dataPolicy.apiTraining      -> trains_on_prompts
  dataPolicy.promptLogging    -> logs_prompts
  dataPolicy.retentionPeriod  -> prompt_retention_days: "N days" -> N, "N hours" -> whole days
                                 rounded up; "0 hours" and prose -> unknown (LLMGateway's zero data
                                 retention wants exactly "0 days": we are never more lenient)
  dataPolicy.soc2 (1 | 2)     -> soc2 = true, soc2_report TYPE1 | TYPE2
  dataPolicy.iso27001, .gdpr  -> iso27001, gdpr
  headquarters                -> headquarters_country (never a processing region)
  legalEntity, website        -> legal_entity, website
  isStealthProvider(p)        -> stealth (a version without that function: unknown)
  regionConfig                -> a regional entry "<id>-<region>" per region but "global" (any
                                 region: the provider's own entry), region_of = <id>, processing
                                 region from its endpoint's host (and its fallback endpoint's),
                                 authz.policy.imports.cloud_regions; a host that does not say: unknown
  models[].providers[]        -> the model's providers, each mapping's regions (LLMGateway's
                                 expandProviderRegions) as regional entries; a mapping whose
                                 deactivatedAt is on or before the catalog's day is no candidate,
                                 and every deactivation is listed with its date
Model `aliases` are display names LLMGateway does not route by (parseModelInput reads ids), so
they are not aliases here; the placeholders `auto` and `custom` (LLMGateway picks the model, or
the org's own provider) are no models or providers here: a request naming them stays unknown.
A provider field, data-policy field or region-config field this module does not know is
reported, and the build refuses it unless allowed: a new compliance attribute upstream is
never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authz.policy.imports import cloud_regions
from authz.v1 import catalog_pb2, policy_pb2

PACKAGE = "@llmgateway/models"
PLACEHOLDERS = frozenset({"auto", "custom"})  # LLMGateway's routing placeholders, not models or providers
ANY_REGION = "global"

# The package's fields: those mapped (above), and those known and left out, with why.
PROVIDER_FIELDS = frozenset(
    {
        "id",
        "name",
        "website",
        "termsUrl",
        "privacyPolicyUrl",
        "legalEntity",
        "headquarters",
        "dataPolicy",
        "regionConfig",
        "env",
    }  # env: isStealthProvider reads env.required.baseUrl
)
PROVIDER_FIELDS_LEFT_OUT = {
    "description": "prose",
    "streaming": "a capability",
    "cancellation": "a capability",
    "color": "display",
    "announcement": "display",
    "priority": "the gateway's routing preference, not a commitment",
    "apiKeyInstructions": "display",
    "learnMore": "display",
    "additionalLinks": "display",
    "statusPageUrl": "availability, not data handling",
    "usagePolicyUrl": "what customers may do, not what the provider does with data",
    "serviceTiers": "pricing tiers",
    "maxTemperature": "a request limit",
    "modelCardBadge": "display",
    "forwardsSafetyIdentifier": "a request feature of the gateway (it forwards a per-user id), not a commitment",
}
_ATTRIBUTE_OF = {  # a dataPolicy field -> the attribute it becomes
    "apiTraining": "trains_on_prompts",
    "promptLogging": "logs_prompts",
    "retentionPeriod": "prompt_retention_days",
    "soc2": "soc2",
    "iso27001": "iso27001",
    "gdpr": "gdpr",
}
DATA_POLICY_FIELDS = frozenset(_ATTRIBUTE_OF)
DATA_POLICY_FIELDS_LEFT_OUT = {
    "consumerTraining": "training on the provider's consumer products' data, not on API traffic (apiTraining)",
}
REGION_CONFIG_FIELDS = frozenset({"regions", "endpointMap", "endpointFallbackMap", "defaultRegion"})
REGION_CONFIG_FIELDS_LEFT_OUT = {
    "optionsKey": "the name of the gateway's region setting",
    "pinDefaultRegion": "the default region is the provider's own entry either way",
    "sharedCredentialAcrossRegions": "credentials",
    "modelPrefixMap": "the model-name prefix each region sends upstream",
}
REGION_FIELDS = frozenset({"id", "label"})

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

# Other spellings clients of other gateways send for the same model or provider (ours, not the
# package's); each is added only when the catalog has its target.
MODEL_ALIASES = {
    "deepseek-ai/DeepSeek-V3.2": "deepseek-v3.2",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b-instruct-2507",
}
PROVIDER_ALIASES = {"together.ai": "together-ai", "together": "together-ai", "vertex": "google-vertex"}


class BuildError(ValueError):
    """The package cannot be built into a catalog as it is; the message says what and how to go on."""


@dataclass
class Report:
    """What a build saw besides the catalog: fields it does not map, values it could not read."""

    version: str = ""
    new_fields: list[str] = field(default_factory=list)  # fields upstream added that nothing maps
    unread: list[str] = field(default_factory=list)  # values present but unusable (stay unknown)
    deactivated: int = 0  # mappings deactivated on or before the catalog's day


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

    def put(attribute: str, value: Any, source: str) -> None:
        setattr(dp, attribute, value)
        dp.evidence[attribute].source = f"{where}{source}"
        dp.evidence[attribute].checked_at = checked_at

    published = published or {}
    for key in ("apiTraining", "promptLogging", "iso27001", "gdpr"):  # true / false as published
        if isinstance(published.get(key), bool):
            put(_ATTRIBUTE_OF[key], published[key], f".dataPolicy.{key}")
    soc2 = published.get("soc2")
    if soc2 in (1, 2) and not isinstance(soc2, bool):
        put("soc2", True, ".dataPolicy.soc2")
        report = catalog_pb2.SOC2_REPORT_TYPE2 if soc2 == 2 else catalog_pb2.SOC2_REPORT_TYPE1
        put("soc2_report", report, ".dataPolicy.soc2")
    retention = published.get("retentionPeriod")
    if isinstance(retention, str) and (days := retention_days(retention)) is not None:
        put("prompt_retention_days", days, f".dataPolicy.retentionPeriod {retention!r}")
    if isinstance(headquarters, str) and re.fullmatch(r"[A-Z]{2}", headquarters):
        put("headquarters_country", headquarters, ".headquarters")
    return dp


def _url(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith("https://") else ""


def provider(defn: dict[str, Any], version: str, checked_at: str) -> catalog_pb2.Provider:
    """A catalog provider for one package provider definition (as llmgateway_export.mjs writes it)."""
    where = f"{PACKAGE}@{version} providers[{defn['id']}]"
    dp = data_policy(defn.get("dataPolicy"), defn.get("headquarters"), where, checked_at)
    if isinstance(defn.get("stealth"), bool):
        dp.stealth = defn["stealth"]
        dp.evidence["stealth"].source = f"{PACKAGE}@{version} isStealthProvider({defn['id']})"
        dp.evidence["stealth"].checked_at = checked_at
    for key, value in (defn.get("dataPolicy") or {}).items():
        if value is None and key in _ATTRIBUTE_OF:  # published, as null: checked, and unknown
            dp.evidence[_ATTRIBUTE_OF[key]].source = f"{where}.dataPolicy.{key} = null (not published)"
            dp.evidence[_ATTRIBUTE_OF[key]].checked_at = checked_at
    if isinstance(defn.get("legalEntity"), str):
        dp.evidence["legal_entity"].source = f"{where}.legalEntity"
        dp.evidence["legal_entity"].checked_at = checked_at
    out = catalog_pb2.Provider(id=defn["id"], name=defn.get("name") or defn["id"], data_policy=dp)
    out.privacy_policy_url = _url(defn.get("privacyPolicyUrl"))
    out.terms_url = _url(defn.get("termsUrl"))
    out.website = _url(defn.get("website"))
    if isinstance(defn.get("legalEntity"), str):
        out.legal_entity = defn["legalEntity"]
    return out


def regional(parent: catalog_pb2.Provider, region: str, label: str = "") -> catalog_pb2.Provider:
    """The entry of one of a provider's regions: its data, and its provider's list entries."""
    entry = catalog_pb2.Provider()
    entry.CopyFrom(parent)
    entry.id = f"{parent.id}-{region}"
    entry.name = f"{parent.name} ({label or region})"
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
        {k: published.get(k) for k in _ATTRIBUTE_OF},
        published.get("headquarters"),
        "attestation",
        "",
    )


def _unknown_fields(where: str, present: Any, mapped: frozenset[str], left_out: dict[str, str]) -> list[str]:
    return [f"{where}.{name}" for name in present if name not in mapped and name not in left_out]


def _regions(
    defn: dict[str, Any], parent: catalog_pb2.Provider, version: str, checked_at: str, report: Report
) -> list[catalog_pb2.Provider]:
    """A provider's regional entries, each with the region its endpoint processes in."""
    config = defn.get("regionConfig") or {}
    where = f"{PACKAGE}@{version} providers[{defn['id']}].regionConfig"
    endpoints = config.get("endpointMap") or {}
    fallbacks = config.get("endpointFallbackMap") or {}
    entries = []
    for region in config.get("regions") or []:
        report.new_fields += _unknown_fields(f"{where}.regions[{region.get('id')}]", region, REGION_FIELDS, {})
        rid = region.get("id")
        if not isinstance(rid, str) or rid == ANY_REGION:
            continue
        entry = regional(parent, rid, str(region.get("label") or rid))
        hosts = [urlsplit(u).hostname or "" for u in (endpoints.get(rid), fallbacks.get(rid)) if isinstance(u, str)]
        found = {cloud_regions.of_host(h) for h in hosts}
        if rid in cloud_regions.AWS_GEOGRAPHIES and defn["id"].startswith("aws-"):
            found = {cloud_regions.AWS_GEOGRAPHIES[rid]}  # a cross-region profile: anywhere in that area
        if hosts and None not in found and len(found) == 1:
            entry.data_policy.processing_regions.append(found.pop())
            evidence = entry.data_policy.evidence["processing_regions"]
            evidence.source = f"{where}.endpointMap[{rid}] {', '.join(hosts)} (authz.policy.imports.cloud_regions)"
            evidence.checked_at = checked_at
        else:
            report.unread.append(f"{where}.endpointMap[{rid}]: no known region for {hosts or 'no endpoint'}")
        entries.append(entry)
    return entries


def build(export: dict[str, Any], checked_at: str) -> tuple[catalog_pb2.Catalog, Report]:
    """The catalog of one exported package version, as of the day `checked_at` (YYYY-MM-DD).
    Raises BuildError when the export is not one of @llmgateway/models."""
    if export.get("package") != PACKAGE or not isinstance(export.get("version"), str):
        raise BuildError(f"not an export of {PACKAGE}")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", checked_at):
        raise BuildError(f"checked_at {checked_at!r}: use YYYY-MM-DD")
    version = export["version"]
    report = Report(version=version)
    out = catalog_pb2.Catalog(
        description=(
            "Provider data policies and model -> provider mappings as LLMGateway publishes them in "
            f"{PACKAGE}@{version} (npm), read {checked_at}. Unpublished facts are unknown and fail closed. "
            "Review against each provider's own terms before relying on it."
        ),
        published_at=checked_at,
    )
    regional_of: dict[str, set[str]] = {}
    for defn in export["providers"]:
        pid = defn.get("id")
        if not isinstance(pid, str) or pid in PLACEHOLDERS:
            continue
        where = f"providers[{pid}]"
        report.new_fields += _unknown_fields(where, defn.get("fields", ()), PROVIDER_FIELDS, PROVIDER_FIELDS_LEFT_OUT)
        report.new_fields += _unknown_fields(
            f"{where}.dataPolicy", defn.get("dataPolicy") or {}, DATA_POLICY_FIELDS, DATA_POLICY_FIELDS_LEFT_OUT
        )
        report.new_fields += _unknown_fields(
            f"{where}.regionConfig", defn.get("regionConfig") or {}, REGION_CONFIG_FIELDS, REGION_CONFIG_FIELDS_LEFT_OUT
        )
        parent = provider(defn, version, checked_at)
        out.providers[pid].CopyFrom(parent)
        for entry in _regions(defn, parent, version, checked_at, report):
            out.providers[entry.id].CopyFrom(entry)
            regional_of.setdefault(pid, set()).add(entry.id)
    for model in export["models"]:
        mid = model.get("id")
        if not isinstance(mid, str) or mid in PLACEHOLDERS:
            continue
        serving = catalog_pb2.ModelProviders(source=f"{PACKAGE}@{version} models[{mid}].providers")
        ends: dict[str, list[str | None]] = {}  # entry -> each of its mappings' deactivatedAt
        for mapping in model.get("providers") or []:
            pid = mapping.get("providerId")
            if not isinstance(pid, str) or pid in PLACEHOLDERS:
                continue
            if pid not in out.providers:  # named by a model, described nowhere: no data, fails closed
                out.providers[pid].name = pid
            at = mapping.get("deactivatedAt")
            if at is not None and not (isinstance(at, str) and re.match(r"\d{4}-\d{2}-\d{2}", at)):
                report.unread.append(f"models[{mid}].providers[{pid}].deactivatedAt {at!r}: kept as a candidate")
                at = None
            regions = [f"{pid}-{r}" for r in mapping.get("regions") or [] if f"{pid}-{r}" in out.providers]
            for target in [pid, *regions]:
                ends.setdefault(target, []).append(at)
        for target, dates in ends.items():
            gone = None if None in dates else max(d for d in dates if d)  # every mapping of it ends
            if gone is None or gone[:10] > checked_at:
                serving.providers.append(target)  # a later deactivation: still a candidate until then
            else:
                report.deactivated += 1
            if gone is not None:
                serving.deactivated.add(provider=target, at=gone)
        output = model.get("output")
        if isinstance(output, list) and output != ["text"]:  # unset means text; what suggestions match on
            serving.output.extend(o for o in output if isinstance(o, str))
        if serving.providers or serving.deactivated:
            out.models[mid].CopyFrom(serving)
    for alias, target in PROVIDER_ALIASES.items():
        if target in out.providers and alias not in out.providers:
            out.provider_aliases[alias] = target
    for alias, target in MODEL_ALIASES.items():
        if target in out.models and alias not in out.models:
            out.model_aliases[alias] = target
    return out, report
