"""The egress checkpoint: the gateway's own call to a provider, judged by where it goes.

An egress Envoy beside the gateway has one route per provider (docs/egress.md); each route
names its catalog provider in the ext_authz context extensions, so the provider is the
route's, never a header or a body value. Whatever routed the request there (a fallback, an
override, a pass-through, the gateway's health data), the provider must comply with the org's
policy; the model, when the body names one the catalog knows, must pass the model lists too.
Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authz.check.decision import PINNED, OrgPolicy, Verdict
from authz.check.parsing import jsonbody
from authz.check.request import RequestFacts
from authz.policy import rules as policy
from authz.policy.catalog import CatalogIndex
from authz.reasons import Reason

CHECKPOINT = "checkpoint"  # the context extension naming the checkpoint
EGRESS = "egress"
PROVIDER = "provider"  # the context extension naming the route's catalog provider


def route_provider(extensions: Mapping[str, str]) -> str | None:
    """The provider an egress route names; None for a request at the ingress checkpoint."""
    if extensions.get(CHECKPOINT) != EGRESS:
        return None
    return extensions.get(PROVIDER, "")


def decide(facts: RequestFacts, provider: str, org: OrgPolicy, catalog: CatalogIndex | None) -> Verdict:
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
    model = _body_model(facts)
    if provider not in catalog.providers:
        # A route naming no catalog provider is a configuration error: nothing reaches it.
        return verdict(Reason.UNKNOWN_PROVIDER, model=model)
    model_id = catalog.names.model(model) if model else None
    if model_id is not None:
        unmet = policy.model_unmet(model_id, org.rules)
        if unmet:
            return verdict(Reason.MODEL_NOT_ALLOWED, model=model, model_unmet=unmet)
    failures = catalog.table(org.rules).unmet[provider]
    if failures:
        return verdict(Reason.PROVIDER_NOT_COMPLIANT, model=model, blocked=((provider, failures),))
    return verdict(Reason.COMPLIANT, model=model, allowed_providers=(provider,))


def _body_model(facts: RequestFacts) -> str:
    """The model the provider is asked for, when a JSON body names it (for the message and the
    model lists; the provider alone decides)."""
    if not facts.body or facts.body_truncated or (facts.content_type or "").split(";")[0].strip() != "application/json":
        return ""
    found = jsonbody.top_level_model(facts.body)
    return found if found is not None else ""
