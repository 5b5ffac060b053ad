"""Every read and write of authz's Redis state, one class composed of its subjects
(authz.state.subjects: catalog, orgs, API keys, custom providers, alerts, audit); the layout is
authz.state.layout and how a write is audited authz.state.writes.

Writes that change what decisions see (catalog, policy, API keys) happen in one MULTI/EXEC
with the invalidation they publish, so no process can miss a change that was stored.
"""

from __future__ import annotations

from authz.state.subjects.alerts import AlertStore
from authz.state.subjects.api_keys import ApiKeyStore
from authz.state.subjects.audit import AuditStore
from authz.state.subjects.catalog import CatalogStore
from authz.state.subjects.custom_providers import CustomProviderStore
from authz.state.subjects.orgs import OrgStore


class Store(CatalogStore, OrgStore, ApiKeyStore, CustomProviderStore, AlertStore, AuditStore):
    """The state's reads and writes, over one Redis client and key layout."""
