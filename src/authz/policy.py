"""What a Provider Compliance Policy requires, and whether a provider meets it.

Fail closed: a requirement is met only by the explicit attribute value that satisfies it.
An unset attribute (unknown) or a provider without a data policy never meets anything.
Runs when decision tables are compiled, never per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from authz.v1 import catalog_pb2, policy_pb2

SOC2 = "soc2"
SOC2_TYPE2 = "soc2_type2"
ISO27001 = "iso27001"
SOC2_OR_ISO27001 = "soc2_or_iso27001"
GDPR = "gdpr"
NO_PROMPT_TRAINING = "no_prompt_training"
NO_PROMPT_LOGGING = "no_prompt_logging"
ZERO_DATA_RETENTION = "zero_data_retention"
HEADQUARTERS_COUNTRY = "headquarters_country"
PROVIDER_DENYLIST = "provider_denylist"
PROVIDER_ALLOWLIST = "provider_allowlist"
MODEL_DENYLIST = "model_denylist"
MODEL_ALLOWLIST = "model_allowlist"
CUSTOM_PROVIDER_ATTESTATION = "custom_provider_attestation"

# Canonical order: failures are always reported in this order.
LABELS: dict[str, str] = {
    PROVIDER_DENYLIST: "provider deny list",
    PROVIDER_ALLOWLIST: "provider allow list",
    MODEL_DENYLIST: "model deny list",
    MODEL_ALLOWLIST: "model allow list",
    CUSTOM_PROVIDER_ATTESTATION: "custom provider attestation",
    SOC2: "SOC 2",
    SOC2_TYPE2: "SOC 2 Type 2",
    ISO27001: "ISO 27001",
    SOC2_OR_ISO27001: "SOC 2 or ISO 27001",
    GDPR: "GDPR",
    NO_PROMPT_TRAINING: "no training on prompts",
    NO_PROMPT_LOGGING: "no prompt logging",
    ZERO_DATA_RETENTION: "zero data retention",
    HEADQUARTERS_COUNTRY: "headquarters in an allowed country",
}
ORDER = {name: i for i, name in enumerate(LABELS)}
# Failures that are not a published attribute read as a clause of their own.
_CLAUSES = {
    PROVIDER_DENYLIST: "is on the provider deny list",
    PROVIDER_ALLOWLIST: "is not on the provider allow list",
    MODEL_DENYLIST: "is on the model deny list",
    MODEL_ALLOWLIST: "is not on the model allow list",
    CUSTOM_PROVIDER_ATTESTATION: "is a custom provider without a compliance attestation",
}

UNKNOWN = "unknown"  # the provider publishes no value for an attribute the requirement needs
NOT_MET = "not_met"  # the provider publishes a value that does not satisfy it

_SOC2_REPORTS = (catalog_pb2.SOC2_REPORT_TYPE1, catalog_pb2.SOC2_REPORT_TYPE2)


class Unmet(NamedTuple):
    requirement: str
    cause: str  # UNKNOWN or NOT_MET


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything an enabled policy asks, hashable: orgs with equal rules share one compiled
    table (frozensets cache their hash, so the lookup is cheap)."""

    requirements: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    provider_allow: frozenset[str] = frozenset()
    provider_deny: frozenset[str] = frozenset()
    model_allow: frozenset[str] = frozenset()
    model_deny: frozenset[str] = frozenset()


NO_RULES = Rules()


def rules_of(policy: policy_pb2.CompliancePolicy | None) -> Rules:
    """The rules an enabled policy imposes (NO_RULES when none or disabled)."""
    if policy is None or not policy.enabled:
        return NO_RULES
    names = set()
    if policy.require_soc2 and policy.require_iso27001:
        if policy.certifications == policy_pb2.CERTIFICATION_MATCH_ANY:
            names.add(SOC2_OR_ISO27001)
        else:
            names.update((SOC2, ISO27001))
    elif policy.require_soc2:
        names.add(SOC2)
    elif policy.require_iso27001:
        names.add(ISO27001)
    for flag, name in (
        (policy.require_soc2_type2, SOC2_TYPE2),
        (policy.require_gdpr, GDPR),
        (policy.require_no_prompt_training, NO_PROMPT_TRAINING),
        (policy.require_no_prompt_logging, NO_PROMPT_LOGGING),
        (policy.require_zero_data_retention, ZERO_DATA_RETENTION),
    ):
        if flag:
            names.add(name)
    if policy.allowed_countries:
        names.add(HEADQUARTERS_COUNTRY)
    return Rules(
        requirements=frozenset(names),
        countries=frozenset(policy.allowed_countries),
        provider_allow=frozenset(policy.provider_allowlist),
        provider_deny=frozenset(policy.provider_denylist),
        model_allow=frozenset(policy.model_allowlist),
        model_deny=frozenset(policy.model_denylist),
    )


# Requirements a client may add to its own request (x-compliance-require); the lists and the
# headquarters rule need values, so they are the org's alone.
CLIENT_REQUIREMENTS = (SOC2, SOC2_TYPE2, ISO27001, SOC2_OR_ISO27001, GDPR, NO_PROMPT_TRAINING, NO_PROMPT_LOGGING,
                       ZERO_DATA_RETENTION)
MAX_CLIENT_REQUIREMENTS_HEADER = 512


