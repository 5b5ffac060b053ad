"""Redis layout and every read and write of it (docs/operating.md, "Redis layout").

Writes that change what decisions see (catalog, policy, API keys) happen in one MULTI/EXEC
with the invalidation they publish, so no process can miss a change that was stored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from redis.asyncio.cluster import RedisCluster

from authz.ids import api_key_hash, api_key_id
from authz.policy import catalog as catalog_mod
from authz.state import audit
from authz.v1 import catalog_pb2, policy_pb2

# redis-py types every reply as bytes | str (decode_responses is a runtime choice) and its
# single-node, Sentinel and cluster clients share no base class; authz always reads bytes.
RedisClient = Any

# An org as stored: its Redis hash (plan, policy, custom_providers, alerts as JSON).
OrgRecord = dict[bytes, bytes]

CATALOG_MESSAGE = "catalog"
_PAGE = 1000  # stream entries per read
_ORG_AUDIT_MAXLEN = 10_000  # per org's audit listing; the shared, hash-chained stream keeps all
ORG_MESSAGE = "org:"
APIKEY_MESSAGE = "apikey:"


def hash_tag(key: str) -> str:
    """A prefix that puts derived keys in `key`'s Redis Cluster slot: its own {tag} if it has
    one (e.g. with key_prefix "{authz}:"), else the whole key as the tag."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start != -1 and end > start + 1:
        return key[start : end + 1]
    return "{" + key + "}"


def org_index(stream: str, org_id: str) -> str:
    """The org's own bounded copy of a shared event stream. It extends the stream's name, so it
    shares the stream's hash tag (on Redis Cluster the key prefix must carry one)."""
    return f"{stream}:org:{org_id}"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "authz:"

    @property
    def catalog(self) -> str:
        return f"{self.prefix}catalog"

    @property
    def invalidate(self) -> str:
        return f"{self.prefix}invalidate"

    @property
    def security_events(self) -> str:
        return f"{self.prefix}events:security"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def audit_events(self) -> str:
        return f"{self.prefix}events:audit"

    @property
    def audit_head(self) -> str:
        return f"{self.prefix}events:audit:head"

    @property
    def state(self) -> str:
        """The state marker: written with the first catalog load, required by every write, read
        with every cold read. Its absence means Redis lost its data (or was never loaded)."""
        return f"{self.prefix}state"

    @property
    def streams(self) -> tuple[str, str]:
        """The event streams, which the service writes even while the state marker is missing."""
        return (self.security_events, self.audit_events)

    def org(self, org_id: str) -> str:
        return f"{self.prefix}org:{org_id}"

    def apikey(self, key_hash: str) -> str:
        return f"{self.prefix}apikey:{key_hash}"

    def block_count(self, org_id: str, window_index: int) -> str:
        """An org's blocks in one fixed alert window (alerts.BlockCounter); expires with it."""
        return f"{self.prefix}blocks:{org_id}:{window_index}"

    def egress_alerted(self, org_id: str, window_index: int) -> str:
        """Set once an egress block of the org was alerted in this window (alerts.BlockCounter)."""
        return f"{self.prefix}egress-alerted:{org_id}:{window_index}"


def policy_to_json(p: policy_pb2.CompliancePolicy) -> str:
    return str(json_format.MessageToJson(p, preserving_proto_field_name=True, indent=None))


def policy_from_json(text: str | bytes) -> policy_pb2.CompliancePolicy:
    policy = policy_pb2.CompliancePolicy()
    json_format.Parse(text, policy)
    return policy


def custom_providers_of(fields: dict[bytes, bytes]) -> catalog_pb2.CustomProviders:
    raw = fields.get(b"custom_providers")
    providers = catalog_pb2.CustomProviders()
    if raw:
        json_format.Parse(raw, providers)
    return providers


def _decoded(raw: bytes | None) -> str:
    return raw.decode() if raw else "(none)"


def alert_settings(fields: dict[bytes, bytes]) -> policy_pb2.AlertSettings:
    raw = fields.get(b"alerts")
    alerts = policy_pb2.AlertSettings()
    if raw:
        json_format.Parse(raw, alerts)
    return alerts


Pipeline = Any  # redis-py's (cluster) pipeline: it has no common type to annotate with


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


