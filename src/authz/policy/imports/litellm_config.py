"""A LiteLLM proxy config -> the catalog's model -> providers map, as that gateway will route.

In front of LiteLLM, the providers that can serve a request are those its config can send it
to, not what the public catalog says (docs/gateways.md cites each rule's LiteLLM source):
- a `model_name` is a model group: every deployment listed under it (litellm/router.py,
  Router.set_model_list), each on the provider of its `litellm_params.model` prefix or its
  `custom_llm_provider`, regional where the config says (Bedrock's `aws_region_name` or
  cross-region prefix, Azure's `region_name` or endpoint host, Vertex's `vertex_location`): the
  catalog's entry for that region, else one made from the cloud's region table;
- `router_settings.model_group_alias` names a group by another name;
- a `model_name` with "*" is a wildcard route (router_utils/pattern_match_deployments.py), a
  catch-all "*" included: a requested name that is no group goes where the route sends it;
- fallbacks (`fallbacks`, `context_window_fallbacks`, `content_policy_fallbacks`,
  `default_fallbacks`, in `router_settings` or `litellm_settings`) add the groups they reach,
  chains followed, to a group's candidates: when its deployments fail, those serve the prompt.
A routing setting this module does not read fails the import unless the operator allows it
by name: nothing that moves a prompt is dropped silently. A deployment whose provider the
catalog does not know is reported and added as a provider with no published data (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import yaml

from authz.policy import catalog as catalog_mod
from authz.policy.gateways import litellm as litellm_gateway
from authz.policy.imports import cloud_regions, gateway_import
from authz.policy.imports.gateway_import import ConfigError as ConfigError
from authz.policy.imports.gateway_import import Imported as Imported
from authz.v1 import catalog_pb2

# LiteLLM infers a provider for well-known bare model names; only these families are read
# without a prefix (anything else must name its provider, or it is reported).
_BARE = (
    (re.compile(r"^(gpt-|o[1-9]|chatgpt-|text-embedding-|whisper-|dall-e-|tts-|omni-moderation)"), "openai"),
    (re.compile(r"^claude-"), "anthropic"),
)
FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "default_fallbacks")
# router_settings keys read here, and those that only tune how the router picks among one
# group's deployments (never another group or provider): Router.__init__'s arguments.
_ROUTER_READ = frozenset({*FALLBACK_KEYS, "model_group_alias"})
_ROUTER_INERT = frozenset(
    {
        "routing_strategy", "routing_strategy_args", "num_retries", "timeout", "stream_timeout", "retry_after",
        "allowed_fails", "allowed_fails_policy", "cooldown_time", "disable_cooldowns", "retry_policy",
        "model_group_retry_policy", "enable_pre_call_checks", "enable_tag_filtering", "tag_filtering_match_any",
        "redis_host", "redis_port", "redis_password", "redis_url", "cache_responses", "cache_kwargs",
        "provider_budget_config", "optional_pre_call_checks", "max_fallbacks", "set_verbose", "debug_level",
    }
)  # fmt: skip
# litellm_settings holds mostly logging and caching; these keys of it move requests elsewhere.
_LITELLM_SETTINGS_ROUTING = frozenset({*FALLBACK_KEYS, "model_alias_map", "default_deployment"})
_LITELLM_SETTINGS_READ = frozenset(FALLBACK_KEYS)
# general_settings keys that open routes straight to a provider, past the router.
_GENERAL_ROUTING = frozenset({"pass_through_endpoints"})
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")


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


# Where a deployment says it runs: the litellm_params key LiteLLM reads for each cloud, and that
# cloud's region table (authz.policy.imports.cloud_regions).
_REGION_PARAMS = {
    "aws-bedrock": ("aws_region_name", cloud_regions.AWS),
    "azure": ("region_name", cloud_regions.AZURE),
    "google-vertex": ("vertex_location", cloud_regions.GCP),
}


def _deployment_region(provider: str, params: dict[str, Any]) -> tuple[str, str, str] | None:
    """(region, processing region code or "", where the config says it) of a deployment."""
    key, table = _REGION_PARAMS[provider]
    if provider == "aws-bedrock":
        model = str(params.get("model") or "").partition("/")[2]
        geo = model.partition(".")[0] if model.count(".") >= 2 else ""  # "eu.anthropic.claude-...": cross-region
        if geo in cloud_regions.AWS_GEOGRAPHIES:  # processed anywhere in that area, whatever the endpoint
            return geo, cloud_regions.AWS_GEOGRAPHIES[geo], f"the {geo}. cross-region profile of {model!r}"
    region = params.get(key)
    if isinstance(region, str) and region:
        return region, table.get(region, ""), f"litellm_params.{key} {region!r}"
    base = params.get("api_base")
    if provider == "azure" and isinstance(base, str):
        region = cloud_regions.azure_region_of_host(urlsplit(base).hostname or "")
        if region:
            return region, table.get(region, ""), f"litellm_params.api_base {base!r}"
    return None


def _regional(provider: str, params: dict[str, Any], out: catalog_pb2.Catalog, where: str, notes: list[str]) -> str:
    """The catalog's regional entry for where the deployment runs, added from the cloud's region
    table when the catalog has none; the provider itself (region unknown) when the config does
    not say or names a region no table knows."""
    if provider not in _REGION_PARAMS:
        return provider
    found = _deployment_region(provider, params)
    if found is None:
        return provider
    region, code, said = found
    entry_id = f"{provider}-{region}"
    if entry_id in out.providers:
        return entry_id
    if not code or not catalog_mod.PROVIDER_ID.fullmatch(entry_id):
        notes.append(f"{where}: {said} is no region authz knows; judged as {provider} (processing region unknown)")
        return provider
    parent = out.providers[provider]
    entry = out.providers[entry_id]
    entry.CopyFrom(parent)
    entry.id, entry.name, entry.region_of = entry_id, f"{parent.name} ({region})", provider
    entry.data_policy.processing_regions[:] = [code]
    evidence = entry.data_policy.evidence["processing_regions"]
    evidence.source = f"LiteLLM config {where}: {said} (authz.policy.imports.cloud_regions)"
    evidence.checked_at = ""
    return entry_id


def _check_settings(config: dict[str, Any], allowed: frozenset[str]) -> None:
    """Refuse a routing setting this import does not read, unless the operator allowed it."""
    unread: list[str] = []
    router = config.get("router_settings") or {}
    if not isinstance(router, dict):
        raise ConfigError("router_settings is not a mapping")
    unread += [f"router_settings.{k}" for k in router if k not in _ROUTER_READ | _ROUTER_INERT]
    settings = config.get("litellm_settings") or {}
    if not isinstance(settings, dict):
        raise ConfigError("litellm_settings is not a mapping")
    unread += [f"litellm_settings.{k}" for k in settings if k in _LITELLM_SETTINGS_ROUTING - _LITELLM_SETTINGS_READ]
    general = config.get("general_settings") or {}
    unread += [f"general_settings.{k}" for k in general if isinstance(general, dict) and k in _GENERAL_ROUTING]
    refused = [name for name in unread if name not in allowed]
    if refused:
        raise ConfigError(
            f"{', '.join(refused)}: authz does not read {'this setting' if len(refused) == 1 else 'these settings'}, "
            "which may send prompts to other deployments or providers than the model groups say "
            "(docs/gateways.md). Check what it routes to, then import with --allow-setting NAME for each"
        )


def _fallback_lists(config: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    for section in ("router_settings", "litellm_settings"):
        values = config.get(section) or {}
        for key in FALLBACK_KEYS:
            if values.get(key) is not None:
                yield f"{section}.{key}", values[key]


Edge = tuple[str, str]  # (the name a fallback calls, the setting that says so)


def _fallback_edges(config: dict[str, Any]) -> tuple[dict[str, list[Edge]], list[Edge]]:
    """key -> the names its fallbacks call, and the names every request falls back to ("*",
    default_fallbacks: Router.__init__ appends them as {"*": [...]}), from every fallback list."""
    edges: dict[str, list[Edge]] = {}
    generic: list[Edge] = []
    for where, value in _fallback_lists(config):
        if where.endswith("default_fallbacks"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: a list of model names")
            generic += [(v, where) for v in value]
            continue
        if not isinstance(value, list):
            raise ConfigError(f"{where}: a list of {{model_group: [fallback groups]}}")
        for entry in value:
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: each entry maps a model group to its fallbacks, not {entry!r}")
            for group, targets in entry.items():
                if isinstance(targets, str):
                    targets = [targets]
                if not isinstance(group, str) or not isinstance(targets, list):
                    raise ConfigError(f"{where}: {group!r} must map to a list of model names")
                names = [(t, where) for t in targets if isinstance(t, str)]
                if group == "*":
                    generic += names
                else:
                    edges.setdefault(group, []).extend(names)
    return edges, generic


def _key_applies(key: str, name: str) -> bool:
    """Whether a fallback list's key names `name` as LiteLLM looks keys up
    (router_utils/fallback_event_handlers.py, get_fallback_model_group): exactly, with a provider
    prefix added to a bare name, or with one stripped from a prefixed name. Any prefix counts
    here, which can only add candidates."""
    return key == name or key.partition("/")[2] == name or name.partition("/")[2] == key


# LiteLLM's model_info.mode -> what the model produces (catalog_pb2.ModelProviders.output).
_MODE_OUTPUT = {
    "chat": "text", "completion": "text", "responses": "text", "embedding": "embedding",
    "image_generation": "image", "image_edit": "image", "audio_transcription": "transcription",
    "audio_speech": "audio", "rerank": "rerank", "moderation": "moderation", "video_generation": "video",
}  # fmt: skip


def _output_of(params: dict[str, Any], info: Any, base: catalog_pb2.Catalog) -> list[str]:
    """What a deployment produces: its model_info.mode, else what the base catalog publishes for
    its model (the part after the provider prefix), else nothing known (text)."""
    mode = info.get("mode") if isinstance(info, dict) else None
    if isinstance(mode, str) and mode in _MODE_OUTPUT:
        return [_MODE_OUTPUT[mode]]
    model = str(params.get("model") or "")
    bare = model.partition("/")[2] or model
    found = base.models.get(bare) if bare in base.models else None
    return list(found.output) if found is not None else []


class _Reach:
    """Where each name's fallbacks lead, chains followed (LiteLLM's run_async_fallback calls
    async_function_with_fallbacks again for each fallback group, so its own fallbacks apply)."""

    def __init__(
        self, edges: dict[str, list[Edge]], generic: list[Edge], providers_of: Any, aliases: dict[str, str]
    ) -> None:
        self.edges, self.generic, self.providers_of, self.aliases = edges, generic, providers_of, aliases
        self.groups: set[str] = set()

    def calls(self, names: Iterable[str]) -> list[Edge]:
        found = [e for key, targets in self.edges.items() for name in names if _key_applies(key, name) for e in targets]
        return [*found, *self.generic]

    def candidates(self, start: list[str], own: list[str]) -> dict[str, str]:
        """provider -> "" for the route or group's own deployments, else the fallback path."""
        found = dict.fromkeys(own, "")
        seen = set(start)
        queue: list[tuple[list[str], str]] = [(start, "")]
        while queue:
            names, path = queue.pop(0)
            for target, where in self.calls(names):
                if target in seen:
                    continue
                seen.add(target)
                step = f"{where} -> {target}"
                via = f"{path}, then {step}" if path else step
                for provider in self.providers_of(target) or []:
                    found.setdefault(provider, via)
                group = self.aliases.get(target, target)
                if group in self.groups:
                    queue.append(([target, group, *(a for a, g in self.aliases.items() if g == group)], via))
        return found