def client_requirements(header: str) -> frozenset[str] | str:
    """The requirement names of an x-compliance-require header, or the first unknown name."""
    if len(header) > MAX_CLIENT_REQUIREMENTS_HEADER:
        return header[:40] + "…"
    names = [n.strip() for n in header.split(",")]
    for name in names:
        if name not in CLIENT_REQUIREMENTS:
            return name
    return frozenset(names)


def tightened(rules: Rules, extra: frozenset[str]) -> Rules:
    """The org's rules plus a client's own requirements: never fewer than the org's."""
    return Rules(rules.requirements | extra, rules.countries, rules.provider_allow, rules.provider_deny,
                 rules.model_allow, rules.model_deny)


def unmet(provider_id: str, data_policy: catalog_pb2.DataPolicy | None, rules: Rules) -> tuple[Unmet, ...]:
    """Every rule the provider fails, in canonical order; empty means compliant."""
    failures = []
    if provider_id in rules.provider_deny:
        failures.append(Unmet(PROVIDER_DENYLIST, NOT_MET))
    elif rules.provider_allow and provider_id not in rules.provider_allow:
        failures.append(Unmet(PROVIDER_ALLOWLIST, NOT_MET))
    for name in rules.requirements:
        cause = _CHECKS[name](data_policy, rules)
        if cause is not None:
            failures.append(Unmet(name, cause))
    return tuple(sorted(failures, key=lambda u: ORDER[u.requirement]))


def custom_unmet(provider_id: str, provider: catalog_pb2.CustomProvider, rules: Rules,
                 enabled: bool) -> tuple[Unmet, ...]:
    """An org's own provider, judged by the org's attestation. Without one it is blocked whenever
    a policy is enabled, whatever the policy requires."""
    if provider.HasField("attestation"):
        return unmet(provider_id, provider.attestation, rules)
    if not enabled:
        return ()
    return (Unmet(CUSTOM_PROVIDER_ATTESTATION, UNKNOWN), *unmet(provider_id, None, rules))


def model_unmet(model_id: str, rules: Rules) -> tuple[Unmet, ...]:
    """The model allow/deny lists, applied to the model id without provider prefix."""
    if model_id in rules.model_deny:
        return (Unmet(MODEL_DENYLIST, NOT_MET),)
    if rules.model_allow and model_id not in rules.model_allow:
        return (Unmet(MODEL_ALLOWLIST, NOT_MET),)
    return ()


def _explicit(attribute: str, wanted: bool):
    def check(dp: catalog_pb2.DataPolicy | None, _rules: Rules) -> str | None:
        if dp is None or not dp.HasField(attribute):
            return UNKNOWN
        return None if getattr(dp, attribute) is wanted else NOT_MET

    return check


def _soc2(dp, _rules) -> str | None:
    if dp is not None and (dp.HasField("soc2") and dp.soc2 or dp.soc2_report in _SOC2_REPORTS):
        return None
    if dp is None or (not dp.HasField("soc2") and dp.soc2_report == catalog_pb2.SOC2_REPORT_UNSPECIFIED):
        return UNKNOWN
    return NOT_MET


def _soc2_or_iso(dp, rules) -> str | None:
    soc2, iso = _soc2(dp, rules), _explicit("iso27001", True)(dp, rules)
    if soc2 is None or iso is None:
        return None
    return UNKNOWN if UNKNOWN in (soc2, iso) else NOT_MET


def _soc2_type2(dp, _rules) -> str | None:
    if dp is None or dp.soc2_report == catalog_pb2.SOC2_REPORT_UNSPECIFIED:
        return UNKNOWN
    return None if dp.soc2_report == catalog_pb2.SOC2_REPORT_TYPE2 else NOT_MET


def _zero_data_retention(dp, _rules) -> str | None:
    if dp is None:
        return UNKNOWN
    logs = None if not dp.HasField("logs_prompts") else dp.logs_prompts
    days = None if not dp.HasField("prompt_retention_days") else dp.prompt_retention_days
    if logs is True or (days is not None and days > 0):
        return NOT_MET
    if logs is None or days is None:
        return UNKNOWN
    return None


def _country(dp, rules) -> str | None:
    if dp is None or not dp.headquarters_country:
        return UNKNOWN
    return None if dp.headquarters_country in rules.countries else NOT_MET


_CHECKS = {
    SOC2: _soc2,
    SOC2_TYPE2: _soc2_type2,
    ISO27001: _explicit("iso27001", True),
    SOC2_OR_ISO27001: _soc2_or_iso,
    GDPR: _explicit("gdpr", True),
    NO_PROMPT_TRAINING: _explicit("trains_on_prompts", False),
    NO_PROMPT_LOGGING: _explicit("logs_prompts", False),
    ZERO_DATA_RETENTION: _zero_data_retention,
    HEADQUARTERS_COUNTRY: _country,
}


def describe(failures: tuple[Unmet, ...]) -> str:
    """'is on the provider deny list and fails GDPR (unknown), no prompt logging (not met)':
    completes a sentence whose subject is the provider (or the model)."""
    clauses = [_CLAUSES[f.requirement] for f in failures if f.requirement in _CLAUSES]
    attributes = [
        f"{LABELS[f.requirement]} ({'unknown' if f.cause == UNKNOWN else 'not met'})"
        for f in failures
        if f.requirement not in _CLAUSES
    ]
    if attributes:
        clauses.append("fails " + ", ".join(attributes))
    return " and ".join(clauses)
