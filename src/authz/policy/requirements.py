"""Every requirement a Provider Compliance Policy can make, in one table.

Why one table: a requirement used to live in a dozen places (labels, canonical order, the
check, the policy flag, the header a client may send, the settings page). Now a row here
produces all of them: `rules.py` derives labels, order, checks and which policy field asks for
it; the admin API serves the rows to the settings page (ListRequirements); the tests refuse a
row without a hypothesis strategy, an oracle clause or a line in docs/policy.md
(tests/unit/test_requirements_registry.py). docs/contributing.md has the recipe.

A check reads one provider's published data policy and answers None (met), UNKNOWN (the
provider publishes no value the requirement needs) or NOT_MET. Fail closed: only an explicit,
satisfying value is ever met.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from authz.v1 import catalog_pb2, policy_pb2

UNKNOWN = "unknown"  # the provider publishes no value for an attribute the requirement needs
NOT_MET = "not_met"  # the provider publishes a value that does not satisfy it


class Values(Protocol):
    """The values a policy gives its requirements (rules.Rules has them)."""

    @property
    def countries(self) -> frozenset[str]: ...

    @property
    def regions(self) -> frozenset[str]: ...


# (a provider's data policy or None, the policy's values) -> None (met), UNKNOWN or NOT_MET
Check = Callable[["catalog_pb2.DataPolicy | None", Values], "str | None"]

# Groups, as the settings page shows them.
LISTS = "lists"
CERTIFICATIONS = "certifications"
DATA_HANDLING = "data_handling"
LOCATION = "location"
IDENTITY = "identity"


@dataclass(frozen=True, slots=True)
class Requirement:
    name: str  # stable id: deny bodies, events, x-compliance-require
    label: str  # what a person reads ("SOC 2 Type 2")
    group: str
    # The CompliancePolicy field whose truthiness asks for it ("" when derived, e.g. SOC 2 or
    # ISO 27001 comes from both flags plus certifications=any).
    policy_field: str = ""
    # DataPolicy fields the check reads; the property tests need a strategy for each.
    attributes: tuple[str, ...] = ()
    check: Check | None = None  # None: a list rule, judged by id rather than by data policy
    clause: str = ""  # list rules read as a clause of their own in deny messages
    client_settable: bool = False  # a client may add it with x-compliance-require
    hint: str = ""  # the settings page's explanation


def _explicit(attribute: str, wanted: bool) -> Check:
    def check(dp: catalog_pb2.DataPolicy | None, _values: Values) -> str | None:
        if dp is None or not dp.HasField(attribute):
            return UNKNOWN
        return None if getattr(dp, attribute) is wanted else NOT_MET

    return check


_SOC2_REPORTS = (catalog_pb2.SOC2_REPORT_TYPE1, catalog_pb2.SOC2_REPORT_TYPE2)


def _soc2(dp: catalog_pb2.DataPolicy | None, _values: Values) -> str | None:
    if dp is not None and ((dp.HasField("soc2") and dp.soc2) or dp.soc2_report in _SOC2_REPORTS):
        return None
    if dp is None or (not dp.HasField("soc2") and dp.soc2_report == catalog_pb2.SOC2_REPORT_UNSPECIFIED):
        return UNKNOWN
    return NOT_MET


_iso27001 = _explicit("iso27001", True)


def _soc2_or_iso27001(dp: catalog_pb2.DataPolicy | None, values: Values) -> str | None:
    # As LLMGateway reads "SOC 2 or ISO 27001": a SOC 2 Type 2 report, or ISO 27001. A Type 1
    # report alone is a point-in-time design review, not evidence that controls operate.
    soc2, iso = _soc2_type2(dp, values), _iso27001(dp, values)
    if soc2 is None or iso is None:
        return None
    return UNKNOWN if UNKNOWN in (soc2, iso) else NOT_MET


def _soc2_type2(dp: catalog_pb2.DataPolicy | None, _values: Values) -> str | None:
    if dp is None or dp.soc2_report == catalog_pb2.SOC2_REPORT_UNSPECIFIED:
        return UNKNOWN
    return None if dp.soc2_report == catalog_pb2.SOC2_REPORT_TYPE2 else NOT_MET


def _zero_data_retention(dp: catalog_pb2.DataPolicy | None, _values: Values) -> str | None:
    if dp is None:
        return UNKNOWN
    logs = dp.logs_prompts if dp.HasField("logs_prompts") else None
    days = dp.prompt_retention_days if dp.HasField("prompt_retention_days") else None
    if logs is True or (days is not None and days > 0):
        return NOT_MET
    if logs is None or days is None:
        return UNKNOWN
    return None


def _headquarters(dp: catalog_pb2.DataPolicy | None, values: Values) -> str | None:
    if dp is None or not dp.headquarters_country:
        return UNKNOWN
    return None if dp.headquarters_country in values.countries else NOT_MET


def _residency(dp: catalog_pb2.DataPolicy | None, values: Values) -> str | None:
    # Every region the provider may process a prompt in must be allowed: it may route to any.
    if dp is None or not dp.processing_regions:
        return UNKNOWN
    return None if set(dp.processing_regions) <= values.regions else NOT_MET


# Canonical order: failures are always reported in the order of this table.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "provider_denylist", "provider deny list", LISTS, "provider_denylist", clause="is on the provider deny list"
    ),
    Requirement(
        "provider_allowlist",
        "provider allow list",
        LISTS,
        "provider_allowlist",
        clause="is not on the provider allow list",
    ),
    Requirement("model_denylist", "model deny list", LISTS, "model_denylist", clause="is on the model deny list"),
    Requirement(
        "model_allowlist", "model allow list", LISTS, "model_allowlist", clause="is not on the model allow list"
    ),
    Requirement(
        "custom_provider_attestation",
        "custom provider attestation",
        LISTS,
        clause="is a custom provider without a compliance attestation",
    ),
    Requirement(
        "soc2",
        "SOC 2",
        CERTIFICATIONS,
        "require_soc2",
        ("soc2", "soc2_report"),
        _soc2,
        client_settable=True,
        hint="a SOC 2 report of either type, or a published SOC 2 attestation",
    ),
    Requirement(
        "soc2_type2",
        "SOC 2 Type 2",
        CERTIFICATIONS,
        "require_soc2_type2",
        ("soc2_report",),
        _soc2_type2,
        client_settable=True,
        hint="SOC 2 Type 2 report (a Type 1 report does not count)",
    ),
    Requirement(
        "iso27001",
        "ISO 27001",
        CERTIFICATIONS,
        "require_iso27001",
        ("iso27001",),
        _iso27001,
        client_settable=True,
        hint="ISO/IEC 27001 certified",
    ),
    Requirement(
        "soc2_or_iso27001",
        "SOC 2 or ISO 27001",
        CERTIFICATIONS,
        "require_soc2_or_iso27001",
        ("soc2", "soc2_report", "iso27001"),
        _soc2_or_iso27001,
        client_settable=True,
        hint="a SOC 2 Type 2 report or ISO 27001 (either suffices; combines with the single requirements)",
    ),
    Requirement(
        "iso42001",
        "ISO 42001",
        CERTIFICATIONS,
        "require_iso42001",
        ("iso42001",),
        _explicit("iso42001", True),
        client_settable=True,
        hint="ISO/IEC 42001 certified (an AI management system)",
    ),
    Requirement(
        "gdpr",
        "GDPR",
        DATA_HANDLING,
        "require_gdpr",
        ("gdpr",),
        _explicit("gdpr", True),
        client_settable=True,
        hint="GDPR compliant",
    ),
    Requirement(
        "no_prompt_training",
        "no training on prompts",
        DATA_HANDLING,
        "require_no_prompt_training",
        ("trains_on_prompts",),
        _explicit("trains_on_prompts", False),
        client_settable=True,
        hint="does not train on prompts",
    ),
    Requirement(
        "no_prompt_logging",
        "no prompt logging",
        DATA_HANDLING,
        "require_no_prompt_logging",
        ("logs_prompts",),
        _explicit("logs_prompts", False),
        client_settable=True,
        hint="does not log prompts",
    ),
    Requirement(
        "zero_data_retention",
        "zero data retention",
        DATA_HANDLING,
        "require_zero_data_retention",
        ("logs_prompts", "prompt_retention_days"),
        _zero_data_retention,
        client_settable=True,
        hint="no prompt logging and 0 days of retention, both stated",
    ),
    Requirement(
        "no_stealth_provider",
        "a disclosed operator (not a stealth provider)",
        IDENTITY,
        "block_stealth_providers",
        ("stealth",),
        _explicit("stealth", False),
        client_settable=True,
        hint="the company running the endpoint is named; an undisclosed (stealth) platform is blocked",
    ),
    Requirement(
        "headquarters_country",
        "headquarters in an allowed country",
        LOCATION,
        "allowed_countries",
        ("headquarters_country",),
        _headquarters,
        hint="ISO 3166-1 alpha-2 codes; the provider's headquarters must be one of them",
    ),
    Requirement(
        "data_residency",
        "data processed only in allowed regions",
        LOCATION,
        "data_residency",
        ("processing_regions",),
        _residency,
        hint="region codes (us, eu, ...): every region the provider processes prompts in must be one of them; "
        "headquarters never count",
    ),
)

BY_NAME: dict[str, Requirement] = {r.name: r for r in REQUIREMENTS}
ORDER: dict[str, int] = {r.name: i for i, r in enumerate(REQUIREMENTS)}
LABELS: dict[str, str] = {r.name: r.label for r in REQUIREMENTS}
# Requirements judged against a provider's data policy (the rest are lists, judged by id).
ATTRIBUTE_REQUIREMENTS: tuple[Requirement, ...] = tuple(r for r in REQUIREMENTS if r.check is not None)
# Asked for by a boolean policy field of its own (the settings page's checkboxes).
_BOOLEANS = {f.name for f in policy_pb2.CompliancePolicy.DESCRIPTOR.fields if f.type == f.TYPE_BOOL} - {"enabled"}
FLAGGED: tuple[Requirement, ...] = tuple(r for r in ATTRIBUTE_REQUIREMENTS if r.policy_field in _BOOLEANS)
CLIENT_SETTABLE: tuple[str, ...] = tuple(r.name for r in REQUIREMENTS if r.client_settable)