def import_config(text: str, base: catalog_pb2.Catalog, allowed_settings: Iterable[str] = ()) -> Imported:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_list"), list):
        raise ConfigError("a LiteLLM proxy config has a 'model_list' list of deployments")
    _check_settings(config, frozenset(allowed_settings))
    names = catalog_mod.CatalogIndex.build(base).names
    result = gateway_import.start(base)
    out = result.catalog
    served: dict[str, list[str]] = {}
    patterns: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}  # group -> what its deployments produce
    for i, deployment in enumerate(config["model_list"]):
        if not isinstance(deployment, dict):
            raise ConfigError(f"model_list[{i}] is not a mapping")
        name, params = deployment.get("model_name"), deployment.get("litellm_params") or {}
        if not isinstance(name, str) or not name or not isinstance(params, dict):
            raise ConfigError(f"model_list[{i}]: needs model_name and litellm_params")
        prefix = provider_of(params)
        if prefix is None:
            if "*" in name:  # a route whose provider cannot be told may send anywhere
                raise ConfigError(f"model_list[{i}] ({name!r}): a wildcard route must name its provider")
            result.skipped.append(f"{name} ({params.get('model')!r}: no provider prefix)")
            continue
        provider = names.provider(prefix, litellm_gateway.GATEWAY.name) or litellm_gateway.PROVIDERS.get(prefix, prefix)
        if provider not in base.providers:
            result.unknown_providers.setdefault(provider, []).append(name)
            if not catalog_mod.PROVIDER_ID.fullmatch(provider) or provider in base.provider_aliases:
                raise ConfigError(f"model_list[{i}] ({name!r}): provider {prefix!r} cannot be named in a catalog")
            if provider not in out.providers:
                out.providers[provider].name = f"{prefix} (from the LiteLLM config; no published data)"
        else:
            provider = _regional(provider, params, out, f"model_list[{i}] ({name!r})", result.notes)
        target = patterns if "*" in name else served
        if target is served:
            made = outputs.setdefault(name, [])
            made += [o for o in _output_of(params, deployment.get("model_info"), base) if o not in made]
        providers = target.setdefault(name, [])
        if provider not in providers:
            providers.append(provider)
    result.wildcards = list(patterns)
    router = config.get("router_settings") or {}
    aliases = router.get("model_group_alias") or {}
    for alias, value in aliases.items():
        aliased = value.get("model") if isinstance(value, dict) else value
        if isinstance(alias, str) and isinstance(aliased, str) and aliased in served and alias not in served:
            out.model_aliases[alias] = aliased
    routes = catalog_mod.compile_routes((p, tuple(ps)) for p, ps in patterns.items())

    def providers_of(name: str) -> list[str] | None:
        """Where LiteLLM sends a name: its group (or alias), else a wildcard route."""
        group = name if name in served else out.model_aliases.get(name)
        if group is not None:
            return served[group]
        for route in routes:
            if route.regex.match(name):
                return list(route.providers)
        return None

    edges, generic = _fallback_edges(config)
    for name in {*edges, *(t for ts in edges.values() for t, _ in ts), *(t for t, _ in generic)}:
        if name != "*" and providers_of(name) is None and not any(r.regex.match(name) for r in routes):
            result.notes.append(f"fallback {name!r} is no model group or route: LiteLLM cannot call it")
    reach = _Reach(edges, generic, providers_of, dict(out.model_aliases))
    reach.groups = set(served)
    for group in served:
        aliases = [a for a, g in out.model_aliases.items() if g == group]
        found = reach.candidates([group, *aliases], served[group])
        if not catalog_mod.MODEL_ID.fullmatch(group) or group.partition("/")[0] in out.providers:
            result.skipped.append(f"{group} (not usable as a model name: it reads as a provider pin)")
            continue
        entry = out.models[group]
        entry.providers.extend(p for p in found if p in out.providers)
        entry.reached_through.update({p: via for p, via in found.items() if via and p in out.providers})
        entry.output.extend(outputs.get(group, []))
    for route in routes:  # a routed request's fallbacks: keys the route matches, and the generic ones
        named = served.keys() | out.model_aliases.keys()  # requests for these never take the route
        keys = [route.pattern, *(k for k in edges if route.regex.match(k) and k not in named)]
        found = reach.candidates(keys, list(route.providers))
        out.routes.add(
            pattern=route.pattern, providers=list(found), reached_through={p: v for p, v in found.items() if v}
        )
    if not out.models and not out.routes:
        raise ConfigError("no deployment in model_list names a provider this catalog can use")
    header = (config.get("general_settings") or {}).get("litellm_key_header_name")
    if isinstance(header, str) and header:
        # user_api_key_auth_builder: this header's key overrides every other one LiteLLM reads, so
        # authz reads it too (the catalog carries it: no setting to forget).
        if not _HEADER_NAME.fullmatch(header):
            raise ConfigError(f"general_settings.litellm_key_header_name {header!r} is no HTTP header name")
        out.credential_headers.append(header.lower())
        result.notes.append(
            f"general_settings.litellm_key_header_name is {header!r}: authz reads a key there too "
            "(a second key beside it is a credential conflict)"
        )
    return gateway_import.finish(result, base, litellm_gateway.GATEWAY.name, "a LiteLLM config")
