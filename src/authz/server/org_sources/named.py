"""Orgs the request names, each checked as an id: org_source = "header" (a header the edge
sets) or "jwt" (a claim Envoy's jwt_authn verified), and "static" (one org for every request
of a single-company deployment, so no key has to be registered)."""

from __future__ import annotations

from authz.check.request import RequestFacts
from authz.check.verdict import Verdict
from authz.ids import ORG_ID, api_key_hash, api_key_id
from authz.reasons import Reason
from authz.server.org_sources import Claim


class HeaderOrg:
    """The org in the header or claim Envoy read (ReadConfig.org / org_claim): one id, or refused."""

    def claimed(self, facts: RequestFacts) -> Claim | Verdict:
        org_id = facts.org_header
        if not org_id:
            return Verdict(Reason.ORG_MISSING)
        if not ORG_ID.fullmatch(org_id):
            return Verdict(Reason.ORG_MALFORMED)
        return Claim(org_id=org_id)

    async def org_id(self, claim: Claim, facts: RequestFacts) -> str | Verdict:
        return claim.org_id


class StaticOrg:
    """One org for every request. At ingress a request may still have to carry a credential
    (`static_requires_credential`), whose id then goes in its events; at egress the call's
    credential is the provider's own key, which names nothing here."""

    def __init__(self, org_id: str, requires_credential: bool, names_key: bool = True):
        self._org_id = org_id
        self._requires_credential = requires_credential
        self._names_key = names_key

    def claimed(self, facts: RequestFacts) -> Claim | Verdict:
        if self._requires_credential and facts.api_key is None:
            return Verdict(Reason.ORG_MISSING)
        if facts.api_key is not None and self._names_key:
            return Claim(org_id=self._org_id, key_id=api_key_id(api_key_hash(facts.api_key)))
        return Claim(org_id=self._org_id)

    async def org_id(self, claim: Claim, facts: RequestFacts) -> str | Verdict:
        return claim.org_id
