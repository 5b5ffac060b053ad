"""authz policy apply | diff FILE and authz policy history ORG: policies as code (Redis).

A file (authz.admin.declared) is read and checked whole before anything is written; apply writes
only the differences, each audited with the file and its digest in the actor; diff prints them
and exits 1 when there are any (a CI job can gate a merge on it)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from authz import config
from authz.admin import declared
from authz.cli.common import USAGE, CommandError, require_known_org, settings, with_store
from authz.policy.catalog import CatalogIndex
from authz.state.layout import org_index, policy_from_json
from authz.state.store import Store
from authz.state.writes import ChangedSinceRead
from authz.v1 import policy_pb2

if TYPE_CHECKING:
    from authz.alerts.webhook_guard import WebhookGuard

CHANGES = 1  # diff's exit code when the file and Redis differ


def read_declaration(path: str) -> declared.Declaration:
    try:
        return declared.read(path)
    except declared.DeclarationError as exc:
        raise CommandError(f"{exc}; nothing was written", USAGE) from None


async def prepare(
    store: Store,
    declaration: declared.Declaration,
    *,
    plans_on: bool,
    guard: WebhookGuard,
    catalog: CatalogIndex | None = None,
) -> declared.Plan:
    """Check the declaration against the catalog (the stored one unless given: bootstrap checks
    against the one it is about to load) and the stored orgs; the steps that would apply it."""
    try:
        index = catalog or await declared.catalog_of(store)
        stored = await declared.stored_orgs(store, declaration)
        declared.check(declaration, index, stored, plans_on)
        await declared.check_webhooks(declaration, guard)
    except declared.DeclarationError as exc:
        raise CommandError(f"{exc}; nothing was written", USAGE) from None
    return declared.plan_changes(declaration, stored)


async def carry_out(store: Store, declaration: declared.Declaration, plan: declared.Plan, actor: str | None) -> None:
    """Print each step (and, given an actor, write it)."""
    for step in plan.steps:
        print(f"org {step.org_id}: {step.what}")
        for line in step.lines:
            print(f"    {line}")
        if actor is not None:
            try:
                await step.write(store, declared.actor_with_source(actor, declaration))
            except ChangedSinceRead as exc:
                raise CommandError(f"org {step.org_id}: {exc} (run apply again to re-read it)") from None
    if not plan.steps:
        print(f"no changes: Redis holds what {declaration.source} declares")


def webhook_guard(s: config.Settings) -> WebhookGuard:
    from authz.alerts.webhook_guard import WebhookGuard  # aiohttp: imported by the verbs that check URLs

    return WebhookGuard.from_setting(s.alert_webhook_allowed_hosts)


def _apply_or_diff(args: argparse.Namespace, write: bool) -> int:
    s = settings(args)
    declaration = read_declaration(args.file)
    guard = webhook_guard(s)

    async def run(store: Store) -> int:
        plan = await prepare(store, declaration, plans_on=s.require_enterprise_plan, guard=guard)
        await carry_out(store, declaration, plan, args.actor if write else None)
        return CHANGES if plan.steps and not write else 0

    return with_store(args, run, access="write" if write else "read")


def apply_command(args: argparse.Namespace) -> int:
    return _apply_or_diff(args, write=True)


def diff_command(args: argparse.Namespace) -> int:
    return _apply_or_diff(args, write=False)


def history_command(args: argparse.Namespace) -> int:
    """Every change to the org's plan, policy, custom providers and alerts, oldest first."""

    async def history(store: Store) -> int:
        await require_known_org(store, args.org)
        count = 0
        async for _, fields in store.stream_entries(org_index(store.keys.audit_events, args.org)):
            event = json.loads(fields.get(b"event", b"{}"))
            count += 1
            print(f"{event.get('time', '')}  {_what(event)}  by {event.get('actor', '')}")
            for line in _changed(event):
                print(f"    {line}")
        if not count:
            print(f"org {args.org}: no changes recorded")
        return 0

    return with_store(args, history)


def _what(event: dict[str, str]) -> str:
    action = event.get("action", "")
    if action == "policy.set":
        return f"policy {event.get('target', '')}"
    target = event.get("target", "")
    return f"{action} {target}".strip()


def _changed(event: dict[str, str]) -> list[str]:
    if event.get("action") != "policy.set":
        before, after = event.get("before", ""), event.get("after", "")
        return [f"{before or '(none)'} -> {after or '(none)'}"]
    old, new = (_declared_part(event.get(side, "")) for side in ("before", "after"))
    return declared.field_diff(old, new) or ["(no field changed)"]


def _declared_part(text: str) -> policy_pb2.CompliancePolicy:
    """A stored policy without its version and stamp: the fields a person changed."""
    policy = policy_from_json(text) if text else policy_pb2.CompliancePolicy()
    return declared.comparable(policy, declared.SERVER_OWNED["policy"])
