"""Every name a gateway routes, judged under one policy as that gateway will route it.

A catalog imported from a gateway's config (`authz catalog import`) holds the gateway's own
names: LiteLLM's model groups (with every fallback that can serve them) and its wildcard routes.
Before a policy or a config change is deployed, an operator asks of each name: will a request
for it pass, and if not, which deployment or fallback fails? The answer follows the Check's own
rules for a gateway that picks among every candidate itself (routing_enforcement = "strict",
authz.check.decision): the model lists first, then every candidate must comply. A unit test
holds it equal to `decide` for every name. Used by policy preview, `catalog diff` and
`catalog check-routing`. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from authz.policy import rules as policy_rules
from authz.policy.catalog import CatalogIndex

COMPLIANT = "compliant"
MODEL_NOT_ALLOWED = "model_not_allowed"
NO_COMPLIANT_PROVIDER = "no_compliant_provider"
ROUTING_NOT_ENFORCEABLE = "routing_not_enforceable"
PROVIDER_NOT_COMPLIANT = "provider_not_compliant"  # a route with one provider: a pin


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    failed: tuple[str, ...]  # failed requirements, canonical order
    via: str  # "" for the name's own deployments, else the fallback setting that reaches it

    def describe(self) -> str:
        return f"{self.provider} ({', '.join(self.failed)})" + (f" reached through {self.via}" if self.via else "")


@dataclass(frozen=True, slots=True)
class NameVerdict:
    name: str  # a model group, or a wildcard route's pattern
    wildcard: bool
    reason: str
    blocked: tuple[Candidate, ...]
    model_unmet: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.reason == COMPLIANT

    def describe(self) -> str:
        """One line: the verdict, and what fails it."""
        what = f"{'route ' if self.wildcard else ''}{self.name}"
        if self.allowed:
            return f"ALLOW  {what}"
        if self.model_unmet:
            return f"BLOCK  {what}: {', '.join(self.model_unmet)}"
        parts = [c.describe() for c in self.blocked]
        return f"BLOCK  {what} [{self.reason}]: {'; '.join(parts)}"


def judge(index: CatalogIndex, rules: policy_rules.Rules) -> list[NameVerdict]:
    """Each model group, then each wildcard route, of a gateway catalog (empty for another)."""
    if not index.gateway:
        return []
    table = index.table(rules)
    found: list[NameVerdict] = []
    named = [(m, False, index.models[m]) for m in sorted(index.models)]
    for name, wildcard, providers in [*named, *((r.pattern, True, r.providers) for r in index.routes)]:
        listed = policy_rules.model_unmet(name, rules) if not wildcard else ()
        if listed:
            found.append(NameVerdict(name, wildcard, MODEL_NOT_ALLOWED, (), tuple(u.requirement for u in listed)))
            continue
        blocked = tuple(
            Candidate(p, tuple(u.requirement for u in table.unmet[p]), index.reached_through.get((name, p), ""))
            for p in providers
            if table.unmet[p]
        )
        if not blocked and providers:
            reason = COMPLIANT
        elif wildcard and len(providers) == 1:
            reason = PROVIDER_NOT_COMPLIANT
        elif len(blocked) == len(providers):
            reason = NO_COMPLIANT_PROVIDER
        else:
            reason = ROUTING_NOT_ENFORCEABLE
        found.append(NameVerdict(name, wildcard, reason, blocked))
    return found
