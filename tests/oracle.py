"""An independent, deliberately plain restatement of the compliance rules, used by the
property tests and the fuzzer to check the decision code (never the other way round)."""

from __future__ import annotations


def oracle_model_allowed(model: str, p: dict) -> bool:
    if model in p["model_denylist"]:
        return False
    return not p["model_allowlist"] or model in p["model_allowlist"]


def oracle_compliant(attrs: dict | None, p: dict, provider: str = "") -> bool:
    """Plain restatement of the rules: explicit values only; unknown never satisfies."""
    if not p["enabled"]:
        return True
    if provider in p["provider_denylist"]:
        return False
    if p["provider_allowlist"] and provider not in p["provider_allowlist"]:
        return False
    a = attrs or {}
    soc2 = a.get("soc2") is True or a.get("soc2_report") in (2, 3)
    iso = a.get("iso27001") is True
    if p["require_soc2_type2"] and a.get("soc2_report") != 3:
        return False
    if p["require_zero_data_retention"] and not (a.get("logs_prompts") is False and a.get("prompt_retention_days") == 0):
        return False
    if p["allowed_countries"] and a.get("headquarters_country") not in p["allowed_countries"]:
        return False
    if p["require_soc2"] and p["require_iso27001"] and p["certifications"] == 2:
        if not (soc2 or iso):
            return False
    else:
        if p["require_soc2"] and not soc2:
            return False
        if p["require_iso27001"] and not iso:
            return False
    if p["require_gdpr"] and a.get("gdpr") is not True:
        return False
    if p["require_no_prompt_training"] and a.get("trains_on_prompts") is not False:
        return False
    if p["require_no_prompt_logging"] and a.get("logs_prompts") is not False:
        return False
    return True
