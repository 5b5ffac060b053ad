"""OpenRouter-compatible gateways (naming_profile = "openrouter"): "author/model" names a model
and lets the router pick a provider; body fields that route. docs/gateways.md,
"OpenRouter-compatible gateways", cites the API reference for each entry."""

from __future__ import annotations

from authz.policy.gateways.description import Contract, Description, Spelling

GATEWAY = Description(
    name="openrouter",
    title="OpenRouter-compatible gateways",
    # author/model: the author is not where the request goes; names the catalog does not alias
    # are read only for authors that are also providers (deepseek/deepseek-v3.2).
    spelling=Spelling(author_prefix=True),
    # They route by more body fields than the model (openrouter.ai/docs: provider routing, model
    # routing, presets, plugins): `models` lists fallback models (each judged); `provider`
    # (order, only, ignore, allow_fallbacks, sort...), `route`, `preset` and `plugins` (the web
    # plugin sends the prompt to a search provider) choose where it goes in ways the catalog
    # cannot judge, and are refused.
    contract=Contract(
        "openrouter",
        routing_fields=frozenset({"provider", "route", "preset", "plugins"}),
        fallback_fields=("models",),
    ),
)
