"""The Redis layout (docs/operating.md, "Redis layout"): key names, invalidation messages, and
how an org's fields are encoded. Shared by the Store's subjects (authz.state.subjects), the
state cache, the event sinks and the alerts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from authz.v1 import catalog_pb2, policy_pb2

# redis-py types every reply as bytes | str (decode_responses is a runtime choice) and its
# single-node, Sentinel and cluster clients share no base class; authz always reads bytes.
RedisClient = Any

# An org as stored: its Redis hash (plan, policy, custom_providers, alerts as JSON).
OrgRecord = dict[bytes, bytes]

CATALOG_MESSAGE = "catalog"
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


def _parsed(fields: dict[bytes, bytes], name: bytes, message: M) -> M:
    """An org's JSON field parsed into `message` (left empty when the field is absent)."""
    raw = fields.get(name)
    if raw:
        json_format.Parse(raw, message)
    return message


def custom_providers_of(fields: dict[bytes, bytes]) -> catalog_pb2.CustomProviders:
    return _parsed(fields, b"custom_providers", catalog_pb2.CustomProviders())


def decoded(raw: bytes | None) -> str:
    return raw.decode() if raw else "(none)"


def alert_settings(fields: dict[bytes, bytes]) -> policy_pb2.AlertSettings:
    return _parsed(fields, b"alerts", policy_pb2.AlertSettings())


M = TypeVar("M", bound=Message)
Pipeline = Any  # redis-py's (cluster) pipeline: it has no common type to annotate with


def message_json(message: Message) -> str:
    return str(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None, sort_keys=True))


def json_text(value: object) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))
