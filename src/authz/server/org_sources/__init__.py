"""Where a Check's org comes from: one source per `org_source` setting (and the egress
checkpoint's), chosen once at start (authz.server.components.org_sources), so the Checker
never branches on the setting and a new source is one module here.

A source answers in two steps, so the order of refusals is the same whichever it is:
`claimed` reads what the request says, without I/O (no credential, a malformed org id, a
forged assertion are refused there, before the state's freshness is looked at); `org_id`
then finds the org the claim belongs to, where that needs state (an API key's org: the
cache, Redis or the gateway's key API; it may raise StateUnavailable or GatewayUnavailable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from authz.check.request import RequestFacts
from authz.check.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Claim:
    """What a request says of its org: the org itself when it names one, else its key."""

    org_id: str = ""  # "" until org_id() finds it (an API key's org)
    key_id: str = ""  # the API key's short id, for security events ("" when none identifies it)
    key: str | None = None  # the API key to look up (never logged)
    key_hash: str = ""


class OrgSource(Protocol):
    def claimed(self, facts: RequestFacts) -> Claim | Verdict:
        """The request's claim, or the Verdict refusing it. No I/O."""
        ...

    async def org_id(self, claim: Claim, facts: RequestFacts) -> str | Verdict:
        """The org of the claim, or the Verdict refusing it; may read state."""
        ...
