"""Each org source (authz.server.org_sources) on its own: what a request claims, and what is
refused before the state is read, in the order the Checker relies on."""

from __future__ import annotations

import asyncio
import time

from authz.check import assertion
from authz.check.egress import EGRESS
from authz.check.request import ReadConfig, read
from authz.check.verdict import Verdict
from authz.ids import api_key_hash, api_key_id
from authz.reasons import Reason
from authz.server.org_sources import Claim
from authz.server.org_sources.api_key import ApiKeyOrg
from authz.server.org_sources.assertion import AssertionOrg
from authz.server.org_sources.named import HeaderOrg, StaticOrg
from authz.server.unknown_keys import UnknownKeyLimiter
from support.checkrequests import check_request

KEY = b"k" * 32
NAMES = ReadConfig(org="x-org", routing_headers=(assertion.HEADER,))


def facts(headers: dict[str, str] | None = None):
    return read(check_request({"model": "m"}, headers), NAMES)


def reason(found: Claim | Verdict) -> Reason | None:
    return found.reason if isinstance(found, Verdict) else None


def test_a_header_org_is_one_id_or_refused():
    source = HeaderOrg()
    assert reason(source.claimed(facts())) is Reason.ORG_MISSING
    assert reason(source.claimed(facts({"x-org": "a,b"}))) is Reason.ORG_MALFORMED
    assert source.claimed(facts({"x-org": "acme"})) == Claim(org_id="acme")


def test_a_static_org_may_require_a_credential_and_names_its_key():
    bare, keyed = facts(), facts({"authorization": "Bearer sk-1"})
    assert reason(StaticOrg("acme", requires_credential=True).claimed(bare)) is Reason.ORG_MISSING
    assert StaticOrg("acme", requires_credential=False).claimed(bare) == Claim(org_id="acme")
    assert StaticOrg("acme", True).claimed(keyed) == Claim(org_id="acme", key_id=api_key_id(api_key_hash("sk-1")))
    # At egress the credential is the provider's own key: it names nothing here.
    assert StaticOrg("acme", False, names_key=False).claimed(keyed) == Claim(org_id="acme")


class Lookup:
    def __init__(self, known: dict[str, str], cached: bool):
        self.known, self.warm, self.resolved = known, cached, 0

    def cached(self, key_hash: str) -> tuple[bool, str | None]:
        return (True, self.known.get(key_hash)) if self.warm else (False, None)

    async def resolve(self, key: str, key_hash: str) -> str | None:
        self.resolved += 1
        return self.known.get(key_hash)


def test_an_api_key_is_refused_missing_or_conflicting_before_any_lookup():
    source = ApiKeyOrg(Lookup({}, cached=False), UnknownKeyLimiter(per_s=1, burst=1))
    assert reason(source.claimed(facts())) is Reason.ORG_MISSING
    conflict = facts({"authorization": "Bearer sk-1", "x-api-key": "sk-2"})
    assert reason(source.claimed(conflict)) is Reason.CREDENTIAL_CONFLICT


def test_an_api_keys_org_is_looked_up_and_unknown_keys_draw_from_the_clients_budget():
    lookup = Lookup({api_key_hash("sk-1"): "acme"}, cached=False)
    source = ApiKeyOrg(lookup, UnknownKeyLimiter(per_s=0.001, burst=1))

    def org_of(key: str) -> str | Verdict:
        request = facts({"authorization": f"Bearer {key}"})
        claim = source.claimed(request)
        assert isinstance(claim, Claim) and claim.key_id == api_key_id(api_key_hash(key))
        return asyncio.run(source.org_id(claim, request))

    assert org_of("sk-1") == "acme"
    assert reason(org_of("sk-guess")) is Reason.API_KEY_UNKNOWN  # charged
    before = lookup.resolved
    assert reason(org_of("sk-guess-2")) is Reason.TOO_MANY_UNKNOWN_KEYS and lookup.resolved == before  # no lookup


def test_a_warm_key_is_answered_without_a_lookup():
    lookup = Lookup({api_key_hash("sk-1"): "acme"}, cached=True)
    source = ApiKeyOrg(lookup, UnknownKeyLimiter(per_s=0, burst=0))
    request = facts({"authorization": "Bearer sk-1"})
    claim = source.claimed(request)
    assert isinstance(claim, Claim)
    assert asyncio.run(source.org_id(claim, request)) == "acme" and lookup.resolved == 0


def test_the_egress_org_is_the_signed_one_and_nothing_else():
    source = AssertionOrg(KEY)
    assert source.claimed(facts()) == Verdict(Reason.ORG_MISSING, checkpoint=EGRESS)
    forged = assertion.sign("acme", b"x" * 32, time.time(), 60)
    assert source.claimed(facts({assertion.HEADER: forged})) == Verdict(Reason.ORG_MALFORMED, checkpoint=EGRESS)
    signed = assertion.sign("acme", KEY, time.time(), 60)
    assert source.claimed(facts({assertion.HEADER: signed})) == Claim(org_id="acme")
    assert source.claimed(facts({assertion.HEADER: signed})) == Claim(org_id="acme")  # remembered, same answer
    expired = assertion.sign("acme", KEY, time.time() - 120, 60)
    assert reason(source.claimed(facts({assertion.HEADER: expired}))) is Reason.ORG_MALFORMED
    # Without a key no assertion is trusted, whatever it says.
    assert reason(AssertionOrg(b"").claimed(facts({assertion.HEADER: signed}))) is Reason.ORG_MISSING
