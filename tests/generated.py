"""Hypothesis strategies and builders shared by the property tests and the fuzzers, and the
outcome accounting that proves a run exercised what it claims to.

The draws are weighted towards what passes (enabled policies, few requirements, providers that
publish satisfying values), because "allowed => every allowed provider is compliant" is only
checked on allowed decisions: a generator that mostly produces denials checks nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from hypothesis import strategies as st

from authz.catalog import CatalogIndex
from authz.v1 import catalog_pb2

ATTRS = ("soc2", "iso27001", "gdpr", "trains_on_prompts", "logs_prompts")
# Attributes a requirement wants True, and those it wants False: drawn mostly satisfying.
_WANT_TRUE = st.sampled_from([True, True, True, False, None])
_WANT_FALSE = st.sampled_from([False, False, False, True, None])
_RARELY = st.sampled_from([False, False, False, True])


def data_policies():
    """A provider's data policy as a dict (None: it publishes none); None values are unknown."""
    return st.one_of(st.none(), *[st.fixed_dictionaries(
        {"soc2": _WANT_TRUE, "iso27001": _WANT_TRUE, "gdpr": _WANT_TRUE,
         "trains_on_prompts": _WANT_FALSE, "logs_prompts": _WANT_FALSE,
         "soc2_report": st.sampled_from([0, 1, 2, 3, 3]),
         "prompt_retention_days": st.sampled_from([None, 0, 0, 30]),
         "headquarters_country": st.sampled_from(["", "US", "US", "FR"])})] * 4)


def _mostly_empty(items: list[str], max_size: int):
    return st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(items), max_size=max_size, unique=True))


def policies(providers: list[str], models: list[str]):
    """CompliancePolicy fields, every rule on or off, lists drawn from the given ids."""
    return st.fixed_dictionaries({
        "enabled": st.sampled_from([True, True, True, True, False]),
        "mode": st.sampled_from([0, 1, 1, 1, 2]),
        "require_soc2": _RARELY,
        "require_iso27001": _RARELY,
        "certifications": st.sampled_from([0, 1, 2]),
        "require_gdpr": _RARELY,
        "require_no_prompt_training": _RARELY,
        "require_no_prompt_logging": _RARELY,
        "require_soc2_type2": _RARELY,
        "require_zero_data_retention": _RARELY,
        "allowed_countries": _mostly_empty(["US", "DE"], 2),
        "provider_allowlist": _mostly_empty(providers, 3),
        "provider_denylist": _mostly_empty(providers, 3),
        "model_allowlist": _mostly_empty(models, 2),
        "model_denylist": _mostly_empty(models, 2),
    })


def catalog_index(providers: dict[str, dict | None], models: dict[str, list[str]]) -> CatalogIndex:
    """Build an index straight from dicts (no validation: generated data may be odd on purpose)."""
    cat = catalog_pb2.Catalog(version=1)
    for pid, attrs in providers.items():
        p = cat.providers[pid]
        p.name = pid
        if attrs is not None:
            p.data_policy.SetInParent()
            for k, v in attrs.items():
                if v is not None and v != "":
                    setattr(p.data_policy, k, v)
    for m, ps in models.items():
        cat.models[m].providers.extend(ps)
    return CatalogIndex.build(cat)


def assert_reached(seen: Counter, expected: Iterable[str], min_share: float = 0.0, *, of: str) -> None:
    """Fail when a run never produced one of the outcome classes it exists to exercise (or
    produced it less often than `min_share` of all examples)."""
    total = sum(seen.values())
    assert total, f"{of}: no examples ran"
    missing = [c for c in expected if seen[c] == 0 or seen[c] / total < min_share]
    assert not missing, f"{of}: outcome classes not reached (or below {min_share:.0%}): {missing}; got {dict(seen)}"
