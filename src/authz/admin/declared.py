"""Policies as code: a file that declares orgs (plan, policy, custom providers, alerts).

It is checked part by part as the admin API checks each (the same validation and limits), then
compared with what Redis holds; applying it writes only the differences, each an ordinary
audited write whose actor names the file and its digest. Orgs the file does not name are left
alone; an org's custom providers are replaced as a set only when the file lists them.

    orgs:
      acme-corp:
        plan: enterprise
        policy: {enabled: true, require_soc2: true, provider_denylist: [deepseek]}
        custom_providers:
          internal-llm: {name: Our vLLM, models: [llama-3.3-70b], attestation: {soc2: true}}
        alerts: {webhook_url: "https://hooks.example.com/x", block_threshold: 20}
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

from authz.admin.validation import (
    ENTERPRISE,
    INVALID_ARGUMENT,
    MAX_CUSTOM_PROVIDERS,
    AdminError,
    at_most,
    known_ids,
    parse_error_text,
    validate,
    validate_alerts,
    validate_custom_provider,
    with_default_window,
)
from authz.ids import ORG_ID
from authz.policy import catalog as catalog_mod
from authz.policy.catalog import CatalogIndex
from authz.state.layout import alert_settings, custom_providers_of, policy_from_json
from authz.state.store import Store
from authz.suggest import did_you_mean
from authz.v1 import catalog_pb2, policy_pb2

M = TypeVar("M", bound=Message)

if TYPE_CHECKING:
    from authz.alerts.webhook_guard import WebhookGuard

MAX_FILE_BYTES = 4 * 1024 * 1024
ORG_KEYS = ("plan", "policy", "custom_providers", "alerts")
# Written by the server, never declared: a file carrying them was copied from `policy get`.
SERVER_OWNED = {"policy": ("version", "updated_by", "updated_at"), "custom_providers": ("attested_by", "attested_at")}


class DeclarationError(ValueError):
    """The file cannot be applied; the message names the org and field."""


@dataclass
class DeclaredOrg:
    org_id: str
    plan: str | None = None  # None: not declared (left as stored)
    policy: policy_pb2.CompliancePolicy | None = None
    custom_providers: dict[str, catalog_pb2.CustomProvider] | None = None
    alerts: policy_pb2.AlertSettings | None = None


@dataclass
class Declaration:
    orgs: list[DeclaredOrg]
    source: str  # "policies.yaml@sha256:0123456789ab": the audit trail's actor context


@dataclass
class Step:
    """One write the file asks for, with the lines `policy diff` prints for it."""

    org_id: str
    what: str  # "plan", "policy", "custom provider internal-llm", "alerts"
    lines: list[str]
    write: Callable[[Store, str], Any]  # (store, actor) -> awaitable


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # "acme-corp policy", ...


def read(path: str) -> Declaration:
    """Parse a declaration file (YAML or JSON). Raises DeclarationError naming what is wrong."""
    try:
        raw = Path(path).read_bytes() if path != "-" else _stdin()
    except OSError as exc:
        raise DeclarationError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DeclarationError(f"{path}: {len(raw)} bytes, at most {MAX_FILE_BYTES}")
    source = f"{Path(path).name if path != '-' else 'stdin'}@sha256:{hashlib.sha256(raw).hexdigest()[:12]}"
    try:
        document = yaml.load(raw, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise DeclarationError(f"{path}: not YAML or JSON: {exc}") from None
    return parse(document, source)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader refusing a key given twice in one map, at any level (YAML and JSON alike: a
    reviewer reads the first block, a last-one-wins parser would apply the second)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader refuses it below
                continue
            if first is not None:
                where = f"lines {first} and {line}" if first != line else f"line {line}"
                message = f"key {str(key)[:64]!r} is given twice, on {where}"
                raise yaml.constructor.ConstructorError(None, None, message, key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _stdin() -> bytes:
    import sys

    return sys.stdin.buffer.read(MAX_FILE_BYTES + 1)


def parse(document: Any, source: str) -> Declaration:
    if not isinstance(document, dict) or set(document) != {"orgs"} or not isinstance(document["orgs"], dict):
        raise DeclarationError(f"{source}: expected one top-level key 'orgs', a map of org id to its settings")
    orgs = []
    for org_id, entry in document["orgs"].items():
        if not isinstance(org_id, str) or not ORG_ID.fullmatch(org_id):
            # The pattern a request's org id must match: an id that differs from it only by an
            # invisible or control character would look right in review and never match.
            raise DeclarationError(
                f"orgs: {str(org_id)[:64]!r} is not an org id (letters, digits and . _ : @ -, at most 128, "
                "starting with a letter or digit)"
            )
        if not isinstance(entry, dict):
            raise DeclarationError(f"orgs.{org_id}: expected a map with any of {', '.join(ORG_KEYS)}")
        for key in entry:
            if key not in ORG_KEYS:
                raise DeclarationError(
                    f"orgs.{org_id}.{key}: not a setting{did_you_mean(str(key), ORG_KEYS)} "
                    f"(an org takes {', '.join(ORG_KEYS)})"
                )
        org = DeclaredOrg(org_id)
        if "plan" in entry:
            if not isinstance(entry["plan"], str) or not entry["plan"]:
                raise DeclarationError(f"orgs.{org_id}.plan: a plan name, e.g. enterprise")
            org.plan = entry["plan"]
        if "policy" in entry:
            org.policy = _message(entry["policy"], policy_pb2.CompliancePolicy(), f"orgs.{org_id}.policy", "policy")
        if "custom_providers" in entry:
            providers = entry["custom_providers"] or {}
            if not isinstance(providers, dict):
                raise DeclarationError(f"orgs.{org_id}.custom_providers: a map of provider id to its settings")
            org.custom_providers = {}
            for provider_id, value in providers.items():
                where = f"orgs.{org_id}.custom_providers.{provider_id}"
                provider = _message(value, catalog_pb2.CustomProvider(), where, "custom_providers")
                if provider.id and provider.id != provider_id:
                    raise DeclarationError(f"{where}: id {provider.id!r} differs from its key")
                provider.id = str(provider_id)
                org.custom_providers[provider.id] = provider
        if "alerts" in entry:
            # The admin API's default window, so a re-apply changes nothing.
            alerts = _message(entry["alerts"] or {}, policy_pb2.AlertSettings(), f"orgs.{org_id}.alerts", "")
            org.alerts = with_default_window(alerts)
        orgs.append(org)
    return Declaration(orgs, source)


def _message(value: Any, message: Message, where: str, kind: str) -> Any:
    if not isinstance(value, dict):
        raise DeclarationError(f"{where}: expected a map of fields")
    for owned in SERVER_OWNED.get(kind, ()):
        if owned in value:
            raise DeclarationError(f"{where}.{owned}: set by the server; remove it from the file")
    try:
        json_format.ParseDict(value, message)
    except json_format.ParseError as exc:
        raise DeclarationError(f"{where}: {parse_error_text(exc)}") from None
    return message


def check(
    declaration: Declaration, catalog: CatalogIndex, stored: dict[str, dict[bytes, bytes]], plans_on: bool
) -> None:
    """Refuse what the admin API would refuse, naming the org: everything is checked before
    anything is written."""
    for org in declaration.orgs:
        fields = stored.get(org.org_id, {})
        plan = org.plan if org.plan is not None else fields.get(b"plan", b"").decode()
        custom = catalog_pb2.CustomProviders()
        if org.custom_providers is not None:
            for provider_id, provider in org.custom_providers.items():
                custom.providers[provider_id].CopyFrom(provider)
        else:
            custom = custom_providers_of(fields)
        try:
            if plans_on and plan != ENTERPRISE:
                asks = [
                    what
                    for what, present in (
                        ("an enabled policy", org.policy is not None and org.policy.enabled),
                        ("custom providers", bool(org.custom_providers)),
                        ("alerts", org.alerts is not None and org.alerts != policy_pb2.AlertSettings()),
                    )
                    if present
                ]
                if asks:
                    raise AdminError(
                        INVALID_ARGUMENT,
                        f"{' and '.join(asks)} need(s) the Enterprise plan (plan: '{plan or 'none'}'): declare "
                        "plan: enterprise, or turn the plan gate off (require_enterprise_plan = false)",
                    )
            if org.custom_providers is not None:
                at_most("custom_providers", len(org.custom_providers), MAX_CUSTOM_PROVIDERS)
                for provider in org.custom_providers.values():
                    validate_custom_provider(provider, catalog)
            if org.policy is not None:
                validate(org.policy)
                known_ids(org.policy, catalog, custom, forceable=False)
            if org.alerts is not None:
                validate_alerts(org.alerts, catalog)
        except AdminError as exc:
            raise DeclarationError(f"orgs.{org.org_id}: {exc.message}") from None


async def check_webhooks(declaration: Declaration, guard: WebhookGuard) -> None:
    from authz.alerts.webhook_guard import WebhookRefused  # aiohttp: only when a file has alerts

    for org in declaration.orgs:
        if org.alerts is not None and org.alerts.webhook_url:
            try:
                await guard.check_url(org.alerts.webhook_url)
            except WebhookRefused as exc:
                raise DeclarationError(f"orgs.{org.org_id}.alerts.webhook_url: {exc}") from None


def plan_changes(declaration: Declaration, stored: dict[str, dict[bytes, bytes]]) -> Plan:
    """The writes that make Redis hold what the file declares, in a safe order per org: plan,
    custom providers (a policy may name them), policy, alerts."""
    out = Plan()
    for org in declaration.orgs:
        fields = stored.get(org.org_id, {})
        oid = org.org_id
        if org.plan is not None:
            current = fields.get(b"plan", b"").decode()
            if current != org.plan:
                plan = org.plan
                lines = [f"plan: {current or '(none)'} -> {plan}"]
                out.steps.append(Step(oid, "plan", lines, _set_plan(oid, plan, current)))
            else:
                out.unchanged.append(f"{oid} plan")
        if org.custom_providers is not None:
            current_providers = custom_providers_of(fields).providers
            for provider_id in sorted(set(current_providers) | set(org.custom_providers)):
                old = current_providers.get(provider_id)
                new = org.custom_providers.get(provider_id)
                if new is None:
                    out.steps.append(
                        Step(
                            oid, f"custom provider {provider_id}", ["removed"], _delete_provider(oid, provider_id, old)
                        )
                    )
                elif old is None or comparable(old, SERVER_OWNED["custom_providers"]) != comparable(
                    new, SERVER_OWNED["custom_providers"]
                ):
                    lines = field_diff(old or catalog_pb2.CustomProvider(id=provider_id), new)
                    out.steps.append(
                        Step(oid, f"custom provider {provider_id}", lines or ["added"], _set_provider(oid, new, old))
                    )
                else:
                    out.unchanged.append(f"{oid} custom provider {provider_id}")
        if org.policy is not None:
            raw = fields.get(b"policy")
            old_policy = policy_from_json(raw) if raw else None
            old_view = comparable(old_policy, SERVER_OWNED["policy"]) if old_policy is not None else None
            if old_view != org.policy:  # a declared policy holds no server-owned field (parse refuses them)
                version = old_policy.version if old_policy is not None else 0
                lines = field_diff(old_view or policy_pb2.CompliancePolicy(), org.policy)
                if old_policy is None:
                    lines.insert(0, "(no policy stored yet)")
                out.steps.append(Step(oid, "policy", lines, _set_policy(oid, org.policy, version)))
            else:
                out.unchanged.append(f"{oid} policy")
        if org.alerts is not None:
            old_alerts = alert_settings(fields)
            if old_alerts != org.alerts:
                lines = field_diff(old_alerts, org.alerts)
                out.steps.append(Step(oid, "alerts", lines, _set_alerts(oid, org.alerts, old_alerts)))
            else:
                out.unchanged.append(f"{oid} alerts")
    return out


def comparable(message: M, owned: tuple[str, ...]) -> M:
    """A copy without the fields the server owns (`owned`): what a file can declare."""
    copy: M = type(message)()
    copy.CopyFrom(message)
    for name in owned:
        copy.ClearField(name)
    return copy


def field_diff(old: Message, new: Message) -> list[str]:
    """One line per field that differs: `require_soc2: false -> true`."""
    before = json_format.MessageToDict(old, preserving_proto_field_name=True)
    after = json_format.MessageToDict(new, preserving_proto_field_name=True)
    lines = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            lines.append(f"{name}: {_show(before.get(name))} -> {_show(after.get(name))}")
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


# Every write is conditional on what the diff read (`read`): a change made in between (the
# settings page, say) fails the write instead of being overwritten unseen.
def _set_plan(org_id: str, plan: str, read: str) -> Callable[[Store, str], Any]:
    return lambda store, actor: store.set_plan(org_id, plan, actor, expected=read)


def _delete_provider(org_id: str, provider_id: str, read: catalog_pb2.CustomProvider) -> Callable[[Store, str], Any]:
    return lambda store, actor: store.set_custom_provider(org_id, None, actor, provider_id, expected=read)


def _set_provider(
    org_id: str, provider: catalog_pb2.CustomProvider, read: catalog_pb2.CustomProvider | None
) -> Callable[[Store, str], Any]:
    def write(store: Store, actor: str) -> Any:
        stored = catalog_pb2.CustomProvider()
        stored.CopyFrom(provider)
        if stored.HasField("attestation"):  # as the admin API records an attestation
            stored.attested_by = actor
            stored.attested_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return store.set_custom_provider(org_id, stored, actor, max_providers=MAX_CUSTOM_PROVIDERS, expected=read)

    return write


def _set_policy(org_id: str, policy: policy_pb2.CompliancePolicy, version: int) -> Callable[[Store, str], Any]:
    return lambda store, actor: store.set_policy(org_id, policy, actor, expected_version=version)


def _set_alerts(
    org_id: str, alerts: policy_pb2.AlertSettings, read: policy_pb2.AlertSettings
) -> Callable[[Store, str], Any]:
    return lambda store, actor: store.set_alerts(org_id, alerts, actor, expected=read)


async def stored_orgs(store: Store, declaration: Declaration) -> dict[str, dict[bytes, bytes]]:
    return {org.org_id: await store.org_fields(org.org_id) for org in declaration.orgs}


async def catalog_of(store: Store) -> CatalogIndex:
    raw = await store.catalog_raw()
    if raw is None:
        raise DeclarationError("Redis holds no catalog: load one first (authz bootstrap --catalog FILE)")
    return CatalogIndex.build(catalog_mod.parse(raw))


def actor_with_source(actor: str, declaration: Declaration) -> str:
    return f"{actor} (file {declaration.source})"
