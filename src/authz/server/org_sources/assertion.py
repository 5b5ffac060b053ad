"""The egress checkpoint's org: signed by the ingress checkpoint for each request it forwards
(authz.check.assertion), verified here on the gateway's call to a provider. Both ends live
here: `AssertionSigner` at ingress, `AssertionOrg` (the egress org source) at egress."""

from __future__ import annotations

import time

from authz.check import assertion
from authz.check.egress import EGRESS
from authz.check.request import RequestFacts
from authz.check.verdict import Verdict
from authz.reasons import Reason
from authz.server.org_sources import Claim

_SIGNED_MAX = 10_000  # orgs with an assertion of the current second (orgs come and go)
_VERIFIED_MAX = 4096  # verified assertions remembered (a new one per org and second)


class AssertionSigner:
    """The signed org on a request forwarded for a known org. Its expiry counts in whole
    seconds, so the requests of one org within one second share one assertion (the egress
    check keeps no nonces: a shared one is worth no more to a thief than any other), and
    signing costs one HMAC per org and second, not per request."""

    def __init__(self, key: bytes, ttl_s: int):
        self._key = key
        self._ttl_s = ttl_s
        self._signed: dict[str, tuple[int, str]] = {}  # org -> (the second it was signed in, the assertion)

    def __call__(self, verdict: Verdict) -> str:
        if not self._key or not verdict.org_id or not verdict.allowed:
            return ""
        now = time.time()
        second = int(now)
        signed = self._signed.get(verdict.org_id)
        if signed is not None and signed[0] == second:
            return signed[1]
        token = assertion.sign(verdict.org_id, self._key, now, self._ttl_s)
        if len(self._signed) >= _SIGNED_MAX:
            self._signed.clear()
        self._signed[verdict.org_id] = (second, token)
        return token


class AssertionOrg:
    """The org the ingress checkpoint signed; none (or an invalid one) is refused."""

    def __init__(self, key: bytes):
        self._key = key
        self._verified: dict[str, tuple[str, int]] = {}  # assertion -> (org, expiry), bounded

    def claimed(self, facts: RequestFacts) -> Claim | Verdict:
        token = facts.routing_headers.get(assertion.HEADER)
        if token is None or not self._key:
            return Verdict(Reason.ORG_MISSING, checkpoint=EGRESS)
        now = time.time()
        known = self._verified.get(token)
        if known is None or known[1] <= now:
            # One HMAC per assertion, not per call (an org's calls within a second share one).
            known = assertion.verified(token, self._key, now)
            if known is None:  # forged, expired or malformed: someone tried, recorded
                return Verdict(Reason.ORG_MALFORMED, checkpoint=EGRESS)
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[token] = known
        return Claim(org_id=known[0])

    async def org_id(self, claim: Claim, facts: RequestFacts) -> str | Verdict:
        return claim.org_id
