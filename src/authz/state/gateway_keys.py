"""Knowing the org from the gateway's own API keys (org_source = "gateway").

Teams whose clients hold LiteLLM virtual keys cannot keep a second copy of every key in authz.
On a cache miss authz asks the gateway's key API which team (or metadata field) a key belongs
to, and caches the answer: known keys for `gateway_key_cache_ttl_s`, unknown ones for
`gateway_key_negative_ttl_s` (so a stream of bad keys costs one call each, not one per
request). When the gateway cannot answer (down, slow, 5xx, a body it cannot read) the request
is refused with 503: an unknown answer never becomes an allow.

The first adapter is LiteLLM's `GET /key/info?key=...` (authorized with the proxy's master
key), whose `info` holds `team_id`, `user_id` and `metadata`; `gateway_key_org_field` says
which one names the org ("team_id", or "metadata.org_id" for a nested field).
"""

from __future__ import annotations

import time
from collections import OrderedDict

import aiohttp
import structlog

from authz.metrics import GATEWAY_KEY_LOOKUPS

log = structlog.get_logger("authz.state.gateway_keys")


class GatewayUnavailable(Exception):
    """The gateway's key API gave no usable answer."""


class LiteLLMKeyResolver:
    def __init__(
        self,
        url: str,
        token: str,
        org_field: str,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        timeout_s: float = 0.5,
        max_entries: int = 100_000,
    ):
        self.url = url
        self.token = token
        self.path = org_field.split(".")
        self.ttl_s, self.negative_ttl_s = ttl_s, negative_ttl_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None

    def cached(self, key_hash: str) -> tuple[bool, str | None]:
        """(found, org) from the cache, without I/O."""
        entry = self._cache.get(key_hash)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        self._cache.move_to_end(key_hash)
        return True, entry[0]

    async def resolve(self, key: str, key_hash: str) -> str | None:
        """The org of `key`, None when the gateway does not know it; raises GatewayUnavailable."""
        if self._session is None:
            # No environment proxies: the key API is the operator's own gateway.
            self._session = aiohttp.ClientSession(timeout=self.timeout, trust_env=False)
        started = time.perf_counter()
        try:
            # Never a redirect: it would carry the master token and the client's key to another
            # URL, and take that page's answer for the org.
            async with self._session.get(
                self.url,
                params={"key": key},
                headers={"authorization": f"Bearer {self.token}"},
                allow_redirects=False,
            ) as response:
                if response.status in (400, 401, 403, 404):
                    org = None  # LiteLLM answers these for a key it does not have
                elif 300 <= response.status < 400:
                    raise GatewayUnavailable(f"key API answered HTTP {response.status}: redirects are not followed")
                elif response.status != 200:
                    raise GatewayUnavailable(f"key API answered HTTP {response.status}")
                else:
                    org = self._org(await response.json(content_type=None))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            GATEWAY_KEY_LOOKUPS.labels("unavailable").inc()
            log.warning("gateway_key_api_unavailable", url=self.url, error=type(exc).__name__)
            raise GatewayUnavailable(str(exc)) from None
        except GatewayUnavailable:
            GATEWAY_KEY_LOOKUPS.labels("unavailable").inc()
            log.warning("gateway_key_api_unavailable", url=self.url)
            raise
        GATEWAY_KEY_LOOKUPS.labels("known" if org else "unknown").inc()
        log.debug("gateway_key_resolved", ms=round((time.perf_counter() - started) * 1e3, 2), known=bool(org))
        self._remember(key_hash, org)
        return org

    def _org(self, body: object) -> str | None:
        value = body.get("info") if isinstance(body, dict) else None
        for name in self.path:
            value = value.get(name) if isinstance(value, dict) else None
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > 128:
            raise GatewayUnavailable(f"key API: {'.'.join(self.path)} is not an org id")
        return value

    def _remember(self, key_hash: str, org: str | None) -> None:
        ttl = self.ttl_s if org else self.negative_ttl_s
        self._cache[key_hash] = (org, time.monotonic() + ttl)
        self._cache.move_to_end(key_hash)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
