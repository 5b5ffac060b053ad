"""Loading a catalog: validate, store it as the next version (audited, announced to every
process), then queue compliance alerts for the orgs whose providers it judges differently.
Used by `authz catalog load` and the test stack."""

from __future__ import annotations

import structlog
from redis.exceptions import RedisError

from authz.alerts.triggers import enqueue_catalog_changes
from authz.policy import catalog as catalog_mod
from authz.state.store import Store
from authz.v1 import catalog_pb2

log = structlog.get_logger("authz.admin.catalog_loading")


async def load_catalog(store: Store, catalog: catalog_pb2.Catalog, actor: str) -> int:
    """Store the catalog, then queue the alerts it causes; returns its version. The catalog is
    stored even if queueing alerts fails (they are informational)."""
    raw = await store.catalog_raw()
    previous = catalog_mod.parse(raw) if raw else None
    version = await store.load_catalog(catalog, actor)
    try:
        await enqueue_catalog_changes(store.redis, store.keys, previous, catalog)
    except RedisError as exc:
        log.error("catalog_alerts_not_queued", error=str(exc))
    return version
