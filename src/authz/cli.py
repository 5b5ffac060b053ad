"""`authz` command line: run the service and manage what it enforces.

    authz serve [--config FILE]
    authz catalog load FILE
    authz org set-plan ORG PLAN
    authz policy get ORG | authz policy set ORG FILE
    authz apikey add ORG [--key KEY]
    authz events tail [--count N]

Every command reads the same settings as the service (--config, AUTHZ_* variables).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys

from google.protobuf import json_format

from authz import catalog as catalog_mod
from authz import config as config_mod
from authz.store import Keys, Store, policy_to_json
from authz.v1 import policy_pb2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="authz", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.environ.get("AUTHZ_CONFIG"), help="TOML settings file")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the ext_authz gRPC service")

    catalog = sub.add_parser("catalog", help="the provider catalog").add_subparsers(dest="action", required=True)
    load = catalog.add_parser("load", help="validate FILE and store it as the next catalog version")
    load.add_argument("file")
    check = catalog.add_parser("check", help="validate FILE without storing it")
    check.add_argument("file")

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="action", required=True)
    plan = org.add_parser("set-plan", help="record an org's plan (e.g. enterprise)")
    plan.add_argument("org")
    plan.add_argument("plan")

    pol = sub.add_parser("policy", help="an org's compliance policy").add_subparsers(dest="action", required=True)
    get = pol.add_parser("get", help="print the stored policy as JSON")
    get.add_argument("org")
    put = pol.add_parser("set", help="store FILE (CompliancePolicy JSON) as the org's next policy version")
    put.add_argument("org")
    put.add_argument("file", help="path, or - for standard input")
    put.add_argument("--actor", default=f"cli:{os.environ.get('USER', 'unknown')}")

    key = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    add = key.add_parser("add", help="map an API key to an org (prints a new key when --key is omitted)")
    add.add_argument("org")
    add.add_argument("--key", help="an existing key to register; only its sha256 is stored")

    events = sub.add_parser("events", help="security events").add_subparsers(dest="action", required=True)
    tail = events.add_parser("tail", help="print the latest security events as JSON lines")
    tail.add_argument("--count", type=int, default=20)

    args = parser.parse_args(argv)
    try:
        settings = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(f"authz: bad configuration: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        from authz.server import serve

        serve(settings)
        return 0
    if args.command == "catalog" and args.action == "check":
        return _check_catalog(args.file)
    try:
        return asyncio.run(_admin(args, settings))
    except catalog_mod.CatalogError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    except json_format.ParseError as exc:
        print(f"authz: invalid policy: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1


def _read_catalog(path: str):
    with open(path, "rb") as f:
        return catalog_mod.parse(f.read())


def _check_catalog(path: str) -> int:
    try:
        parsed = _read_catalog(path)
    except (OSError, catalog_mod.CatalogError) as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {len(parsed.providers)} providers, {len(parsed.models)} models")
    return 0


async def _admin(args, settings: config_mod.Settings) -> int:
    from redis.exceptions import RedisError

    from authz.server import redis_client

    redis = redis_client(settings)
    store = Store(redis, Keys(settings.key_prefix))
    try:
        return await _run_admin(args, store)
    except RedisError as exc:
        print(f"authz: Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


async def _run_admin(args, store: Store) -> int:
    if args.command == "catalog":
        parsed = _read_catalog(args.file)
        version = await store.load_catalog(parsed)
        print(f"catalog version {version} stored: {len(parsed.providers)} providers, {len(parsed.models)} models")
    elif args.command == "org":
        await store.set_plan(args.org, args.plan)
        print(f"org {args.org}: plan {args.plan}")
    elif args.command == "policy" and args.action == "get":
        stored = await store.policy(args.org)
        print(policy_to_json(stored) if stored else "null")
    elif args.command == "policy":
        text = sys.stdin.read() if args.file == "-" else open(args.file).read()
        new = json_format.Parse(text, policy_pb2.CompliancePolicy())
        stored = await store.set_policy(args.org, new, actor=args.actor)
        print(policy_to_json(stored))
    elif args.command == "apikey":
        key = args.key or "sk-authz-" + secrets.token_urlsafe(24)
        key_hash = await store.add_api_key(key, args.org)
        if args.key:
            print(f"key {key_hash[:12]} -> org {args.org}")
        else:
            print(key)
    elif args.command == "events":
        entries = await store.redis.xrevrange(store.keys.security_events, count=args.count)
        for _, fields in reversed(entries):
            print(json.dumps(json.loads(fields[b"event"])))
    return 0
