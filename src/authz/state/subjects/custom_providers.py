"""An org's own providers, each with its attestation."""

from __future__ import annotations

from authz.state.layout import (
    ORG_MESSAGE,
    Pipeline,
    custom_providers_of,
    message_json,
)
from authz.state.writes import (
    UNCHECKED,
    Change,
    ChangedSinceRead,
    LimitReached,
    StoreBase,
)
from authz.v1 import catalog_pb2


class CustomProviderStore(StoreBase):
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
            text = message_json(current)
            return Change(
                lambda pipe: pipe.hset(key, "custom_providers", text),
                org_id=org_id,
                target=provider_id,
                before=message_json(before) if before is not None else "",
                after=message_json(provider) if provider is not None else "",
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
