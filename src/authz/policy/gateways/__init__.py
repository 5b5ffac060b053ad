"""Every gateway authz can front, one module each (native, litellm, openrouter, llmgateway,
portkey; description.py has what a module declares). Naming, parsing, the decision and the
responses read a gateway only through its Description; docs/contributing.md, "Recipe: add a
gateway", has the steps, and tests/unit/test_gateway_recipe.py fails when one is missed."""

from __future__ import annotations

import dataclasses

from authz.policy.gateways import litellm, llmgateway, native, openrouter, portkey
from authz.policy.gateways.description import NOTHING, Allowed, Contract, Description

GATEWAYS: tuple[Description, ...] = (
    native.GATEWAY,
    litellm.GATEWAY,
    openrouter.GATEWAY,
    llmgateway.GATEWAY,
    portkey.GATEWAY,
)
BY_NAME = {gateway.name: gateway for gateway in GATEWAYS}
# Every field any gateway reads further models from; a verdict's item named by one is a route.
FALLBACK_FIELDS = frozenset(f for gateway in GATEWAYS for f in gateway.contract.fallback_fields)
_ROUTING_ITEMS = tuple(p for gateway in GATEWAYS for p in gateway.routing_items)


def named(name: str) -> Description:
    """The gateway a naming_profile names (config checks the setting); unknown: our own spelling."""
    return BY_NAME.get(name, native.GATEWAY)


def contract_for(name: str, extra_fields: frozenset[str] = frozenset(), allowed: Allowed = NOTHING) -> Contract:
    """The gateway's contract, with the operator's inert fields and allowed hosts, Azure
    resources and deployments added."""
    found = named(name).contract
    if extra_fields and found.inert_fields is not None:
        found = dataclasses.replace(found, inert_fields=found.inert_fields | extra_fields)
    if allowed != NOTHING and found.header_prefix:
        found = dataclasses.replace(found, allowed=allowed)
    return found


def names_a_route(item: str) -> bool:
    """Whether a verdict's item is a place the gateway routes by (a fallback list entry, a
    Portkey config target or header) rather than a batch entry."""
    return item.partition("[")[0] in FALLBACK_FIELDS or item.startswith(_ROUTING_ITEMS)
