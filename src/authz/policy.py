"""What a Provider Compliance Policy requires, and whether a provider's data policy meets it.

Fail closed: a requirement is met only by the explicit attribute value that satisfies it.
An unset attribute (unknown) or a provider without a data policy never meets anything.
Runs when decision tables are compiled, never per request.
"""

from __future__ import annotations

from typing import NamedTuple

from authz.v1 import catalog_pb2, policy_pb2

SOC2 = "soc2"
ISO27001 = "iso27001"
SOC2_OR_ISO27001 = "soc2_or_iso27001"
GDPR = "gdpr"
NO_PROMPT_TRAINING = "no_prompt_training"
NO_PROMPT_LOGGING = "no_prompt_logging"

# Canonical order: failures are always reported in this order.
LABELS: dict[str, str] = {
    SOC2: "SOC 2",
    ISO27001: "ISO 27001",
    SOC2_OR_ISO27001: "SOC 2 or ISO 27001",
    GDPR: "GDPR",
    NO_PROMPT_TRAINING: "no training on prompts",
    NO_PROMPT_LOGGING: "no prompt logging",
}
_ORDER = {name: i for i, name in enumerate(LABELS)}

# requirement -> (attribute, the value that satisfies it)
_ATTRIBUTE_RULES: dict[str, tuple[tuple[str, bool], ...]] = {
    SOC2: (("soc2", True),),
    ISO27001: (("iso27001", True),),
    SOC2_OR_ISO27001: (("soc2", True), ("iso27001", True)),
    GDPR: (("gdpr", True),),
    NO_PROMPT_TRAINING: (("trains_on_prompts", False),),
    NO_PROMPT_LOGGING: (("logs_prompts", False),),
}

UNKNOWN = "unknown"  # the provider publishes no value for an attribute the requirement needs
NOT_MET = "not_met"  # the provider publishes a value that does not satisfy it

Requirements = frozenset[str]


class Unmet(NamedTuple):
    requirement: str
    cause: str  # UNKNOWN or NOT_MET


def requirements_of(policy: policy_pb2.CompliancePolicy | None) -> Requirements:
    """The requirement names an enabled policy imposes (empty when none or disabled).

    A frozenset caches its hash, so it is a cheap key for the shared decision tables.
    """
    if policy is None or not policy.enabled:
        return frozenset()
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
    if policy.require_gdpr:
        names.add(GDPR)
    if policy.require_no_prompt_training:
        names.add(NO_PROMPT_TRAINING)
    if policy.require_no_prompt_logging:
        names.add(NO_PROMPT_LOGGING)
    return frozenset(names)


def unmet(data_policy: catalog_pb2.DataPolicy | None, requirements: Requirements) -> tuple[Unmet, ...]:
    """Every requirement the data policy fails, in canonical order; empty means compliant."""
    failures = []
    for name in sorted(requirements, key=_ORDER.__getitem__):
        cause = _check(data_policy, _ATTRIBUTE_RULES[name])
        if cause is not None:
            failures.append(Unmet(name, cause))
    return tuple(failures)


def _check(data_policy: catalog_pb2.DataPolicy | None, alternatives: tuple[tuple[str, bool], ...]) -> str | None:
    """None if any alternative is explicitly satisfied, else why not."""
    cause = NOT_MET
    for attribute, wanted in alternatives:
        if data_policy is None or not data_policy.HasField(attribute):
            cause = UNKNOWN
        elif getattr(data_policy, attribute) is wanted:
            return None
    return cause


def describe(failures: tuple[Unmet, ...]) -> str:
    """'GDPR (unknown), no prompt logging (not met)' for messages people read."""
    return ", ".join(
        f"{LABELS[f.requirement]} ({'unknown' if f.cause == UNKNOWN else 'not met'})" for f in failures
    )
