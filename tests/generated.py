"""Hypothesis strategies and builders shared by the property tests and the fuzzers."""

from __future__ import annotations

from hypothesis import strategies as st

from authz.catalog import CatalogIndex
from authz.v1 import catalog_pb2

ATTRS = ("soc2", "iso27001", "gdpr", "trains_on_prompts", "logs_prompts")
TRI = st.sampled_from([True, False, None])


def data_policies():
    """A provider's data policy as a dict (None: it publishes none); None values are unknown."""
    return st.one_of(st.none(), st.fixed_dictionaries(
        {**{a: TRI for a in ATTRS},
         "soc2_report": st.sampled_from([0, 1, 2, 3]),
         "prompt_retention_days": st.sampled_from([None, 0, 30]),
         "headquarters_country": st.sampled_from(["", "US", "FR"])}))


def policies(providers: list[str], models: list[str]):
    """CompliancePolicy fields, every rule on or off, lists drawn from the given ids."""
    return st.fixed_dictionaries({
        "enabled": st.booleans(),
        "mode": st.sampled_from([0, 1, 2]),
        "require_soc2": st.booleans(),
        "require_iso27001": st.booleans(),
        "certifications": st.sampled_from([0, 1, 2]),
        "require_gdpr": st.booleans(),
        "require_no_prompt_training": st.booleans(),
        "require_no_prompt_logging": st.booleans(),
        "require_soc2_type2": st.booleans(),
        "require_zero_data_retention": st.booleans(),
        "allowed_countries": st.lists(st.sampled_from(["US", "DE"]), max_size=2, unique=True),
        "provider_allowlist": st.lists(st.sampled_from(providers), max_size=3, unique=True),
        "provider_denylist": st.lists(st.sampled_from(providers), max_size=3, unique=True),
        "model_allowlist": st.lists(st.sampled_from(models), max_size=2, unique=True),
        "model_denylist": st.lists(st.sampled_from(models), max_size=2, unique=True),
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
