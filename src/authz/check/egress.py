"""The egress checkpoint: the gateway's own call to a provider, judged by where it goes.

An egress Envoy has one route per provider (docs/egress.md); each route names its catalog
provider in the ext_authz context extensions, so the provider is the route's, never a header or
a body value. Whatever routed the request there (a fallback, an override, a pass-through, the
gateway's health data), the provider must comply with the org's policy, and the model must pass
the model lists: read where the provider's API carries it (the path after the route's prefix
matched against the endpoint table, as at ingress: Gemini's and Vertex's path, Bedrock's
/model/{id}/..., Azure's deployment; else the body), refused as at ingress when it cannot be
read (a body Envoy cut, a body declared as another type). Pure, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from authz.check import parsing
from authz.check.decision import PINNED
from authz.check.endpoints import EndpointTable
from authz.check.request import RequestFacts
from authz.check.verdict import Verdict
from authz.policy import rules as policy_rules
from authz.policy.catalog import CatalogIndex
from authz.policy.orgs import OrgPolicy
from authz.reasons import Reason

CHECKPOINT = "checkpoint"  # the context extension naming the checkpoint
EGRESS = "egress"
PROVIDER = "provider"  # the context extension naming the route's catalog provider


def route_provider(extensions: Mapping[str, str]) -> str | None:
    """The provider an egress route names; None for a request at the ingress checkpoint."""
    if extensions.get(CHECKPOINT) != EGRESS:
        return None
    return extensions.get(PROVIDER, "")


def decide(
    facts: RequestFacts,
    provider: str,
    org: OrgPolicy,
    catalog: CatalogIndex | None,
    endpoints: EndpointTable | None = None,
) -> Verdict:
    def verdict(reason: Reason, **details: Any) -> Verdict:
        return Verdict(
            reason,
            org_id=org.org_id,
            enforced=org.enforced,
            policy_version=org.version,
            checkpoint=EGRESS,
            routing=PINNED,
            provider=provider,
            **details,
        )

    if not org.enabled:
        return verdict(Reason.NO_POLICY)
    if catalog is None:
        return verdict(Reason.CATALOG_NOT_LOADED)
    if provider not in catalog.providers:
        # A route naming no catalog provider is a configuration error: nothing reaches it.
        return verdict(Reason.UNKNOWN_PROVIDER)
    lists = bool(org.rules.model_allow or org.rules.model_deny)
    failures = catalog.table(org.rules).unmet[provider]
    if not lists and not failures and not facts.body_truncated:
        # Nothing to hold the model to and nothing to record: the call goes out unread (a
        # body is read only for the model lists, a block's record, or to refuse a cut one).
        return verdict(Reason.COMPLIANT, allowed_providers=(provider,))
    named = _models(facts, endpoints, lists)
    if isinstance(named, parsing.Refusal):
        # A model that cannot be read matters only to the model lists (the route's provider
        # decides the rest); a body Envoy cut is refused as at ingress, whatever the lists.
        if not lists and named.reason is not Reason.BODY_TRUNCATED:
            named = ()
        else:
            detail = f"{facts.body_limit} bytes" if named.reason is Reason.BODY_TRUNCATED else named.detail
            return verdict(named.reason, model=named.model, item=named.item, detail=detail)
    for model, item in named:
        # A provider's own model id the catalog does not know still meets an allowlist as itself.
        unmet = policy_rules.model_unmet(catalog.names.model(model) or model, org.rules)
        if unmet:
            return verdict(Reason.MODEL_NOT_ALLOWED, model=model, item=item, model_unmet=unmet)
    model = named[0][0] if named else ""
    if failures:
        return verdict(Reason.PROVIDER_NOT_COMPLIANT, model=model, blocked=((provider, failures),))
    return verdict(Reason.COMPLIANT, model=model, allowed_providers=(provider,))


def provider_path(path: str) -> str:
    """The provider's own path: the request's, less the route's first segment (its prefix)."""
    return "/" + path.lstrip("/").partition("/")[2]


def _row(facts: RequestFacts, endpoints: EndpointTable | None) -> tuple[str, Any]:
    """The endpoint row of the provider's path: the path after the route's prefix, or its
    longest tail a row matches (Groq's API sits under /openai/v1/..., a base URL may carry a
    prefix of its own)."""
    path = provider_path(facts.path)
    segments = path.split("/")[1:]
    for start in range(len(segments)):
        tail = "/" + "/".join(segments[start:])
        row = endpoints.match(facts.method, tail) if endpoints is not None else None
        if row is not None:
            return tail, row
    return path, None


def _models(
    facts: RequestFacts, endpoints: EndpointTable | None, lists: bool
) -> tuple[tuple[str, str], ...] | parsing.Refusal:
    """Every model the provider call names, read as the ingress reads a request to that API."""
    path, row = _row(facts, endpoints)
    if row is not None:
        named = parsing.requested(dataclasses.replace(facts, path=path, endpoint=row))
        return named if isinstance(named, parsing.Refusal) else tuple((m, i) for m, i in named)
    # No row: an API the table does not describe. The provider still decides; the model lists
    # cannot be applied to a model nobody can read, so an org that has them is refused.
    if lists:
        return parsing.Refusal(Reason.ENDPOINT_NOT_COVERED, detail=f"{facts.method} {path}")
    return ()
