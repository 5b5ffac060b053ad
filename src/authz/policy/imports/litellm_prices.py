"""A second source: LiteLLM's model list (model_prices_and_context_window.json) against a catalog.

LiteLLM ships which provider serves which model name (`litellm_provider` of each entry). Where
its provider maps onto a catalog provider (authz.policy.gateways.litellm.PROVIDERS), the two sources should
agree on the models that provider serves. This only reports: a disagreement is for a person to
check against the provider, never applied to the catalog (docs/policy.md: what each source is
trusted for). Names are compared exactly, as gateways route by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authz.policy import naming
from authz.policy.gateways import litellm as litellm_gateway
from authz.v1 import catalog_pb2


@dataclass
class Comparison:
    compared_providers: list[str] = field(default_factory=list)  # catalog ids both sources know
    only_in_catalog: list[tuple[str, str]] = field(default_factory=list)  # (provider, model)
    only_in_litellm: list[tuple[str, str]] = field(default_factory=list)  # model in the catalog, provider not
    unknown_to_litellm: list[str] = field(default_factory=list)  # catalog providers LiteLLM lists nothing for


def served_by_litellm(prices: dict[str, Any]) -> dict[str, set[str]]:
    """catalog provider id -> model names LiteLLM lists for it (its key without the provider prefix)."""
    served: dict[str, set[str]] = {}
    for key, entry in prices.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("litellm_provider"), str):
            continue  # e.g. "sample_spec"
        prefix = entry["litellm_provider"]
        ours = litellm_gateway.PROVIDERS.get(prefix)
        if ours is None:
            continue
        name = key[len(prefix) + 1 :] if key.startswith(prefix + "/") else key
        served.setdefault(ours, set()).add(name)
    return served


def compare(prices: dict[str, Any], catalog: catalog_pb2.Catalog) -> Comparison:
    served = served_by_litellm(prices)
    names = naming.Names(frozenset(catalog.providers), frozenset(catalog.models), dict(catalog.provider_aliases), {})
    result = Comparison()
    known: dict[str, set[str]] = {}
    for provider_id, models in served.items():
        ours = names.provider(provider_id, naming.NATIVE) or provider_id
        if ours in catalog.providers:
            known.setdefault(ours, set()).update(models)
    result.compared_providers = sorted(known)
    listed: dict[str, set[str]] = {}
    for model, serving in catalog.models.items():
        for provider_id in serving.providers:
            if catalog.providers[provider_id].region_of:
                continue  # a region of its provider: compared as the provider
            listed.setdefault(provider_id, set()).add(model)
    for provider_id in sorted(listed):
        if provider_id not in known:
            result.unknown_to_litellm.append(provider_id)
            continue
        result.only_in_catalog += [(provider_id, m) for m in sorted(listed[provider_id] - known[provider_id])]
    for provider_id in sorted(known):
        result.only_in_litellm += [
            (provider_id, m)
            for m in sorted(known[provider_id] & set(catalog.models))
            if m not in listed.get(provider_id, set())
        ]
    return result
