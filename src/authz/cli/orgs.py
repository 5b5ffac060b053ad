"""authz org and authz apikey: orgs as Redis holds them, plans, and the API keys that name an
org (Redis; writes audited)."""

from __future__ import annotations

import argparse
import re
import secrets
import urllib.parse
from collections import Counter

from authz.cli.common import USAGE, CommandError, noun, require_known_org, with_store
from authz.ids import ORG_ID, api_key_id
from authz.policy import rules
from authz.state.layout import alert_settings, custom_providers_of, policy_from_json
from authz.state.store import Store
from authz.v1 import policy_pb2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    org = noun(sub.add_parser("org", help="organizations (Redis)"))
    plan = org.add_parser("set-plan", help="record an org's plan (e.g. enterprise)")
    plan.add_argument("org")
    plan.add_argument("plan")
    plan.set_defaults(handler=set_plan_command)
    org.add_parser("list", help="every org Redis holds: plan, policy state, keys").set_defaults(
        handler=list_orgs_command
    )
    show = org.add_parser("show", help="one org: plan, policy, custom providers, alerts, keys")
    show.add_argument("org")
    show.set_defaults(handler=show_org_command)

    key = noun(sub.add_parser("apikey", help="API keys (Redis)"))
    add = key.add_parser("add", help="map an API key to an org (prints a new key when --key is omitted)")
    add.add_argument("org")
    add.add_argument("--key", help="an existing key to register; only its sha256 is stored")
    add.set_defaults(handler=add_key_command)
    revoke = key.add_parser("revoke", help="revoke a key by the key id every surface shows (or its full sha256)")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=revoke_key_command)
    listed = key.add_parser("list", help="every registered key: its id (first 12 hex of its sha256) and org")
    listed.add_argument("--org", help="only this org's keys")
    listed.set_defaults(handler=list_keys_command)


PLAN = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def set_plan_command(args: argparse.Namespace) -> int:
    if not ORG_ID.fullmatch(args.org):
        raise CommandError(f"{args.org[:64]!r} is not an org id (letters, digits and . _ : @ -, at most 128)", USAGE)
    if not PLAN.fullmatch(args.plan):
        raise CommandError(f"{args.plan[:64]!r} is not a plan name (lower case, e.g. enterprise)", USAGE)

    async def set_plan(store: Store) -> int:
        await store.set_plan(args.org, args.plan, args.actor)
        print(f"org {args.org}: plan {args.plan}")
        return 0

    return with_store(args, set_plan, access="write")


def _summary(fields: dict[bytes, bytes], keys: int) -> str:
    plan = fields.get(b"plan", b"").decode() or "none"
    raw = fields.get(b"policy")
    if raw:
        p = policy_from_json(raw)
        state = "enabled" if p.enabled else "disabled"
        if p.enabled and p.mode == policy_pb2.POLICY_MODE_DRY_RUN:
            state += " (dry run)"
        policy = f"policy v{p.version} {state}"
    else:
        policy = "no policy"
    return f"plan {plan}, {policy}, {keys} API key{'s' if keys != 1 else ''}"


def list_orgs_command(args: argparse.Namespace) -> int:
    async def listing(store: Store) -> int:
        orgs = await store.org_ids()
        keys = Counter(org for _, org in await store.api_keys())
        for org_id in sorted(set(orgs) | set(keys)):
            print(f"{org_id}  {_summary(await store.org_fields(org_id), keys[org_id])}")
        if not orgs and not keys:
            print("no orgs yet (authz policy apply FILE, or authz apikey add ORG)")
        return 0

    return with_store(args, listing)


def show_org_command(args: argparse.Namespace) -> int:
    async def show(store: Store) -> int:
        await require_known_org(store, args.org)
        fields = await store.org_fields(args.org)
        keys = [key_hash for key_hash, _ in await store.api_keys(args.org)]
        print(f"{args.org}: {_summary(fields, len(keys))}")
        if fields.get(b"policy"):
            p = policy_from_json(fields[b"policy"])
            print(f"  asks: {', '.join(rules.labels(rules.rules_of(p))) or 'no requirement'}")
            for name in rules.LIST_FIELDS:
                if getattr(p, name):
                    print(f"  {name}: {', '.join(getattr(p, name))}")
            print(
                f"  last changed by {p.updated_by} at {p.updated_at.ToJsonString()} (authz policy history {args.org})"
            )
        for cid, cp in sorted(custom_providers_of(fields).providers.items()):
            attested = f"attested by {cp.attested_by}" if cp.HasField("attestation") else "not attested (blocked)"
            print(f"  custom provider {cid}: {len(cp.models)} models, {attested}")
        alerts = alert_settings(fields)
        if alerts.webhook_url:
            host = urllib.parse.urlsplit(alerts.webhook_url).hostname
            print(f"  alerts to {host}: over {alerts.block_threshold} blocks in {alerts.block_window_s} s")
        for key_hash in keys:
            print(f"  API key {api_key_id(key_hash)}")
        return 0

    return with_store(args, show)


def add_key_command(args: argparse.Namespace) -> int:
    key = args.key or "sk-authz-" + secrets.token_urlsafe(24)

    async def add(store: Store) -> int:
        key_hash = await store.add_api_key(key, args.org, args.actor)
        print(f"key {key_hash[:12]} -> org {args.org}" if args.key else key)
        return 0

    return with_store(args, add, access="write")


def list_keys_command(args: argparse.Namespace) -> int:
    async def listing(store: Store) -> int:
        if args.org:
            await require_known_org(store, args.org)
        for key_hash, org_id in await store.api_keys(args.org):
            print(f"{api_key_id(key_hash)}  {org_id}")
        return 0

    return with_store(args, listing)


def revoke_key_command(args: argparse.Namespace) -> int:
    """Revoke by the 12-character key id shown everywhere, or by the full sha256."""
    key_id = args.key_id
    if not re.fullmatch(r"[0-9a-f]{12}|[0-9a-f]{64}", key_id):
        raise CommandError(f"{key_id!r} is not a key id (12 hex characters) or a sha256 (64)", USAGE)

    async def revoke(store: Store) -> int:
        found = [h for h, _ in await store.api_keys() if h.startswith(key_id)]
        if len(found) != 1:
            what = "no API key" if not found else f"{len(found)} API keys"
            raise CommandError(f"{what} with id {key_id}; list them with: authz apikey list")
        if not await store.revoke_api_key(found[0], args.actor):
            raise CommandError(f"API key {key_id} was revoked meanwhile")
        print(f"revoked {api_key_id(found[0])}")
        return 0

    return with_store(args, revoke, access="write")
