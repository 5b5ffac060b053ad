"""A Check's verdict: why a request is allowed or blocked, and everything its answer, its
security event and its metrics say of it."""

from __future__ import annotations

from dataclasses import dataclass

from authz.policy import rules as policy_rules
from authz.reasons import OUTCOMES, Reason


# Not frozen: a frozen dataclass's __init__ costs ~7x more (object.__setattr__ per field), and
# one is built per Check. Treated as immutable all the same (hashable: it keys a template cache).
@dataclass(slots=True, unsafe_hash=True)
class Verdict:
    reason: Reason
    org_id: str = ""
    enforced: bool = True
    policy_version: int = 0
    model: str = ""
    routing: str = ""
    provider: str = ""  # the pinned provider, when there is one
    allowed_providers: tuple[str, ...] = ()
    blocked: policy_rules.Blocked = ()
    model_unmet: policy_rules.Failures = ()  # the model allow/deny lists
    item: str = ""  # the batch entry concerned (custom_id or "line N")
    alternatives: tuple[str, ...] = ()  # compliant names the client could send instead
    detail: str = ""  # what the message needs besides: the endpoint not covered, the expected body type
    client_requirements: tuple[str, ...] = ()  # added by the request (x-compliance-require)
    checkpoint: str = ""  # "egress" for the gateway's own call to a provider (authz.check.egress)
    # A pin to a deactivated mapping: "<provider> <when>" (the gateway moved it, or no longer serves it)
    deactivated: str = ""
    # Blocked providers that are candidates through the gateway's fallbacks, not the model's own
    # deployments: (provider, the setting that reaches it), from an imported gateway config.
    via: tuple[tuple[str, str], ...] = ()

    @property
    def failed_requirements(self) -> list[str]:
        """Every failed requirement, model-level first, each once, in canonical order."""
        names = {u.requirement for u in self.model_unmet}
        names.update(u.requirement for _, unmet in self.blocked for u in unmet)
        return sorted(names, key=policy_rules.ORDER.__getitem__)

    @property
    def allowed(self) -> bool:
        return OUTCOMES[self.reason].http_status == 200 or not self.enforced

    @property
    def restricts_routing(self) -> bool:
        """Whether the gateway must be told which providers remain (not at egress: that request
        goes to the provider, which is told nothing)."""
        return self.enforced and self.reason is Reason.COMPLIANT and not self.checkpoint
