"""API keys: stored by hash only, each naming its org."""

from __future__ import annotations

from authz.ids import api_key_hash, api_key_id
from authz.state.layout import (
    APIKEY_MESSAGE,
    Pipeline,
    json_text,
)
from authz.state.writes import (
    Change,
    StoreBase,
)


class ApiKeyStore(StoreBase):
    async def org_for_key_hashes(self, key_hashes: list[str]) -> list[str | None]:
        if not key_hashes:
            return []

        def fill(pipe: Pipeline) -> None:
            for h in key_hashes:  # GETs, not MGET: redis-py refuses MGET in a cluster pipeline
                pipe.get(self.keys.apikey(h))

        _, values = await self._read(fill)
        return [v.decode() if v is not None else None for v in values]

    async def add_api_key(self, key: str, org_id: str, actor: str) -> str:
        key_hash = api_key_hash(key)
        redis_key = self.keys.apikey(key_hash)

        async def prepare(pipe: Pipeline) -> Change:
            old = await pipe.get(redis_key)
            return Change(
                lambda pipe: pipe.set(redis_key, org_id),
                org_id=org_id,
                target=api_key_id(key_hash),
                before=json_text({"org_id": old.decode()} if old else None),
                after=json_text({"org_id": org_id}),
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
                before=json_text({"org_id": old.decode()}),
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