class Store:
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

    # --- reads (the cache's) -------------------------------------------------------------

    async def catalog_raw(self) -> bytes | None:
        return await self.redis.get(self.keys.catalog)

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

    async def state_and_catalog(self) -> tuple[bytes, bytes | None]:
        epoch, (raw,) = await self._read(lambda pipe: pipe.get(self.keys.catalog))
        return epoch, raw

    async def org(self, org_id: str) -> OrgRecord | None:
        """The org's stored hash; None when Redis has none at all."""
        return (await self.orgs([org_id]))[0]

    async def orgs(self, org_ids: list[str]) -> list[OrgRecord | None]:
        def fill(pipe: Pipeline) -> None:
            for org_id in org_ids:
                pipe.hgetall(self.keys.org(org_id))

        _, results = await self._read(fill)
        return [r or None for r in results]

    async def org_for_key_hashes(self, key_hashes: list[str]) -> list[str | None]:
        if not key_hashes:
            return []

        def fill(pipe: Pipeline) -> None:
            for h in key_hashes:  # GETs, not MGET: redis-py refuses MGET in a cluster pipeline
                pipe.get(self.keys.apikey(h))

        _, values = await self._read(fill)
        return [v.decode() if v is not None else None for v in values]

    async def policy(self, org_id: str) -> policy_pb2.CompliancePolicy | None:
        raw = await self.redis.hget(self.keys.org(org_id), "policy")
        return policy_from_json(raw) if raw else None

    async def plan(self, org_id: str) -> str:
        raw = await self.redis.hget(self.keys.org(org_id), "plan")
        return raw.decode() if raw else ""

    async def recent(self, stream: str, org_id: str, limit: int) -> list[dict[str, Any]]:
        """The org's newest `limit` entries of a shared stream, newest first, from the org's own
        index (one org's volume never hides another's)."""
        entries = await self.redis.xrevrange(org_index(stream, org_id), count=limit)
        return [json.loads(fields[b"event"]) for _, fields in entries]

    # --- writes (the CLI's and the admin API's) -------------------------------------------
    #
    # Each write WATCHes what it reads plus the audit head, then in one MULTI/EXEC stores the
    # change, publishes the invalidation and appends the audit event, so a change is never
    # stored without its audit record (or the reverse). A concurrent writer makes redis-py
    # retry the whole transaction.

    async def load_catalog(self, catalog: catalog_pb2.Catalog, actor: str) -> int:
        """Store a validated catalog as the next version; returns that version."""
        catalog_mod.validate(catalog)
        collisions = [
            (pid, org)
            for org, ids in (await self.custom_provider_ids()).items()
            for pid in ids
            if pid in catalog.providers
        ]
        if collisions:
            named = ", ".join(f"{pid!r} (custom provider of org {org!r})" for pid, org in sorted(collisions))
            raise catalog_mod.CatalogError(
                f"catalog provider ids collide with custom providers: {named}. The org must rename or delete "
                "its custom provider first, or the catalog entry must use another id"
            )

        async def prepare(pipe: Pipeline) -> Change:
            current_raw = await pipe.get(self.keys.catalog)
            current = catalog_mod.parse(current_raw) if current_raw else None
            state_missing = await pipe.hget(self.keys.state, "epoch") is None
            catalog.version = current.version + 1 if current else 1
            text = catalog_mod.to_json(catalog)
            before = {"version": current.version, "sha256": audit.digest(current_raw)} if current else None
            after = {
                "version": catalog.version,
                "sha256": audit.digest(text),
                "changes": catalog_mod.diff(current, catalog),
            }

            def apply(pipe: Pipeline) -> None:
                pipe.set(self.keys.catalog, text)
                if state_missing:  # a new install, or the first load after a loss: a new epoch
                    pipe.hset(
                        self.keys.state,
                        mapping={
                            "epoch": uuid.uuid4().hex,
                            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "created_by": actor,
                        },
                    )

            return Change(apply, target=f"v{catalog.version}", before=_json(before), after=_json(after))

        await self.audited_write(
            "catalog.load", actor, prepare, self.keys.catalog, invalidate=CATALOG_MESSAGE, bootstrap=True
        )
        return catalog.version

    async def set_policy(
        self, org_id: str, new: policy_pb2.CompliancePolicy, actor: str, expected_version: int | None = None
    ) -> policy_pb2.CompliancePolicy:
        """Store the org's policy as the next version and publish the change atomically.

        With `expected_version`, a concurrent change in between raises VersionConflict.
        """
        key = self.keys.org(org_id)
        stored = policy_pb2.CompliancePolicy()

        async def prepare(pipe: Pipeline) -> Change:
            raw = await pipe.hget(key, "policy")
            previous = policy_from_json(raw).version if raw else 0
            if expected_version is not None and expected_version != previous:
                raise VersionConflict(expected_version, previous)
            stored.CopyFrom(new)
            stored.version = previous + 1
            stored.updated_by = actor
            stored.updated_at.FromNanoseconds(time.time_ns())
            text = policy_to_json(stored)
            return Change(
                lambda pipe: pipe.hset(key, "policy", text),
                org_id=org_id,
                target=f"v{stored.version}",
                before=raw.decode() if raw else "",
                after=text,
            )

        await self.audited_write("policy.set", actor, prepare, key, invalidate=ORG_MESSAGE + org_id)
        return stored

    async def set_plan(self, org_id: str, plan: str, actor: str, expected: str | None = None) -> None:
        """With `expected` (the plan read before, "" for none), a different plan raises ChangedSinceRead."""
        key = self.keys.org(org_id)

        async def prepare(pipe: Pipeline) -> Change:
            old = await pipe.hget(key, "plan")
            if expected is not None and (old.decode() if old else "") != expected:
                raise ChangedSinceRead(
                    f"the plan changed since it was read ({expected or '(none)'} -> {_decoded(old)})"
                )
            return Change(
                lambda pipe: pipe.hset(key, "plan", plan),
                org_id=org_id,
                before=_json({"plan": old.decode()} if old else None),
                after=_json({"plan": plan}),
            )

        await self.audited_write("org.set_plan", actor, prepare, key, invalidate=ORG_MESSAGE + org_id)

    async def add_api_key(self, key: str, org_id: str, actor: str) -> str:
        key_hash = api_key_hash(key)
        redis_key = self.keys.apikey(key_hash)

        async def prepare(pipe: Pipeline) -> Change:
            old = await pipe.get(redis_key)
            return Change(
                lambda pipe: pipe.set(redis_key, org_id),
                org_id=org_id,
                target=api_key_id(key_hash),
                before=_json({"org_id": old.decode()} if old else None),
                after=_json({"org_id": org_id}),
            )

        await self.audited_write("apikey.add", actor, prepare, redis_key, invalidate=APIKEY_MESSAGE + key_hash)
        return key_hash

    async def revoke_api_key(self, key_hash: str, actor: str) -> bool:
        redis_key = self.keys.apikey(key_hash)

        async def prepare(pipe: Pipeline) -> Change | None:
            old = await pipe.get(redis_key)
            if old is None:
                return None
            return Change(
                lambda pipe: pipe.delete(redis_key),
                org_id=old.decode(),
                target=api_key_id(key_hash),
                before=_json({"org_id": old.decode()}),
            )

        change = await self.audited_write(
            "apikey.revoke", actor, prepare, redis_key, invalidate=APIKEY_MESSAGE + key_hash
        )
        return change is not None

    async def api_keys(self, org_id: str | None = None) -> list[tuple[str, str]]:
        """(sha256, org) of every registered key (of one org when given), by org then hash."""
        prefix = self.keys.apikey("")
        hashes = [k.decode()[len(prefix) :] async for k in self.redis.scan_iter(match=prefix + "*", count=1000)]
        orgs = await self.org_for_key_hashes(hashes) if hashes else []
        found = [(h, o) for h, o in zip(hashes, orgs, strict=True) if o is not None and org_id in (None, o)]
        return sorted(found, key=lambda pair: (pair[1], pair[0]))

    async def custom_provider_ids(self) -> dict[str, list[str]]:
        """Every org's custom provider ids (orgs without any are left out)."""
        found: dict[str, list[str]] = {}
        async for key in self.redis.scan_iter(match=self.keys.org("*"), count=500):
            raw = await self.redis.hget(key, "custom_providers")
            if raw:
                ids = list(custom_providers_of({b"custom_providers": raw}).providers)
                if ids:
                    found[key.decode()[len(self.keys.org("")) :]] = ids
        return found

    async def enabled_policies(self) -> dict[str, policy_pb2.CompliancePolicy]:
        """Every org's enabled policy (orgs without one are left out)."""
        found: dict[str, policy_pb2.CompliancePolicy] = {}
        async for key in self.redis.scan_iter(match=self.keys.org("*"), count=500):
            raw = await self.redis.hget(key, "policy")
            if raw:
                p = policy_from_json(raw)
                if p.enabled:
                    found[key.decode()[len(self.keys.org("")) :]] = p
        return found

    async def org_ids(self) -> list[str]:
        """Every org with a record (plan, policy, custom providers or alerts)."""
        start = len(self.keys.org(""))
        return [key.decode()[start:] async for key in self.redis.scan_iter(match=self.keys.org("*"), count=1000)]

    async def org_fields(self, org_id: str) -> dict[bytes, bytes]:
        """The org's whole hash, for readers that want several of its fields."""
        return await self.redis.hgetall(self.keys.org(org_id))

    async def custom_providers(self, org_id: str) -> catalog_pb2.CustomProviders:
        raw = await self.redis.hget(self.keys.org(org_id), "custom_providers")
        return custom_providers_of({b"custom_providers": raw} if raw else {})

    async def set_custom_provider(
        self,
        org_id: str,
        provider: catalog_pb2.CustomProvider | None,
        actor: str,
        provider_id: str = "",
        max_providers: int | None = None,
        expected: catalog_pb2.CustomProvider | None = UNCHECKED,
    ) -> catalog_pb2.CustomProvider | None:
        """Add, replace (provider) or remove (None, provider_id) one of the org's providers.
        Adding one past `max_providers` raises LimitReached (checked in the same transaction).
        With `expected` (the provider read before, None for none), another raises ChangedSinceRead."""
        key = self.keys.org(org_id)
        provider_id = provider.id if provider is not None else provider_id

        async def prepare(pipe: Pipeline) -> Change | None:
            raw = await pipe.hget(key, "custom_providers")
            current = custom_providers_of({b"custom_providers": raw} if raw else {})
            before = current.providers.get(provider_id)
            if expected is not UNCHECKED and before != expected:
                raise ChangedSinceRead(f"custom provider {provider_id} changed since it was read")
            if provider is None:
                if before is None:
                    return None
                del current.providers[provider_id]
            else:
                if before is None and max_providers is not None and len(current.providers) >= max_providers:
                    raise LimitReached(f"custom providers: {len(current.providers)} already, at most {max_providers}")
                current.providers[provider_id].CopyFrom(provider)
            text = _message_json(current)
            return Change(
                lambda pipe: pipe.hset(key, "custom_providers", text),
                org_id=org_id,
                target=provider_id,
                before=_message_json(before) if before is not None else "",
                after=_message_json(provider) if provider is not None else "",
                result=provider if provider is not None else before,
            )

        change = await self.audited_write(
            "custom_provider.delete" if provider is None else "custom_provider.set",
            actor,
            prepare,
            key,
            invalidate=ORG_MESSAGE + org_id,
        )
        return change.result if change is not None else None

    async def set_alerts(
        self,
        org_id: str,
        alerts: policy_pb2.AlertSettings,
        actor: str,
        expected: policy_pb2.AlertSettings | None = None,
    ) -> None:
        """With `expected` (the settings read before), other settings raise ChangedSinceRead."""
        key = self.keys.org(org_id)
        text = _message_json(alerts)

        async def prepare(pipe: Pipeline) -> Change:
            raw = await pipe.hget(key, "alerts")
            if expected is not None and alert_settings({b"alerts": raw} if raw else {}) != expected:
                raise ChangedSinceRead("the alert settings changed since they were read")
            return Change(
                lambda pipe: pipe.hset(key, "alerts", text),
                org_id=org_id,
                before=raw.decode() if raw else "",
                after=text,
            )

        await self.audited_write("alerts.set", actor, prepare, key, invalidate=ORG_MESSAGE + org_id)

    # --- the audit chain ------------------------------------------------------------------

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


def _message_json(message: Message) -> str:
    return str(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None, sort_keys=True))


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))
