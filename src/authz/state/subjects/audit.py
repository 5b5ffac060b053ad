"""The audit trail: its entries and head, and stream reads a page at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from authz.state.writes import (
    StoreBase,
)

_PAGE = 1000  # stream entries per read


class AuditStore(StoreBase):
    async def stream_entries(self, stream: str, start: str = "-") -> AsyncIterator[tuple[str, dict[bytes, bytes]]]:
        """Every entry of a stream from `start` (an entry id, "-" for the oldest), in order,
        read a page at a time."""
        while True:
            batch = await self.redis.xrange(stream, min=start, count=_PAGE)
            for entry_id, fields in batch:
                yield entry_id.decode(), fields
            if len(batch) < _PAGE:
                return
            start = "(" + batch[-1][0].decode()

    async def audit_entries(self) -> list[tuple[str, str, str]]:
        """Every audit entry in stream order as (entry id, event JSON, stored hash)."""
        return [
            (entry_id, fields.get(b"event", b"").decode(), fields.get(b"hash", b"").decode())
            async for entry_id, fields in self.stream_entries(self.keys.audit_events)
        ]

    async def audit_head(self) -> tuple[int, str] | None:
        head = await self.redis.hgetall(self.keys.audit_head)
        return (int(head[b"seq"]), head[b"hash"].decode()) if head else None
