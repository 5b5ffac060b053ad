"""Hypothesis strategies and builders shared by the property tests and the fuzzers, and the
outcome accounting that proves a run exercised what it claims to.

The draws are weighted towards what passes (enabled policies, few requirements, providers that
publish satisfying values), because "allowed => every allowed provider is compliant" is only
checked on allowed decisions: a generator that mostly produces denials checks nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from hypothesis import strategies as st

from authz.policy import requirements
from authz.policy.catalog import CatalogIndex
from authz.v1 import catalog_pb2

# Values for each DataPolicy attribute a requirement reads, weighted towards what satisfies it
# (None: unknown). Shared with the atheris fuzzer; the registry test refuses a requirement
# that reads an attribute missing here.
ATTRIBUTE_CHOICES: dict[str, list[Any]] = {
    "soc2": [True, True, True, False, None],
    "iso27001": [True, True, True, False, None],
    "iso42001": [True, True, True, False, None],
    "gdpr": [True, True, True, False, None],
    "trains_on_prompts": [False, False, False, True, None],
    "logs_prompts": [False, False, False, True, None],
    "soc2_report": [0, 1, 2, 3, 3],
    "prompt_retention_days": [None, 0, 0, 30],
    "headquarters_country": ["", "US", "US", "FR"],
    "processing_regions": [[], ["us"], ["eu"], ["us", "eu"], ["eu"]],
    "stealth": [False, False, False, True, None],
}
# Values for the policy fields that are not a require_* flag, other than the id lists (drawn
# from the catalog at hand). The registry test refuses a policy field missing here.
VALUE_FIELD_CHOICES: dict[str, list[str]] = {
    "allowed_countries": ["US", "DE"],
    "data_residency": ["eu", "us"],
}
ID_LIST_FIELDS = ("provider_allowlist", "provider_denylist", "model_allowlist", "model_denylist")
FLAGS = tuple(r.policy_field for r in requirements.FLAGGED)
_RARELY = st.sampled_from([False, False, False, True])


def data_policies() -> st.SearchStrategy[dict[str, Any] | None]:
    """A provider's data policy as a dict (None: it publishes none); None values are unknown."""
    return st.one_of(
        st.none(),
        *[st.fixed_dictionaries({name: st.sampled_from(choices) for name, choices in ATTRIBUTE_CHOICES.items()})] * 4,
    )


def _mostly_empty(items: list[str], max_size: int) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(items), max_size=max_size, unique=True))


def policies(providers: list[str], models: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """CompliancePolicy fields, every rule on or off, lists drawn from the given ids."""
    return st.fixed_dictionaries(
        {
            "enabled": st.sampled_from([True, True, True, True, False]),
            "mode": st.sampled_from([0, 1, 1, 1, 2]),
            "certifications": st.sampled_from([0, 1, 2]),
            **{flag: _RARELY for flag in FLAGS},
            **{name: _mostly_empty(choices, 2) for name, choices in VALUE_FIELD_CHOICES.items()},
            "provider_allowlist": _mostly_empty(providers, 3),
            "provider_denylist": _mostly_empty(providers, 3),
            "model_allowlist": _mostly_empty(models, 2),
            "model_denylist": _mostly_empty(models, 2),
        }
    )


def catalog_index(providers: dict[str, dict[str, Any] | None], models: dict[str, list[str]]) -> CatalogIndex:
    """Build an index straight from dicts (no validation: generated data may be odd on purpose)."""
    cat = catalog_pb2.Catalog(version=1)
    for pid, attrs in providers.items():
        p = cat.providers[pid]
        p.name = pid
        if attrs is not None:
            p.data_policy.SetInParent()
            for k, v in attrs.items():
                if isinstance(v, list):
                    getattr(p.data_policy, k).extend(v)
                elif v is not None and v != "":
                    setattr(p.data_policy, k, v)
    for m, ps in models.items():
        cat.models[m].providers.extend(ps)
    return CatalogIndex.build(cat)


def assert_reached(seen: Counter[str], expected: Iterable[str], min_share: float = 0.0, *, of: str) -> None:
    """Fail when a run never produced one of the outcome classes it exists to exercise (or
    produced it less often than `min_share` of all examples)."""
    total = sum(seen.values())
    assert total, f"{of}: no examples ran"
    missing = [c for c in expected if seen[c] == 0 or seen[c] / total < min_share]
    assert not missing, f"{of}: outcome classes not reached (or below {min_share:.0%}): {missing}; got {dict(seen)}"
