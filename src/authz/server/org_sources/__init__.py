"""Where a Check's org comes from: one source per `org_source` setting (and the egress
checkpoint's), chosen once at start (authz.server.components.org_sources), so the Checker
never branches on the setting and a new source is one module here.

A source answers in two steps, so the order of refusals is the same whichever it is:
`claimed` reads what the request says, without I/O (no credential, a malformed org id, a
forged assertion are refused there, before the state's freshness is looked at); `org_id`
then finds the org the claim belongs to, where that needs state (an API key's org: the
cache, Redis or the gateway's key API; it may raise StateUnavailable or GatewayUnavailable).
A claim that already names its org (or an API key the process knows) skips the second step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from authz.check.request import RequestFacts
from authz.check.verdict import Verdict


# Not frozen: one is built per Check, and a frozen dataclass's __init__ costs several times more
# (object.__setattr__ per field). Treated as immutable all the same.
@dataclass(slots=True)
class Claim:
    """What a request says of its org: the org itself when it names one, else its key."""

    org_id: str = ""  # the org the request names ("" for an API key's)
    key_id: str = ""  # the API key's short id, for security events ("" when none identifies it)
    key: str | None = None  # the API key to look up (never logged)
    key_hash: str = ""
    # The API key's org when the process already knows it (no I/O): the warm path needs no
    # org_id() call. Still judged after the state's freshness, like every other claim.
    known_org: str = ""
    key_known: bool = False  # the process knows the key already (known_org, or known to be unknown)


class OrgSource(Protocol):
    def claimed(self, facts: RequestFacts) -> Claim | Verdict:
        """The request's claim, or the Verdict refusing it. No I/O."""
        ...

    async def org_id(self, claim: Claim, facts: RequestFacts) -> str | Verdict:
        """The org of the claim, or the Verdict refusing it; may read state."""
        ...
