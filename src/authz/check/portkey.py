"""Portkey's routing contract: its headers, not the body's model, choose the provider.

Read from Portkey-AI/gateway (`src/handlers/handlerUtils.ts`: constructConfigFromRequestHeaders,
tryTargetsRecursively; `src/middlewares/requestValidator/index.ts`), version 1.15.2 on npm.
A request names its provider with `x-portkey-provider`, or a config in `x-portkey-config` (JSON)
whose targets are tried one after another (`strategy.mode: fallback`), picked by weight
(`loadbalance`) or by request metadata (`conditional`), nested at will; each target has its own
provider, `custom_host` and `override_params` (its own `model`). Every target a request can
reach is judged as "<provider>/<model>"; what authz cannot judge is refused by name: a saved
config id, a virtual key, conditional routing, a custom host the operator did not allow for
that provider, guardrails and hooks (they may send the prompt to a checking service), and any
other `x-portkey-*` header or config key this module does not know. Pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from authz.policy.gateways.description import NOTHING, Allowed
from authz.policy.gateways.portkey import HEADER_PREFIX

PROVIDER = "x-portkey-provider"
CONFIG = "x-portkey-config"
CUSTOM_HOST = "x-portkey-custom-host"
# Azure OpenAI: Portkey builds the host from the resource name (`https://<resource>.openai.azure.com/
# openai`, the azure-openai provider's getBaseURL) and the served model from the deployment id
# (`/deployments/<id>/...`), from these headers (constructConfigFromRequestHeaders) or a target's
# resource_name and deployment_id: any tenant's resource in any region. Judged only for the
# resources the operator maps to a catalog entry (setting azure_resources) and the deployments
# its endpoint table maps to a model ([deployments]); anything else is refused by name.
AZURE_PROVIDERS = frozenset({"azure-openai"})
AZURE_RESOURCE = "x-portkey-azure-resource-name"
AZURE_DEPLOYMENT = "x-portkey-azure-deployment-id"

# Headers that select nothing (tracing, caching, timeouts, provider API options), or that
# authz reads below (provider, config, custom host). Azure's select a resource and deployment
# of the same provider.
_HEADERS = frozenset(
    HEADER_PREFIX + name
    for name in (
        "provider", "config", "custom-host", "forward-headers", "trace-id", "metadata", "span-id",
        "parent-span-id", "span-name", "cache-force-refresh", "cache-namespace", "request-timeout",
        "strict-open-ai-compliance", "openai-organization", "openai-project", "openai-beta",
        "anthropic-beta", "anthropic-version", "azure-resource-name", "azure-deployment-id",
        "azure-api-version", "azure-model-name", "azure-auth-mode", "aws-access-key-id",
        "aws-secret-access-key", "aws-session-token", "api-key",
    )
)  # fmt: skip
# Config keys of a target that select nothing else than its provider's own account or options.
_CONFIG_KEYS = frozenset(
    {
        "provider", "api_key", "override_params", "weight", "retry", "request_timeout", "strategy",
        "targets", "name", "cache", "custom_host", "resource_name", "deployment_id", "api_version",
        "azure_model_name", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
        "forward_headers", "strict_open_ai_compliance", "openai_organization", "openai_project",
    }
)  # fmt: skip
_MODES = frozenset({"single", "fallback", "loadbalance"})
_MAX_TARGETS = 64
_MAX_DEPTH = 8


class Refused(ValueError):
    """Something the gateway routes by that authz cannot judge; the text names it."""


def targets(headers: Mapping[str, str], model: str, allowed: Allowed = NOTHING) -> list[tuple[str, str]]:
    """Every (provider/model, where) a request can reach through Portkey."""
    for name in headers:
        if name.startswith(HEADER_PREFIX) and name not in _HEADERS:
            raise Refused(name)
    raw = headers.get(CONFIG)
    azure = {"resource_name": headers.get(AZURE_RESOURCE), "deployment_id": headers.get(AZURE_DEPLOYMENT)}
    if raw is None:
        provider = headers.get(PROVIDER)
        if not provider:
            raise Refused(PROVIDER)  # Portkey refuses it too: "Either x-portkey-config or x-portkey-provider"
        _check_host(provider, headers.get(CUSTOM_HOST), allowed.custom_hosts, CUSTOM_HOST)
        return [_target(provider, model, azure, allowed, PROVIDER, headers=True)]
    if not raw.lstrip().startswith("{"):
        raise Refused(f"{CONFIG} (a saved config id: authz cannot read it)")
    try:
        config = json.loads(raw)
    except ValueError:
        raise Refused(f"{CONFIG} (not JSON)") from None
    if not isinstance(config, dict):
        raise Refused(CONFIG)
    if "provider" not in config and "targets" not in config:
        # constructConfigFromRequestHeaders: the header's provider fills a config without one.
        config = {**config, "provider": headers.get(PROVIDER)}
        if headers.get(CUSTOM_HOST) is not None:
            config["custom_host"] = headers[CUSTOM_HOST]
    found: list[tuple[str, str]] = []
    _walk(config, model, azure, "config", 0, allowed, found)
    return found


def _target(
    provider: str, model: str, azure: Mapping[str, Any], allowed: Allowed, where: str, headers: bool = False
) -> tuple[str, str]:
    """One target as "<provider>/<model>"; an Azure resource or deployment as the catalog entry
    and model the operator maps them to."""
    resource, deployment = azure.get("resource_name"), azure.get("deployment_id")
    if provider not in AZURE_PROVIDERS or (resource is None and deployment is None):
        return f"{provider}/{model}", where
    names = (AZURE_RESOURCE, AZURE_DEPLOYMENT) if headers else (f"{where}.resource_name", f"{where}.deployment_id")
    entry = dict(allowed.azure_resources).get(resource) if isinstance(resource, str) else None
    if entry is None:
        raise Refused(f"{names[0]} (not an Azure resource allowed: setting azure_resources)")
    served = dict(allowed.deployments).get(deployment) if isinstance(deployment, str) else None
    if served is None:
        raise Refused(f"{names[1]} (not an Azure deployment the endpoint table maps to a model: [deployments])")
    return f"{entry}/{served}", where


def _walk(
    target: dict[str, Any],
    model: str,
    azure: dict[str, Any],
    where: str,
    depth: int,
    allowed: Allowed,
    found: list[tuple[str, str]],
    inherited: dict[str, Any] | None = None,
) -> None:
    if depth > _MAX_DEPTH or len(found) >= _MAX_TARGETS:  # a 65th target, or a level past the 8th
        raise Refused(f"{CONFIG} (more than {_MAX_DEPTH} levels or {_MAX_TARGETS} targets)")
    unknown = sorted(k for k in target if k not in _CONFIG_KEYS)
    if unknown:
        raise Refused(f"{where}.{unknown[0]}")
    overrides = target.get("override_params") or {}
    if not isinstance(overrides, dict):
        raise Refused(f"{where}.override_params")
    # tryTargetsRecursively: a target's override_params merge over its parents'.
    overrides = {**(inherited or {}), **overrides}
    # A target's own Azure resource and deployment, else its parents' (or the headers').
    azure = {key: target.get(key, azure.get(key)) for key in ("resource_name", "deployment_id")}
    nested = target.get("targets")
    if nested is not None:
        strategy = target.get("strategy") or {}
        mode = strategy.get("mode") if isinstance(strategy, dict) else None
        if mode not in _MODES:
            raise Refused(f"{where}.strategy.mode ({mode!r}: only {', '.join(sorted(_MODES))} are judged)")
        if not isinstance(nested, list) or not nested:
            raise Refused(f"{where}.targets")
        for i, child in enumerate(nested):  # every target may serve: fallbacks and the balanced alike
            if not isinstance(child, dict):
                raise Refused(f"{where}.targets[{i}]")
            _walk(child, model, azure, f"{where}.targets[{i}]", depth + 1, allowed, found, overrides)
        return
    provider = target.get("provider")
    if not isinstance(provider, str) or not provider:
        raise Refused(f"{where}.provider")
    _check_host(provider, target.get("custom_host"), allowed.custom_hosts, f"{where}.custom_host")
    chosen = overrides.get("model", model)
    if not isinstance(chosen, str) or not chosen:
        raise Refused(f"{where}.override_params.model")
    found.append(_target(provider, chosen, azure, allowed, where))


def _check_host(provider: str, host: object, allowed: frozenset[tuple[str, str]], where: str) -> None:
    """A custom host sends the provider's request anywhere: only the operator's, for that provider."""
    if host is None:
        return
    if not isinstance(host, str) or (provider, host.rstrip("/")) not in allowed:
        raise Refused(f"{where} (not a custom host allowed for {provider!r}: setting custom_hosts)")
