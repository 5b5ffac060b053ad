"""Model names as the gateway behind us spells them -> the catalog's names.

Each gateway has its own way to name a model and a provider: LiteLLM prefixes the provider
(`together_ai/llama-3.3-70b-instruct`), OpenRouter puts the model's author in front
(`meta-llama/llama-3.3-70b-instruct` names a model and lets the router pick the provider),
LLMGateway uses its own provider ids. A naming profile (setting `naming_profile`: a gateway's
Description in authz.policy.gateways, its Spelling) maps those spellings onto catalog ids, and
the catalog's own aliases map other names for the same model or provider. Matching is exact: no
case folding, no Unicode folding, no trimming, so a look-alike stays an unknown name and fails
closed. A profile only adds mappings: what it does not know is read as our own (native)
spelling, and an unknown name stays unknown.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from authz.policy import gateways
from authz.policy.gateways.description import Spelling

NATIVE = "native"  # our own spelling: catalog ids and the catalog's aliases


@dataclass(frozen=True, slots=True)
class Names:
    """The catalog's names and aliases, for one loaded catalog."""

    providers: frozenset[str]
    models: frozenset[str]
    provider_aliases: dict[str, str]
    model_aliases: dict[str, str]

    def provider(self, name: str, profile: str = NATIVE) -> str | None:
        """The catalog provider id for a provider name, or None."""
        if name in self.providers:
            return name
        found = self.provider_aliases.get(name)
        if found is None:
            found = gateways.named(profile).spelling.providers.get(name)
            # The table names our usual id; a catalog may spell it differently and alias ours.
            found = self.provider_aliases.get(found, found) if found is not None else None
        return found if found in self.providers else None

    def model(self, name: str) -> str | None:
        """The catalog model id for a model name, or None."""
        if name in self.models:
            return name
        found = self.model_aliases.get(name)
        return found if found in self.models else None


def resolve(
    name: str, names: Names, profile: str, is_custom: Callable[[str], bool] = lambda _: False
) -> tuple[str, str]:
    """(pinned provider or "", model name) for a requested model name.

    The model part is a catalog id when known; otherwise it is returned as written (and the
    decision finds it unknown, or among the org's custom providers)."""
    # A whole name the catalog knows as a model wins: "meta-llama/llama-3.3-70b-instruct" may be
    # an alias, and an OpenRouter-style name is never a provider pin.
    whole = names.model(name)
    if whole is not None:
        return "", whole
    prefix, slash, rest = name.partition("/")
    if not slash:
        return "", name
    spelling = gateways.named(profile).spelling
    if spelling.author_prefix:
        # author/model: the author is not where the request goes, the router picks a provider.
        # Names the catalog does not alias are read only for authors that are also providers
        # (deepseek/deepseek-v3.2); any other author/model stays unknown, never a guess.
        model = names.model(rest) if names.provider(prefix) is not None else None
        return ("", model) if model is not None else ("", name)
    provider = names.provider(prefix, profile)
    if provider is None and is_custom(prefix):
        return prefix, rest
    if provider is None:
        return "", name
    if spelling.region_suffix and ":" in rest:
        # "alibaba/qwen-plus:cn-beijing": the region after the last ':' (LLMGateway's
        # apps/gateway/src/chat/tools/parse-model-input.ts, parseModelInput) is the catalog's
        # regional entry; a region the catalog has no entry for stays unknown.
        rest, _, region = rest.rpartition(":")
        regional = f"{provider}-{region}"
        if regional not in names.providers:
            return "", name
        provider = regional
    return provider, names.model(rest) or rest


@functools.cache
def _spelled_as(spelling: Spelling) -> dict[str, str]:
    """Catalog provider -> the gateway's id for it (a Spelling is one object per gateway)."""
    found: dict[str, str] = {}
    for prefix, provider in spelling.providers.items():
        found.setdefault(provider, prefix)  # the first prefix listed is the gateway's usual one
    return found


def spell(provider: str, model: str, profile: str, region_of: str = "") -> str:
    """A pinned name as the gateway's clients write it (what a deny body suggests); a regional
    entry (`region_of` its provider) as LLMGateway names a region: "alibaba/qwen-plus:cn-beijing"."""
    spelling = gateways.named(profile).spelling
    if spelling.region_suffix and region_of and provider.startswith(region_of + "-"):
        return f"{spell(region_of, model, profile)}:{provider[len(region_of) + 1 :]}"
    return f"{_spelled_as(spelling).get(provider, provider)}/{model}"
