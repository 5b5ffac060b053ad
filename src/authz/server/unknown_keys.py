"""How fast one client address may try API keys that do not exist.

A valid key is looked up in Redis once and then cached; an unknown one is remembered only
briefly (a bounded LRU), so a client that sprays made-up keys would turn every Check into a
Redis round trip. Each address gets a token bucket charged only by keys that turned out
unknown: clients with real keys, even many behind one load balancer, are never slowed.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class UnknownKeyLimiter:
    def __init__(self, per_s: float, burst: int, max_addresses: int = 10_000):
        self.per_s = per_s  # 0: no limit
        self.burst = burst
        self._max = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.per_s)

    def exhausted(self, address: str) -> bool:
        """Whether the address has used up its unknown-key lookups for now."""
        return self.per_s > 0 and address in self._buckets and self._tokens(address, time.monotonic()) < 1

    def charge(self, address: str) -> None:
        """The address asked for a key that does not exist."""
        if self.per_s <= 0:
            return
        now = time.monotonic()
        self._buckets[address] = (self._tokens(address, now) - 1, now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > self._max:  # forgetting an address only ever lets it try again
            self._buckets.popitem(last=False)
