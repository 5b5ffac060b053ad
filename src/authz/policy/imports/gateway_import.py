"""What every gateway-config import shares: its result, its error, and the catalog it starts
from and ends with (the base catalog's provider data; the gateway's own models and routes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from authz.policy import catalog as catalog_mod
from authz.v1 import catalog_pb2


class ConfigError(ValueError):
    pass


@dataclass
class Imported:
    catalog: catalog_pb2.Catalog
    unknown_providers: dict[str, list[str]] = field(default_factory=dict)  # provider -> model names
    wildcards: list[str] = field(default_factory=list)  # route patterns, as written
    skipped: list[str] = field(default_factory=list)  # deployments whose provider cannot be told
    notes: list[str] = field(default_factory=list)  # what else an operator should know


def start(base: catalog_pb2.Catalog) -> Imported:
    """A result whose catalog has the base's providers and aliases, and no models or routes yet."""
    result = Imported(catalog_pb2.Catalog())
    result.catalog.CopyFrom(base)
    result.catalog.ClearField("models")
    result.catalog.ClearField("routes")
    return result


def finish(result: Imported, base: catalog_pb2.Catalog, gateway: str, source: str) -> Imported:
    """Drop the base's aliases of models this gateway does not serve, name the gateway, validate."""
    out = result.catalog
    for alias, target in list(out.model_aliases.items()):
        if target not in out.models:
            del out.model_aliases[alias]
    out.gateway = gateway
    out.description = (base.description + " | " if base.description else "") + f"models from {source}"
    catalog_mod.validate(out)
    return result
