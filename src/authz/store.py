"""Redis layout and every read and write of it (DESIGN.md section 4).

Writes that change what decisions see (catalog, policy, API keys) happen in one MULTI/EXEC
with the invalidation they publish, so no process can miss a change that was stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from google.protobuf import json_format

from authz import catalog as catalog_mod
from authz.decision import OrgPolicy
from authz.policy import requirements_of
from authz.request import api_key_hash
from authz.v1 import catalog_pb2, policy_pb2

CATALOG_MESSAGE = "catalog"
ORG_MESSAGE = "org:"
APIKEY_MESSAGE = "apikey:"


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

    def org(self, org_id: str) -> str:
        return f"{self.prefix}org:{org_id}"

    def apikey(self, key_hash: str) -> str:
        return f"{self.prefix}apikey:{key_hash}"


def policy_to_json(p: policy_pb2.CompliancePolicy) -> str:
    return json_format.MessageToJson(p, preserving_proto_field_name=True, indent=None)


def policy_from_json(text: str | bytes) -> policy_pb2.CompliancePolicy:
    return json_format.Parse(text, policy_pb2.CompliancePolicy())


def org_policy(org_id: str, fields: dict[bytes, bytes]) -> OrgPolicy:
    """Reduce an org hash to what decisions need. A hash without a policy means no policy."""
    plan = fields.get(b"plan", b"").decode()
    raw = fields.get(b"policy")
    if not raw:
        return OrgPolicy(org_id=org_id, plan=plan)
    p = policy_from_json(raw)
    return OrgPolicy(
        org_id=org_id,
        plan=plan,
        version=p.version,
        requirements=requirements_of(p),
        enabled=p.enabled,
        enforced=p.mode != policy_pb2.POLICY_MODE_DRY_RUN,
    )


class Store:
    def __init__(self, redis: aioredis.Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    # --- reads (the cache's) -------------------------------------------------------------

    async def catalog_raw(self) -> bytes | None:
        return await self.redis.get(self.keys.catalog)

    async def org(self, org_id: str) -> OrgPolicy:
        return org_policy(org_id, await self.redis.hgetall(self.keys.org(org_id)))

    async def orgs(self, org_ids: list[str]) -> list[OrgPolicy]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for org_id in org_ids:
                pipe.hgetall(self.keys.org(org_id))
            results = await pipe.execute()
        return [org_policy(o, r) for o, r in zip(org_ids, results)]

    async def org_for_key_hashes(self, key_hashes: list[str]) -> list[str | None]:
        if not key_hashes:
            return []
        values = await self.redis.mget([self.keys.apikey(h) for h in key_hashes])
        return [v.decode() if v is not None else None for v in values]

    async def policy(self, org_id: str) -> policy_pb2.CompliancePolicy | None:
        raw = await self.redis.hget(self.keys.org(org_id), "policy")
        return policy_from_json(raw) if raw else None

    # --- writes (the CLI's and, later, the admin API's) ----------------------------------

    async def load_catalog(self, catalog: catalog_pb2.Catalog) -> int:
        """Store a validated catalog as the next version; returns that version."""
        catalog_mod.validate(catalog)

        async def write(pipe) -> int:
            current = await pipe.get(self.keys.catalog)
            version = catalog_mod.parse(current).version + 1 if current else 1
            catalog.version = version
            pipe.multi()
            pipe.set(self.keys.catalog, catalog_mod.to_json(catalog))
            pipe.publish(self.keys.invalidate, CATALOG_MESSAGE)
            return version

        return await self.redis.transaction(write, self.keys.catalog, value_from_callable=True)

    async def set_policy(self, org_id: str, new: policy_pb2.CompliancePolicy, actor: str) -> policy_pb2.CompliancePolicy:
        """Store the org's policy as the next version and publish the change atomically."""
        key = self.keys.org(org_id)
        stored = policy_pb2.CompliancePolicy()

        async def write(pipe) -> None:
            raw = await pipe.hget(key, "policy")
            previous = policy_from_json(raw).version if raw else 0
            stored.CopyFrom(new)
            stored.version = previous + 1
            stored.updated_by = actor
            stored.updated_at.FromNanoseconds(time.time_ns())
            pipe.multi()
            pipe.hset(key, "policy", policy_to_json(stored))
            pipe.publish(self.keys.invalidate, ORG_MESSAGE + org_id)

        await self.redis.transaction(write, key)
        return stored

    async def set_plan(self, org_id: str, plan: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.org(org_id), "plan", plan)
            pipe.publish(self.keys.invalidate, ORG_MESSAGE + org_id)
            await pipe.execute()

    async def add_api_key(self, key: str, org_id: str) -> str:
        key_hash = api_key_hash(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.apikey(key_hash), org_id)
            pipe.publish(self.keys.invalidate, APIKEY_MESSAGE + key_hash)
            await pipe.execute()
        return key_hash

    async def revoke_api_key(self, key_hash: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.apikey(key_hash))
            pipe.publish(self.keys.invalidate, APIKEY_MESSAGE + key_hash)
            deleted, _ = await pipe.execute()
        return bool(deleted)
