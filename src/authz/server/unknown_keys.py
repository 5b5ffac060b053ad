"""How fast one client address may try API keys that do not exist.

A valid key is looked up in Redis once and then cached; an unknown one is remembered only
briefly (a bounded LRU), so a client that sprays made-up keys would turn every Check into a
Redis round trip. Each address gets a token bucket charged only by keys that turned out
unknown: clients with real keys, even many behind one load balancer, are never slowed.
"""

from __future__ import annotations

from authz.server.buckets import TokenBuckets


class UnknownKeyLimiter:
    def __init__(self, per_s: float, burst: int, max_addresses: int = 10_000):
        self.per_s = per_s  # 0: no limit
        self._buckets = TokenBuckets(per_s, burst, max_addresses)  # address -> unknown-key lookups

    def exhausted(self, address: str) -> bool:
        """Whether the address has used up its unknown-key lookups for now."""
        return self.per_s > 0 and address in self._buckets and self._buckets.level(address) < 1

    def charge(self, address: str) -> None:
        """The address asked for a key that does not exist."""
        if self.per_s > 0:
            self._buckets.charge(address, 1)
