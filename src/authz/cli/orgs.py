"""authz org and authz apikey: plans and the API keys that name an org (Redis, audited)."""

from __future__ import annotations

import argparse
import re
import secrets

from authz.check.request import api_key_id
from authz.cli.common import USAGE, CommandError, noun, with_store
from authz.state.store import Store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    org = noun(sub.add_parser("org", help="organizations (Redis)"))
    plan = org.add_parser("set-plan", help="record an org's plan (e.g. enterprise)")
    plan.add_argument("org")
    plan.add_argument("plan")
    plan.set_defaults(handler=set_plan_command)

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


def set_plan_command(args: argparse.Namespace) -> int:
    async def set_plan(store: Store) -> int:
        await store.set_plan(args.org, args.plan, args.actor)
        print(f"org {args.org}: plan {args.plan}")
        return 0

    return with_store(args, set_plan, access="write")


def add_key_command(args: argparse.Namespace) -> int:
    key = args.key or "sk-authz-" + secrets.token_urlsafe(24)

    async def add(store: Store) -> int:
        key_hash = await store.add_api_key(key, args.org, args.actor)
        print(f"key {key_hash[:12]} -> org {args.org}" if args.key else key)
        return 0

    return with_store(args, add, access="write")


def list_keys_command(args: argparse.Namespace) -> int:
    async def listing(store: Store) -> int:
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
