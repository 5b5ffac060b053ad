"""What a Provider Compliance Policy requires, and whether a provider meets it.

Fail closed: a requirement is met only by the explicit attribute value that satisfies it.
An unset attribute (unknown) or a provider without a data policy never meets anything.
Runs when decision tables are compiled, never per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from authz.policy import requirements
from authz.v1 import catalog_pb2, policy_pb2

# The names other modules use; the requirements themselves are rows of requirements.REQUIREMENTS.
SOC2 = "soc2"
ISO27001 = "iso27001"
SOC2_OR_ISO27001 = "soc2_or_iso27001"
PROVIDER_DENYLIST = "provider_denylist"
PROVIDER_ALLOWLIST = "provider_allowlist"
MODEL_DENYLIST = "model_denylist"
MODEL_ALLOWLIST = "model_allowlist"
CUSTOM_PROVIDER_ATTESTATION = "custom_provider_attestation"
# The policy's list fields, in the order people read them.
LIST_FIELDS = (PROVIDER_ALLOWLIST, PROVIDER_DENYLIST, MODEL_ALLOWLIST, MODEL_DENYLIST)
PROVIDER_LISTS = frozenset({PROVIDER_ALLOWLIST, PROVIDER_DENYLIST})

UNKNOWN, NOT_MET = requirements.UNKNOWN, requirements.NOT_MET
LABELS, ORDER = requirements.LABELS, requirements.ORDER
_CHECKS = {r.name: r.check for r in requirements.ATTRIBUTE_REQUIREMENTS}
_CLAUSES = {r.name: r.clause for r in requirements.REQUIREMENTS if r.clause}


class Unmet(NamedTuple):
    requirement: str
    cause: str  # UNKNOWN or NOT_MET


# Every requirement one provider (or model) fails, in canonical order; empty: compliant.
Failures = tuple[Unmet, ...]
# Blocked providers with what each fails, as deny bodies and events list them.
Blocked = tuple[tuple[str, Failures], ...]


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything an enabled policy asks, hashable: orgs with equal rules share one compiled
    table (frozensets cache their hash, so the lookup is cheap)."""

    requirements: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()  # data_residency
    provider_allow: frozenset[str] = frozenset()
    provider_deny: frozenset[str] = frozenset()
    model_allow: frozenset[str] = frozenset()
    model_deny: frozenset[str] = frozenset()


NO_RULES = Rules()


def labels(rules: Rules) -> list[str]:
    """What the rules require, as people read it, in the order deny messages list it."""
    return [LABELS[name] for name in ORDER if name in rules.requirements]


@dataclass(frozen=True, slots=True)
class BlockAlerts:
    """An org's block-alert settings (authz.v1.AlertSettings) reduced to what counting needs:
    more than `threshold` blocks within `window_s` raise one alert to `webhook` (threshold 0:
    never). Each security event carries them as they were when the request was blocked."""

    threshold: int = 0
    window_s: int = 300
    webhook: str = ""


NO_BLOCK_ALERTS = BlockAlerts()


def block_alerts_of(settings: policy_pb2.AlertSettings) -> BlockAlerts:
    if not settings.webhook_url or not settings.block_threshold:
        return NO_BLOCK_ALERTS
    return BlockAlerts(settings.block_threshold, settings.block_window_s or 300, settings.webhook_url)


def rules_of(policy: policy_pb2.CompliancePolicy | None) -> Rules:
    """The rules an enabled policy imposes (NO_RULES when none or disabled)."""
    if policy is None or not policy.enabled:
        return NO_RULES
    names = {
        r.name
        for r in requirements.REQUIREMENTS
        if r.check is not None and r.policy_field and getattr(policy, r.policy_field)
    }
    # The older spelling of "SOC 2 or ISO 27001": both flags with certifications = any. Stored
    # policies keep meaning exactly that (tests/unit/test_policy.py).
    if SOC2 in names and ISO27001 in names and policy.certifications == policy_pb2.CERTIFICATION_MATCH_ANY:
        names -= {SOC2, ISO27001}
        names.add(SOC2_OR_ISO27001)
    return Rules(
        requirements=frozenset(names),
        countries=frozenset(policy.allowed_countries),
        regions=frozenset(policy.data_residency),
        provider_allow=frozenset(policy.provider_allowlist),
        provider_deny=frozenset(policy.provider_denylist),
        model_allow=frozenset(policy.model_allowlist),
        model_deny=frozenset(policy.model_denylist),
    )


# Requirements a client may add to its own request (x-compliance-require); the lists and the
# headquarters rule need values, so they are the org's alone.
CLIENT_REQUIREMENTS = requirements.CLIENT_SETTABLE
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
    return Rules(
        rules.requirements | extra,
        rules.countries,
        rules.regions,
        rules.provider_allow,
        rules.provider_deny,
        rules.model_allow,
        rules.model_deny,
    )


def unmet(provider_id: str, data_policy: catalog_pb2.DataPolicy | None, rules: Rules, region_of: str = "") -> Failures:
    """Every rule the provider fails, in canonical order; empty means compliant. A regional
    entry (`region_of` its provider) is on a list when it or its provider is. Both lists are
    reported when both fail (deny still beats allow: any failure blocks)."""
    failures = []
    ids = {provider_id, region_of} - {""}
    if ids & rules.provider_deny:
        failures.append(Unmet(PROVIDER_DENYLIST, NOT_MET))
    if rules.provider_allow and not ids & rules.provider_allow:
        failures.append(Unmet(PROVIDER_ALLOWLIST, NOT_MET))
    for name in rules.requirements:
        cause = _CHECKS[name](data_policy, rules)  # type: ignore[misc]
        if cause is not None:
            failures.append(Unmet(name, cause))
    return tuple(sorted(failures, key=lambda u: ORDER[u.requirement]))


def custom_unmet(provider_id: str, provider: catalog_pb2.CustomProvider, rules: Rules, enabled: bool) -> Failures:
    """An org's own provider, judged by the org's attestation. Without one it is blocked whenever
    a policy is enabled, whatever the policy requires."""
    if provider.HasField("attestation"):
        return unmet(provider_id, provider.attestation, rules)
    if not enabled:
        return ()
    return (Unmet(CUSTOM_PROVIDER_ATTESTATION, UNKNOWN), *unmet(provider_id, None, rules))


def model_unmet(model_id: str, rules: Rules) -> Failures:
    """The model allow/deny lists, applied to the model id without provider prefix."""
    if model_id in rules.model_deny:
        return (Unmet(MODEL_DENYLIST, NOT_MET),)
    if rules.model_allow and model_id not in rules.model_allow:
        return (Unmet(MODEL_ALLOWLIST, NOT_MET),)
    return ()


def describe(failures: Failures) -> str:
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
