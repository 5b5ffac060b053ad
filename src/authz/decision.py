"""Facts + the org's policy + the catalog -> a Verdict. Pure, no I/O.

The order a reader can follow: no enabled policy -> allow; read the model (fail closed on
any doubt); resolve pinned vs automatic routing against the catalog (unknown -> block);
look the providers up in the precompiled compliance table.
"""

from __future__ import annotations

from dataclasses import dataclass

from authz import policy
from authz.catalog import CatalogIndex
from authz.reasons import OUTCOMES, Reason
from authz.request import RequestFacts, model_of

PINNED = "pinned"
AUTOMATIC = "automatic"


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    """An org's stored policy, reduced to what decisions need."""

    org_id: str
    plan: str = ""
    version: int = 0
    requirements: policy.Requirements = frozenset()
    enabled: bool = False
    enforced: bool = True  # False in dry-run mode


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: Reason
    org_id: str = ""
    enforced: bool = True
    policy_version: int = 0
    model: str = ""
    routing: str = ""
    provider: str = ""  # the pinned provider, when there is one
    allowed_providers: tuple[str, ...] = ()
    blocked: tuple[tuple[str, tuple[policy.Unmet, ...]], ...] = ()

    @property
    def allowed(self) -> bool:
        return OUTCOMES[self.reason].http_status == 200 or not self.enforced

    @property
    def restricts_routing(self) -> bool:
        """Whether the gateway must be told which providers remain."""
        return self.enforced and self.reason is Reason.COMPLIANT


def decide(facts: RequestFacts, org: OrgPolicy, catalog: CatalogIndex | None) -> Verdict:
    if not org.enabled:
        return Verdict(Reason.NO_POLICY, org_id=org.org_id, policy_version=org.version)

    def verdict(reason: Reason, **details) -> Verdict:
        return Verdict(
            reason, org_id=org.org_id, enforced=org.enforced, policy_version=org.version, **details
        )

    model = model_of(facts)
    if isinstance(model, Reason):
        return verdict(model, model=facts.model_header or "")
    if catalog is None:
        return Verdict(Reason.CATALOG_NOT_LOADED, org_id=org.org_id, model=model)

    prefix, slash, rest = model.partition("/")
    pinned = prefix if slash and prefix in catalog.providers else ""
    model_id = rest if pinned else model
    if facts.provider_header is not None:
        if facts.provider_header not in catalog.providers:
            return verdict(Reason.UNKNOWN_PROVIDER, model=model, provider=facts.provider_header)
        if pinned and pinned != facts.provider_header:
            return verdict(Reason.PROVIDER_CONFLICT, model=model, provider=facts.provider_header)
        pinned = facts.provider_header

    routing = PINNED if pinned else AUTOMATIC
    serving = catalog.models.get(model_id)
    if serving is None:
        return verdict(Reason.UNKNOWN_MODEL, model=model, routing=routing, provider=pinned)
    table = catalog.table(org.requirements)

    if pinned:
        if pinned not in serving:
            return verdict(Reason.PROVIDER_DOES_NOT_SERVE_MODEL, model=model, routing=routing, provider=pinned)
        failures = table.unmet[pinned]
        if failures:
            return verdict(
                Reason.PROVIDER_NOT_COMPLIANT,
                model=model,
                routing=routing,
                provider=pinned,
                blocked=((pinned, failures),),
            )
        return verdict(Reason.COMPLIANT, model=model, routing=routing, provider=pinned, allowed_providers=(pinned,))

    candidates = table.for_model(model_id)
    reason = Reason.COMPLIANT if candidates.allowed else Reason.NO_COMPLIANT_PROVIDER
    return verdict(
        reason,
        model=model,
        routing=routing,
        allowed_providers=candidates.allowed,
        blocked=candidates.blocked,
    )
