"""An org's stored policy, reduced to what the Check needs: what the state cache builds from
Redis and the decision reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from authz.policy import rules as policy_rules
from authz.v1 import catalog_pb2


@dataclass(frozen=True, slots=True)
class CustomEntry:
    """One of the org's own providers, evaluated against its own attestation."""

    unmet: policy_rules.Failures
    models: frozenset[str]
    attestation: catalog_pb2.CustomProvider | None = (
        None  # the org's CustomProvider, to judge it against a client's extra requirements
    )


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    """An org's stored policy, reduced to what decisions need."""

    org_id: str
    version: int = 0
    rules: policy_rules.Rules = policy_rules.NO_RULES
    enabled: bool = False
    enforced: bool = True  # False in dry-run mode
    custom: Mapping[str, CustomEntry] = field(default_factory=dict)
    block_alerts: policy_rules.BlockAlerts = policy_rules.NO_BLOCK_ALERTS  # carried by its security events
