"""The org of the request's API key: org_source = "api_key" (keys registered in Redis, read
through the state cache) or "gateway" (the gateway's own key API, cached). Unknown keys draw
from a per-client budget, so a client guessing keys cannot make every Check a cold lookup."""

from __future__ import annotations

from typing import Protocol

from authz.check.request import RequestFacts
from authz.check.verdict import Verdict
from authz.ids import api_key_hash, api_key_id
from authz.reasons import Reason
from authz.server.org_sources import Claim
from authz.server.unknown_keys import UnknownKeyLimiter
from authz.state.cache import StateCache


class KeyLookup(Protocol):
    def cached(self, key_hash: str) -> tuple[bool, str | None]:
        """(known, org) without I/O: whether a lookup would be cold, and its answer if not."""
        ...

    async def resolve(self, key: str, key_hash: str) -> str | None:
        """The key's org, None when it is unknown (a cold lookup)."""
        ...


class RedisKeys:
    """Keys registered with authz (`authz orgs add-key`), through the state cache."""

    def __init__(self, cache: StateCache):
        self._cache = cache
        self.cached = cache.cached_org_for_key  # the warm path: no frame of our own around it

    async def resolve(self, key: str, key_hash: str) -> str | None:
        return await self._cache.org_for_key_hash(key_hash)


class ApiKeyOrg:
    def __init__(self, keys: KeyLookup, unknown_keys: UnknownKeyLimiter):
        self._keys = keys
        self._unknown_keys = unknown_keys

    def claimed(self, facts: RequestFacts) -> Claim | Verdict:
        if facts.api_key is None:
            return Verdict(Reason.ORG_MISSING)
        if facts.credential_conflict:  # two different keys: the gateway might prefer the other
            return Verdict(Reason.CREDENTIAL_CONFLICT)
        key_hash = api_key_hash(facts.api_key)
        known, org_id = self._keys.cached(key_hash)  # memory only: a known key's org, or a lookup to come
        return Claim(
            key_id=api_key_id(key_hash),
            key=facts.api_key,
            key_hash=key_hash,
            known_org=(org_id or "") if known else "",
            key_known=known,
        )

    async def org_id(self, claim: Claim, facts: RequestFacts) -> str | Verdict:
        assert claim.key is not None  # claimed() refuses a request without one
        org_id = claim.known_org or None  # claimed() looked it up: known here means known unknown
        if not claim.key_known:
            if self._unknown_keys.exhausted(facts.client_address):
                return Verdict(Reason.TOO_MANY_UNKNOWN_KEYS)
            org_id = await self._keys.resolve(claim.key, claim.key_hash)
            if org_id is None:
                self._unknown_keys.charge(facts.client_address)
        return Verdict(Reason.API_KEY_UNKNOWN) if org_id is None else org_id
