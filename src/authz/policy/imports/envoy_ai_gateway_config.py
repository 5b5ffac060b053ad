"""Envoy AI Gateway manifests -> the catalog's model -> providers map, as that gateway routes.

Envoy AI Gateway (aigateway.envoyproxy.io/v1alpha1) routes by the model it extracts into the
`x-ai-eg-model` header: an `AIGatewayRoute` rule matching that header sends the request to its
`backendRefs`, several of which are load-balanced (weight) or failed over to (priority), so
every one of them may serve the prompt. Each backendRef names an `AIServiceBackend`, whose
`backendRef` names an Envoy Gateway `Backend` (gateway.envoyproxy.io/v1alpha1) with the
upstream's host: the host tells the provider (a Bedrock host its region too). A rule that does
not match on `x-ai-eg-model` matches every model: a catch-all route. A host this module does not
know becomes a provider of its own with no published data (it fails every requirement), and is
reported; a backend it cannot find fails the import. docs/gateways.md has the details.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from authz.policy import catalog as catalog_mod
from authz.policy.imports import gateway_import
from authz.policy.imports.gateway_import import ConfigError as ConfigError
from authz.policy.imports.gateway_import import Imported as Imported
from authz.v1 import catalog_pb2

MODEL_HEADER = "x-ai-eg-model"
GATEWAY = "envoy-ai-gateway"

# Public API hosts -> catalog provider ids (each provider's API reference).
_HOSTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), provider)
    for pattern, provider in (
        (r"api\.openai\.com", "openai"),
        (r".+\.openai\.azure\.com|.+\.services\.ai\.azure\.com|.+\.cognitiveservices\.azure\.com", "azure"),
        (r"bedrock-runtime(-fips)?\.([a-z0-9-]+)\.amazonaws\.com", "aws-bedrock"),
        (r"([a-z0-9-]+-)?aiplatform\.googleapis\.com", "google-vertex"),
        (r"generativelanguage\.googleapis\.com", "google-ai-studio"),
        (r"api\.anthropic\.com", "anthropic"),
        (r"api\.groq\.com", "groq"),
        (r"api\.deepseek\.com", "deepseek"),
        (r"api\.together\.(xyz|ai)", "together"),
        (r"api\.mistral\.ai", "mistral"),
        (r"api\.cohere\.(com|ai)", "cohere"),
        (r"api\.x\.ai", "xai"),
        (r"api\.fireworks\.ai", "fireworks"),
        (r"api\.deepinfra\.com", "deepinfra"),
        (r"api\.perplexity\.ai", "perplexity"),
        (r"api\.cerebras\.ai", "cerebras"),
        (r"openrouter\.ai", "openrouter"),
        (r"api\.novita\.ai", "novita"),
        (r"dashscope(-intl)?\.aliyuncs\.com", "alibaba"),
        (r"api\.moonshot\.(ai|cn)", "moonshot"),
    )
)


def provider_of_host(host: str, names: frozenset[str], aliases: dict[str, str]) -> str | None:
    """The catalog provider a host belongs to (Bedrock: its regional entry when the catalog
    has one), or None."""
    host = host.lower().rstrip(".")
    for pattern, provider in _HOSTS:
        found = pattern.fullmatch(host)
        if found is None:
            continue
        provider = aliases.get(provider, provider)
        if provider == "aws-bedrock" and f"aws-bedrock-{found.group(2)}" in names:
            return f"aws-bedrock-{found.group(2)}"
        return provider
    return None


def _documents(text: str) -> list[dict[str, Any]]:
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}") from None
    found: list[dict[str, Any]] = []
    for doc in loaded:
        if not isinstance(doc, dict):
            raise ConfigError("each YAML document must be a Kubernetes object")
        if doc.get("kind") == "List":
            found.extend(i for i in doc.get("items") or [] if isinstance(i, dict))
        else:
            found.append(doc)
    return found


def _key(obj: dict[str, Any], kind: str) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return kind, str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def import_config(text: str, base: catalog_pb2.Catalog) -> Imported:
    objects = _documents(text)
    by_key = {_key(o, str(o.get("kind"))): o for o in objects}
    routes = [o for o in objects if o.get("kind") == "AIGatewayRoute"]
    if not routes:
        raise ConfigError("no AIGatewayRoute in the manifests (aigateway.envoyproxy.io/v1alpha1)")
    names = frozenset(base.providers)
    aliases = dict(base.provider_aliases)
    result = gateway_import.start(base)
    out = result.catalog
    served: dict[str, list[str]] = {}
    catch_all: list[str] = []

    def provider_of_backend(namespace: str, name: str, where: str) -> str:
        backend = by_key.get(("AIServiceBackend", namespace, name))
        if backend is None:
            raise ConfigError(f"{where}: AIServiceBackend {namespace}/{name} is not in the manifests")
        ref = (backend.get("spec") or {}).get("backendRef") or {}
        target = by_key.get(("Backend", str(ref.get("namespace") or namespace), str(ref.get("name") or "")))
        if target is None:
            raise ConfigError(
                f"AIServiceBackend {namespace}/{name}: its Backend {ref.get('name')!r} is not in the manifests"
            )
        hosts = {
            str((e.get("fqdn") or {}).get("hostname") or (e.get("ip") or {}).get("address") or "")
            for e in (target.get("spec") or {}).get("endpoints") or []
        }
        providers = {provider_of_host(h, names, aliases) or h.lower() for h in hosts if h}
        if len(providers) != 1:
            raise ConfigError(
                f"Backend {ref.get('name')!r}: one upstream provider per Backend, found {sorted(providers)}"
            )
        provider = providers.pop()
        if provider not in names:
            if not catalog_mod.PROVIDER_ID.fullmatch(provider):
                raise ConfigError(f"Backend {ref.get('name')!r}: host {provider!r} cannot name a catalog provider")
            out.providers[provider].name = f"{provider} (from the Envoy AI Gateway config; no published data)"
        return provider

    for route in routes:
        namespace = _key(route, "AIGatewayRoute")[1]
        for i, rule in enumerate((route.get("spec") or {}).get("rules") or []):
            where = f"AIGatewayRoute {namespace}/{_key(route, '')[2]} rules[{i}]"
            providers: list[str] = []
            for ref in rule.get("backendRefs") or []:  # weights balance, priorities fail over: all serve
                provider = provider_of_backend(str(ref.get("namespace") or namespace), str(ref.get("name")), where)
                if provider not in providers:
                    providers.append(provider)
            models: list[str] = []
            for match in rule.get("matches") or [{}]:
                on_model = [h for h in match.get("headers") or [] if str(h.get("name", "")).lower() == MODEL_HEADER]
                if not on_model:
                    models.append("*")  # this rule serves any model
                for header in on_model:
                    if header.get("type", "Exact") != "Exact":
                        raise ConfigError(
                            f"{where}: a {header.get('type')} match on {MODEL_HEADER}: list its models as Exact matches"
                        )
                    models.append(str(header.get("value")))
            for model in models:
                target = catch_all if model == "*" else served.setdefault(model, [])
                target.extend(p for p in providers if p not in target)
                for p in providers:
                    if p not in names:
                        result.unknown_providers.setdefault(p, []).append(model)
    for model, providers in served.items():
        if not catalog_mod.MODEL_ID.fullmatch(model) or model.partition("/")[0] in out.providers:
            raise ConfigError(f"model {model!r}: not usable as a model name (it reads as a provider pin)")
        out.models[model].providers.extend(providers)
    if catch_all:
        out.routes.add(pattern="*", providers=catch_all)
        result.notes.append(f"a rule without an {MODEL_HEADER} match sends any other model to {', '.join(catch_all)}")
    if not out.models:
        raise ConfigError(f"no AIGatewayRoute rule matches a model by {MODEL_HEADER}")
    return gateway_import.finish(result, base, GATEWAY, "Envoy AI Gateway routes")
