"""The catalog: its raw bytes with the state marker (the cache's read), and an audited load."""

from __future__ import annotations

import time
import uuid

from authz.policy import catalog as catalog_mod
from authz.state import audit
from authz.state.layout import (
    CATALOG_MESSAGE,
    Pipeline,
    json_text,
)
from authz.state.subjects.custom_providers import CustomProviderStore
from authz.state.writes import (
    Change,
)
from authz.v1 import catalog_pb2


class CatalogStore(CustomProviderStore):  # a catalog load checks the custom provider ids
    async def catalog_raw(self) -> bytes | None:
        return await self.redis.get(self.keys.catalog)

    async def state_and_catalog(self) -> tuple[bytes, bytes | None]:
        epoch, (raw,) = await self._read(lambda pipe: pipe.get(self.keys.catalog))
        return epoch, raw

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

            return Change(apply, target=f"v{catalog.version}", before=json_text(before), after=json_text(after))

        await self.audited_write(
            "catalog.load", actor, prepare, self.keys.catalog, invalidate=CATALOG_MESSAGE, bootstrap=True
        )
        return catalog.version
