"""An independent, deliberately plain restatement of the compliance rules, used by the
property tests and the fuzzer to check the decision code (never the other way round).

One clause per requirement of authz.policy.requirements (the registry test refuses a requirement
without one), and `asked` restates which policy fields ask for which requirement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Policy = dict[str, Any]  # CompliancePolicy fields, as the strategies draw them
Attributes = dict[str, Any]  # published DataPolicy attributes; missing or None: unknown

# requirement name -> is it met by these published attributes (a dict; a missing or None value is
# unknown) under policy p? Written out by hand, not derived from the code under test.
CLAUSES: dict[str, Callable[[Attributes, Policy], bool]] = {
    "soc2": lambda a, p: a.get("soc2") is True or a.get("soc2_report") in (2, 3),
    "soc2_type2": lambda a, p: a.get("soc2_report") == 3,
    "iso27001": lambda a, p: a.get("iso27001") is True,
    # LLMGateway's reading: a SOC 2 *Type 2* report or ISO 27001 (Type 1 alone does not count)
    "soc2_or_iso27001": lambda a, p: a.get("soc2_report") == 3 or a.get("iso27001") is True,
    "iso42001": lambda a, p: a.get("iso42001") is True,
    "gdpr": lambda a, p: a.get("gdpr") is True,
    "no_prompt_training": lambda a, p: a.get("trains_on_prompts") is False,
    "no_prompt_logging": lambda a, p: a.get("logs_prompts") is False,
    "zero_data_retention": lambda a, p: a.get("logs_prompts") is False and a.get("prompt_retention_days") == 0,
    "headquarters_country": lambda a, p: a.get("headquarters_country") in p["allowed_countries"],
    "no_stealth_provider": lambda a, p: a.get("stealth") is False,
    "data_residency": lambda a, p: (
        bool(a.get("processing_regions")) and all(r in p["data_residency"] for r in a["processing_regions"])
    ),
}


def asked(p: Policy) -> set[str]:
    """The requirements an enabled policy p makes."""
    names = set()
    if p["require_soc2"] and p["require_iso27001"] and p["certifications"] == 2:
        names.add("soc2_or_iso27001")
    else:
        names |= {n for n in ("soc2", "iso27001") if p["require_" + n]}
    names |= {
        n
        for n in ("soc2_type2", "iso42001", "gdpr", "no_prompt_training", "no_prompt_logging", "zero_data_retention")
        if p["require_" + n]
    }
    if p.get("require_soc2_or_iso27001"):  # its own flag: combines with the single requirements
        names.add("soc2_or_iso27001")
    if p["allowed_countries"]:
        names.add("headquarters_country")
    if p["block_stealth_providers"]:
        names.add("no_stealth_provider")
    if p.get("data_residency"):
        names.add("data_residency")
    return names


def oracle_model_allowed(model: str, p: Policy) -> bool:
    if model in p["model_denylist"]:
        return False
    return not p["model_allowlist"] or model in p["model_allowlist"]


def oracle_compliant(attrs: Attributes | None, p: Policy, provider: str = "") -> bool:
    """Plain restatement of the rules: explicit values only; unknown never satisfies."""
    if not p["enabled"]:
        return True
    if provider in p["provider_denylist"]:
        return False
    if p["provider_allowlist"] and provider not in p["provider_allowlist"]:
        return False
    return all(CLAUSES[name](attrs or {}, p) for name in asked(p))
