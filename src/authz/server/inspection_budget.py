"""How many body bytes one org may have inspected per second.

Reading a large body is the one Check cost a client controls: a 32 MiB JSON body costs tens to
hundreds of milliseconds of the event loop every other org's Checks wait on. Each org gets a
token bucket of bytes, charged by bodies of at least HEAVY_BYTES (small bodies are never
counted, so ordinary traffic is never slowed); past it, the org's large requests are refused
with 429 before their body is read, and other orgs keep their latency.
"""

from __future__ import annotations

from authz.server.buckets import TokenBuckets

HEAVY_BYTES = 1024 * 1024


class InspectionBudget:
    def __init__(self, bytes_per_s: float, burst_bytes: float, max_orgs: int = 10_000):
        self.per_s = bytes_per_s  # 0: no limit
        self._buckets = TokenBuckets(bytes_per_s, burst_bytes, max_orgs)  # org -> bytes left

    def allow(self, org_id: str, size: int) -> bool:
        """Whether `size` more bytes of the org's may be read now (and charge them if so)."""
        return self.per_s <= 0 or size < HEAVY_BYTES or self._buckets.take(org_id, size)
