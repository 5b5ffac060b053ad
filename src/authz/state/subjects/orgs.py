"""Orgs: their stored hash (plan, policy, custom providers, alerts), policies and plans."""

from __future__ import annotations

import json
import time
from typing import Any

from authz.state.layout import (
    ORG_MESSAGE,
    OrgRecord,
    Pipeline,
    decoded,
    json_text,
    org_index,
    policy_from_json,
    policy_to_json,
)
from authz.state.writes import (
    Change,
    ChangedSinceRead,
    StoreBase,
    VersionConflict,
)
from authz.v1 import policy_pb2


class OrgStore(StoreBase):
    async def org(self, org_id: str) -> OrgRecord | None:
        """The org's stored hash; None when Redis has none at all."""
        return (await self.orgs([org_id]))[0]

    async def orgs(self, org_ids: list[str]) -> list[OrgRecord | None]:
        def fill(pipe: Pipeline) -> None:
            for org_id in org_ids:
                pipe.hgetall(self.keys.org(org_id))

        _, results = await self._read(fill)
        return [r or None for r in results]

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
                raise ChangedSinceRead(f"the plan changed since it was read ({expected or '(none)'} -> {decoded(old)})")
            return Change(
                lambda pipe: pipe.hset(key, "plan", plan),
                org_id=org_id,
                before=json_text({"plan": old.decode()} if old else None),
                after=json_text({"plan": plan}),
            )

        await self.audited_write("org.set_plan", actor, prepare, key, invalidate=ORG_MESSAGE + org_id)

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
