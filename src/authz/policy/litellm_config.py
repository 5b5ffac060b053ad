"""A LiteLLM proxy config -> the catalog's model -> providers map, as that gateway will route.

In front of LiteLLM, the providers that can serve a model are the deployments its config
lists under that `model_name` (several for load balancing, possibly on different providers),
not what the public catalog says. This reads `model_list` (each deployment's provider from its
`litellm_params.model` prefix, or `custom_llm_provider`), `router_settings.model_group_alias`,
and wildcard routes (`openai/*`), and merges them with the provider data policies of a
catalog. A deployment whose provider the catalog does not know is reported by name and added
as a provider with no published data: unknown, it fails every requirement (fail closed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from authz.policy import catalog as catalog_mod
from authz.policy.naming import LITELLM_PROVIDERS
from authz.v1 import catalog_pb2

# LiteLLM infers a provider for well-known bare model names; only these families are read
# without a prefix (anything else must name its provider, or it is reported).
_BARE = (
    (re.compile(r"^(gpt-|o[1-9]|chatgpt-|text-embedding-|whisper-|dall-e-|tts-|omni-moderation)"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
)


class ConfigError(ValueError):
    pass


@dataclass
class Imported:
    catalog: catalog_pb2.Catalog
    unknown_providers: dict[str, list[str]] = field(default_factory=dict)  # provider -> model names
    wildcards: list[str] = field(default_factory=list)  # "openai/*": judged as pinned names
    skipped: list[str] = field(default_factory=list)  # deployments whose provider cannot be told


def provider_of(params: dict[str, Any]) -> str | None:
    """The LiteLLM provider prefix of one deployment, as LiteLLM picks it."""
    explicit = params.get("custom_llm_provider")
    if isinstance(explicit, str) and explicit:
        return explicit
    model = params.get("model")
    if not isinstance(model, str) or not model:
        return None
    prefix, slash, _ = model.partition("/")
    if slash:
        return prefix
    for pattern, provider in _BARE:
        if pattern.match(model):
            return provider
    return None


def import_config(text: str, base: catalog_pb2.Catalog) -> Imported:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_list"), list):
        raise ConfigError("a LiteLLM proxy config has a 'model_list' list of deployments")
    result = Imported(catalog_pb2.Catalog())
    out = result.catalog
    out.CopyFrom(base)
    out.ClearField("models")
    served: dict[str, list[str]] = {}
    for i, deployment in enumerate(config["model_list"]):
        if not isinstance(deployment, dict):
            raise ConfigError(f"model_list[{i}] is not a mapping")
        name, params = deployment.get("model_name"), deployment.get("litellm_params") or {}
        if not isinstance(name, str) or not name or not isinstance(params, dict):
            raise ConfigError(f"model_list[{i}]: needs model_name and litellm_params")
        prefix = provider_of(params)
        if prefix is None:
            result.skipped.append(f"{name} ({params.get('model')!r}: no provider prefix)")
            continue
        if "*" in name:
            result.wildcards.append(name)
            continue
        provider = LITELLM_PROVIDERS.get(prefix, prefix)
        if provider not in base.providers:
            result.unknown_providers.setdefault(provider, []).append(name)
            if catalog_mod.PROVIDER_ID.fullmatch(provider) and provider not in out.providers:
                out.providers[provider].name = f"{prefix} (from the LiteLLM config; no published data)"
        providers = served.setdefault(name, [])
        if provider not in providers:
            providers.append(provider)
    aliases = (config.get("router_settings") or {}).get("model_group_alias") or {}
    for alias, target in aliases.items():
        target = target.get("model") if isinstance(target, dict) else target
        if isinstance(alias, str) and isinstance(target, str) and target in served and alias not in served:
            out.model_aliases[alias] = target
    for name, providers in served.items():
        if not catalog_mod.MODEL_ID.fullmatch(name) or name.partition("/")[0] in out.providers:
            result.skipped.append(f"{name} (not usable as a model name: it reads as a provider pin)")
            continue
        out.models[name].providers.extend(p for p in providers if p in out.providers)
    for alias, target in list(out.model_aliases.items()):
        if target not in out.models:  # the base catalog's alias of a model this gateway does not serve
            del out.model_aliases[alias]
    if not out.models:
        raise ConfigError("no deployment in model_list names a provider this catalog can use")
    out.description = (base.description + " | " if base.description else "") + "models from a LiteLLM config"
    catalog_mod.validate(out)
    return result
