"""How the state changes: every write is one audited MULTI/EXEC (`StoreBase.audited_write`),
with the invalidation every process follows and the audit event chained to the head; every
cold read goes through the state marker (`StoreBase._read`). The Store's subjects
(authz.state.subjects) build on this."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster

from authz.state import audit
from authz.state.layout import Keys, Pipeline, RedisClient, org_index

_ORG_AUDIT_MAXLEN = 10_000  # per org's audit listing; the shared, hash-chained stream keeps all


@dataclass(frozen=True, slots=True)
class Change:
    """One audited write, as `audited_write`'s prepare step describes it."""

    apply: Callable[[Pipeline], object]  # queues the writes (inside MULTI)
    org_id: str = ""
    target: str = ""
    before: str = ""  # the audit event's before/after (JSON text, "" for none)
    after: str = ""
    result: Any = None  # what the caller returns


class StateLost(Exception):
    """Redis holds no state marker: restarted without persistence, flushed, evicted, or failed
    over to an empty replica (or never bootstrapped). Its emptiness means nothing about policies."""

    def __init__(self) -> None:
        super().__init__(
            "Redis holds no authz state (the state marker is missing): its data was lost, or no "
            "catalog was ever loaded. Restore Redis from its backup or AOF; on a new install, "
            "load the catalog first (authz catalog load FILE)"
        )


class LimitReached(Exception):
    """A write would store more than a tenant may (admin_validation's limits)."""


class ChangedSinceRead(Exception):
    """A conditional write found something else than what was read before it: a concurrent edit
    (the settings page between `policy diff` and `policy apply`, say), never overwritten unseen."""


class VersionConflict(ChangedSinceRead):
    def __init__(self, expected: int, stored: int):
        super().__init__(f"the policy is at version {stored}, not {expected}: someone changed it; reload and retry")
        self.expected = expected
        self.stored = stored


UNCHECKED: Any = object()  # a write with no expectation of what it replaces


class StoreBase:
    def __init__(self, redis: RedisClient, keys: Keys):
        self.redis = redis
        self.keys = keys
        # Redis Cluster cannot PUBLISH inside a transaction: there the invalidation follows
        # EXEC (a crash in between is covered by the periodic resync).
        self.cluster = isinstance(redis, RedisCluster)

    async def audited_write(
        self,
        action: str,
        actor: str,
        prepare: Callable[[Pipeline], Awaitable[Change | None]],
        *watch: str,
        invalidate: str = "",
        bootstrap: bool = False,
    ) -> Change | None:
        """The one way state changes. `prepare` reads what it needs through the pipeline (its
        keys are in `watch`) and returns the Change, or None to write nothing. Then, in one
        MULTI/EXEC: the change, the invalidation every process follows, and the audit event
        chained to the head, so a change is never stored without its audit record (or the
        reverse). A concurrent writer makes redis-py retry the whole transaction. Every write
        needs the state marker (`bootstrap`: the first catalog load creates it)."""
        attempt_change: list[Change | None] = [None]

        async def attempt(pipe: Pipeline) -> None:
            change = attempt_change[0] = await prepare(pipe)
            if change is None:
                return
            head = await self._audit_head(pipe, bootstrap)
            pipe.multi()
            change.apply(pipe)
            if invalidate and not self.cluster:
                pipe.publish(self.keys.invalidate, invalidate)
            self._queue_audit(
                pipe,
                head,
                actor,
                action,
                org_id=change.org_id,
                target=change.target,
                before=change.before,
                after=change.after,
            )

        await self.redis.transaction(attempt, self.keys.state, self.keys.audit_head, *watch)
        change = attempt_change[0]
        if change is not None and invalidate and self.cluster:
            # Redis Cluster cannot PUBLISH inside a transaction: there the invalidation follows
            # EXEC (a crash in between is covered by the periodic resync).
            await self.redis.publish(self.keys.invalidate, invalidate)
        return change

    async def _read(self, fill: Callable[[Pipeline], None]) -> tuple[bytes, list[Any]]:
        """Run reads in one pipeline behind the state marker: (epoch, results), or StateLost.
        Every read the cache makes goes through here, so no empty reply is ever taken for
        "no policy" or "no key" after Redis lost its data."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.state, "epoch")
            fill(pipe)
            epoch, *results = await pipe.execute()
        if epoch is None:
            raise StateLost()
        return epoch, results

    async def _audit_head(self, pipe: Pipeline, bootstrap: bool = False) -> tuple[int, str]:
        """The audit chain's head, read (WATCHed) by every write. A write needs the state marker:
        after data loss, one org's change must not look like the whole state is back."""
        # HGET, not EXISTS: redis-py's cluster transactions mishandle EXISTS (a multi-key command).
        if not bootstrap and await pipe.hget(self.keys.state, "epoch") is None:
            raise StateLost()
        head = await pipe.hgetall(self.keys.audit_head)
        return int(head.get(b"seq", 0)), head.get(b"hash", b"").decode()

    def _queue_audit(
        self, pipe: Pipeline, head: tuple[int, str], actor: str, action: str, *, org_id: str = "", **fields: str
    ) -> None:
        seq, prev_hash = head[0] + 1, head[1]
        if org_id:
            fields["org_id"] = org_id
        event = audit.new_event(seq=seq, prev_hash=prev_hash, actor=actor, action=action, **fields)
        text = audit.canonical(event)
        hashed = audit.digest(text)
        pipe.xadd(self.keys.audit_events, {"seq": seq, "event": text, "hash": hashed})
        pipe.hset(self.keys.audit_head, mapping={"seq": seq, "hash": hashed})
        if org_id:
            pipe.xadd(
                org_index(self.keys.audit_events, org_id), {"event": text}, maxlen=_ORG_AUDIT_MAXLEN, approximate=True
            )
