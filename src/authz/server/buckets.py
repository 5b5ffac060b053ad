"""Token buckets per key (a client address, an org), bounded: the least recently charged keys
are forgotten first, which only ever gives them a full bucket again."""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBuckets:
    def __init__(self, per_s: float, burst: float, max_keys: int = 10_000):
        self.per_s = per_s
        self.burst = burst
        self._max = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def __contains__(self, key: str) -> bool:
        return key in self._buckets

    def __len__(self) -> int:
        return len(self._buckets)

    def level(self, key: str, now: float | None = None) -> float:
        """The tokens the key has now (a full bucket for a key never charged)."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.per_s)

    def charge(self, key: str, amount: float) -> None:
        """Take `amount` tokens, even below zero."""
        now = time.monotonic()
        self._set(key, self.level(key, now) - amount, now)

    def take(self, key: str, amount: float) -> bool:
        """Take `amount` tokens if the key has them; whether it had."""
        now = time.monotonic()
        tokens = self.level(key, now)
        allowed = tokens >= amount
        self._set(key, tokens - amount if allowed else tokens, now)
        return allowed

    def _set(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
