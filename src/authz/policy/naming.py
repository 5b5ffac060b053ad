"""Model names as the gateway behind us spells them -> the catalog's names.

Each gateway has its own way to name a model and a provider: LiteLLM prefixes the provider
(`together_ai/llama-3.3-70b-instruct`), OpenRouter puts the model's author in front
(`meta-llama/llama-3.3-70b-instruct` names a model and lets the router pick the provider),
LLMGateway uses its own provider ids. A naming profile (setting `naming_profile`) maps those
spellings onto catalog ids, and the catalog's own aliases map other names for the same model
or provider. Matching is exact: no case folding, no Unicode folding, no trimming, so a
look-alike stays an unknown name and fails closed. A profile only adds mappings: what it does
not know is read as our own (native) spelling, and an unknown name stays unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

NATIVE, LITELLM, OPENROUTER, LLMGATEWAY, PORTKEY = "native", "litellm", "openrouter", "llmgateway", "portkey"
PROFILES = (NATIVE, LITELLM, OPENROUTER, LLMGATEWAY, PORTKEY)

# LiteLLM's provider prefixes (litellm.LlmProviders, docs.litellm.ai/docs/providers) -> the
# provider ids our catalogs use. A prefix whose provider is not in the loaded catalog maps to
# nothing and the name stays unknown.
LITELLM_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_text": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws-bedrock",
    "sagemaker": "aws-sagemaker",
    "vertex_ai": "google-vertex",
    "vertex_ai_beta": "google-vertex",
    "gemini": "google-ai-studio",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "deepinfra": "deepinfra",
    "groq": "groq",
    "mistral": "mistral",
    "codestral": "mistral",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "xai": "xai",
    "deepseek": "deepseek",
    "novita": "novita",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "nebius": "nebius",
    "sambanova": "sambanova",
    "moonshot": "moonshot",
    "openrouter": "openrouter",
    "dashscope": "alibaba",
    "nvidia_nim": "nvidia",
    "hyperbolic": "hyperbolic",
    "lambda_ai": "lambda",
}

# LLMGateway's provider ids (theopenco/llmgateway packages/models/src/providers.ts) where they
# differ from ours.
LLMGATEWAY_PROVIDERS: dict[str, str] = {
    "together-ai": "together",  # not "together.ai": its gateway answers "Provider 'together.ai' not found"
    "google-ai-studio": "google-ai-studio",
    "google-vertex": "google-vertex",
    "aws-bedrock": "aws-bedrock",
    "azure": "azure",
    "openai": "openai",
    "anthropic": "anthropic",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "groq": "groq",
    "novita": "novita",
    "fireworks": "fireworks",
    "deepinfra": "deepinfra",
    "xai": "xai",
    "cerebras": "cerebras",
    "perplexity": "perplexity",
    "alibaba": "alibaba",
    "moonshot": "moonshot",
    "nebius": "nebius",
}


# Portkey's provider ids (Portkey-AI/gateway src/globals.ts; `x-portkey-provider`, a config
# target's `provider`) -> ours. authz names a Portkey target "<portkey id>/<model>".
PORTKEY_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure-openai": "azure",
    "azure-ai": "azure",
    "bedrock": "aws-bedrock",
    "vertex-ai": "google-vertex",
    "google": "google-ai-studio",
    "groq": "groq",
    "deepseek": "deepseek",
    "together-ai": "together",
    "mistral-ai": "mistral",
    "fireworks-ai": "fireworks",
    "deepinfra": "deepinfra",
    "perplexity-ai": "perplexity",
    "cohere": "cohere",
    "x-ai": "xai",
    "cerebras": "cerebras",
    "novita-ai": "novita",
    "openrouter": "openrouter",
    "dashscope": "alibaba",
    "nebius": "nebius",
    "sambanova": "sambanova",
    "moonshot": "moonshot",
    "lambda": "lambda",
    "hyperbolic": "hyperbolic",
}
_TABLES = {LITELLM: LITELLM_PROVIDERS, LLMGATEWAY: LLMGATEWAY_PROVIDERS, PORTKEY: PORTKEY_PROVIDERS}


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
            found = _TABLES.get(profile, {}).get(name)
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
    if profile == OPENROUTER:
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
    if profile == LLMGATEWAY and ":" in rest:
        # "alibaba/qwen-plus:cn-beijing": the region after the last ':' (LLMGateway's
        # apps/gateway/src/chat/tools/parse-model-input.ts, parseModelInput) is the catalog's
        # regional entry; a region the catalog has no entry for stays unknown.
        rest, _, region = rest.rpartition(":")
        regional = f"{provider}-{region}"
        if regional not in names.providers:
            return "", name
        provider = regional
    return provider, names.model(rest) or rest


def _reverse(table: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for prefix, provider in table.items():
        found.setdefault(provider, prefix)  # the first prefix listed is the gateway's usual one
    return found


_SPELLING = {profile: _reverse(table) for profile, table in _TABLES.items()}


def spell(provider: str, model: str, profile: str, region_of: str = "") -> str:
    """A pinned name as the gateway's clients write it (what a deny body suggests); a regional
    entry (`region_of` its provider) as LLMGateway names a region: "alibaba/qwen-plus:cn-beijing"."""
    if profile == LLMGATEWAY and region_of and provider.startswith(region_of + "-"):
        return f"{spell(region_of, model, profile)}:{provider[len(region_of) + 1 :]}"
    return f"{_SPELLING.get(profile, {}).get(provider, provider)}/{model}"
