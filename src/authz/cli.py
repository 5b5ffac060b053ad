"""`authz` command line: run the service and manage what it enforces.

    authz serve [--config FILE]
    authz catalog load FILE
    authz org set-plan ORG PLAN
    authz policy get ORG | preview ORG FILE | set ORG FILE [--expected-version N]   (admin API)
    authz token issue ORG --role owner --subject alice@example.com
    authz apikey add ORG [--key KEY] | list [--org ORG] | revoke KEY_ID
    authz events tail [--org ORG] [--count N] [--follow]
    authz events list [--since TIME] [--org ORG] [--provider P] [--requirement R]
    authz bootstrap [--catalog FILE] [--plan ORG=PLAN] [--api-keys FILE]
    authz audit list | authz audit verify

Every command reads the same settings as the service (--config, AUTHZ_* variables).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import getpass
import json
import os
import re
import secrets
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authz import __version__, audit, requirements
from authz import catalog as catalog_mod
from authz import config as config_mod
from authz.auth import issue as issue_token
from authz.request import api_key_hash, api_key_id
from authz.store import Keys, StateLost, Store
from authz.v1 import catalog_pb2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="authz", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"authz {__version__}")
    parser.add_argument("--config", default=os.environ.get("AUTHZ_CONFIG"), help="TOML settings file")
    parser.add_argument(
        "--actor", default=_os_user(), help="who makes a change, for the audit trail (default: cli:<OS user>)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve_cmd = sub.add_parser("serve", help="run the ext_authz gRPC service")
    serve_cmd.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("AUTHZ_WORKERS", "1")),
        help="worker processes sharing the ports (AUTHZ_WORKERS; default 1)",
    )

    catalog = sub.add_parser("catalog", help="the provider catalog").add_subparsers(dest="action", required=True)
    load = catalog.add_parser("load", help="validate FILE and store it as the next catalog version")
    load.add_argument("file", help="path, or - for standard input")
    check = catalog.add_parser("check", help="validate FILE without storing it")
    check.add_argument("file", help="path, or - for standard input")
    imp = catalog.add_parser("import", help="build a catalog whose models are the deployments of a gateway config")
    imp.add_argument("--from", dest="source", choices=["litellm"], required=True, help="the config's format")
    imp.add_argument(
        "gateway_config", metavar="CONFIG", help="the gateway's config file (LiteLLM: its proxy config.yaml)"
    )
    imp.add_argument("--base", help="catalog JSON whose provider data to keep (default: the stored catalog)")
    imp.add_argument("--out", help="write the catalog here (default: standard output)")
    dif = catalog.add_parser("diff", help="what loading FILE would change, and for which orgs' policies")
    dif.add_argument("file")
    show = catalog.add_parser("show", help="a provider's published data policy: each value, its evidence and date")
    show.add_argument("provider")
    show.add_argument("--file", help="read this catalog instead of the stored one")
    show.add_argument("--json", action="store_true", help="print JSON")

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="action", required=True)
    plan = org.add_parser("set-plan", help="record an org's plan (e.g. enterprise)")
    plan.add_argument("org")
    plan.add_argument("plan")

    pol = sub.add_parser("policy", help="an org's compliance policy, through the admin API")
    pol.add_argument(
        "--api", default=os.environ.get("AUTHZ_API", "http://127.0.0.1:9090"), help="admin API base URL (AUTHZ_API)"
    )
    pol.add_argument("--token", default=os.environ.get("AUTHZ_TOKEN"), help="admin JWT (AUTHZ_TOKEN)")
    pol_sub = pol.add_subparsers(dest="action", required=True)
    get = pol_sub.add_parser("get", help="print the stored policy as JSON")
    get.add_argument("org")
    prev = pol_sub.add_parser("preview", help="which providers FILE (CompliancePolicy JSON) allows and blocks")
    prev.add_argument("org")
    prev.add_argument("file", help="path, or - for standard input")
    put = pol_sub.add_parser("set", help="store FILE (CompliancePolicy JSON) as the org's next policy version")
    put.add_argument("org")
    put.add_argument("file", help="path, or - for standard input")
    put.add_argument("--expected-version", type=int, help="fail if the stored version is not this one")
    put.add_argument("--force", action="store_true", help="save list entries the catalog does not know")
    for toggle in ("enable", "disable"):
        t = pol_sub.add_parser(toggle, help=f"{toggle} the stored policy, keeping its requirements")
        t.add_argument("org")
        t.add_argument("--expected-version", type=int, help="fail if the stored version is not this one")

    tok = sub.add_parser("token", help="admin API tokens").add_subparsers(dest="action", required=True)
    issue = tok.add_parser("issue", help="print an HS256 admin token (needs admin_jwt_hs256_secret)")
    issue.add_argument("org")
    issue.add_argument("--role", default="owner", choices=["owner", "admin", "member"])
    issue.add_argument("--subject", required=True, help="who the token identifies (recorded as the actor)")
    issue.add_argument("--ttl", type=int, default=3600, help="seconds")

    key = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    add = key.add_parser("add", help="map an API key to an org (prints a new key when --key is omitted)")
    add.add_argument("org")
    add.add_argument("--key", help="an existing key to register; only its sha256 is stored")
    revoke = key.add_parser("revoke", help="revoke a key by the key id every surface shows (or its full sha256)")
    revoke.add_argument("key_id")
    listed = key.add_parser("list", help="every registered key: its id (first 12 hex of its sha256) and org")
    listed.add_argument("--org", help="only this org's keys")

    events = sub.add_parser("events", help="security events").add_subparsers(dest="action", required=True)
    tail = events.add_parser("tail", help="print the latest security events as JSON lines")
    tail.add_argument("--count", type=_count, default=20, help="how many past events to print first (0: none)")
    tail.add_argument("--org")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events until interrupted")
    listing = events.add_parser("list", help="export security events as JSON lines, oldest first")
    listing.add_argument("--since", help="ISO 8601 time (UTC if no offset), e.g. 2026-11-25T09:00")
    listing.add_argument("--org")
    listing.add_argument("--provider")
    listing.add_argument("--requirement", help="e.g. gdpr, no_prompt_training")

    boot = sub.add_parser(
        "bootstrap", help="idempotent first-time set-up (a Kubernetes Job): the catalog, plans and API keys"
    )
    boot.add_argument("--catalog", help="catalog JSON; loaded only when it differs from the stored one")
    boot.add_argument("--plan", action="append", default=[], metavar="ORG=PLAN", help="e.g. acme=enterprise")
    boot.add_argument(
        "--api-keys", help="a file of 'ORG KEY' lines (# comments): each key registered once, for its org"
    )

    aud = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    aud.add_parser("list", help="print every audit event as JSON lines")
    aud.add_parser("verify", help="check the hash chain; names the first modified, deleted or reordered event")

    args = parser.parse_args(argv)
    try:
        settings = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(f"authz: bad configuration: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        if args.workers < 1:
            print("authz: --workers must be 1 or more", file=sys.stderr)
            return 2
        return _serve(settings, args.workers)
    if args.command == "catalog" and args.action == "check":
        return _check_catalog(args.file)
    if args.command == "catalog" and args.action == "show" and args.file:
        return _show_provider(_read_catalog(args.file), args.provider, args.json)
    if args.command == "catalog" and args.action == "import" and args.base:
        return _import_catalog(args, _read_catalog(args.base))
    if args.command == "policy":
        return _policy_api(args)
    if args.command == "token":
        if not settings.admin_jwt_hs256_secret:
            print("authz: token issue needs admin_jwt_hs256_secret in the configuration", file=sys.stderr)
            return 2
        print(
            issue_token(
                settings.admin_jwt_hs256_secret,
                subject=args.subject,
                org_id=args.org,
                role=args.role,
                ttl_s=args.ttl,
                issuer=settings.admin_jwt_issuer,
                audience=settings.admin_jwt_audience,
            )
        )
        return 0
    try:
        return asyncio.run(_admin(args, settings))
    except KeyboardInterrupt:  # Ctrl-C, e.g. ending `events tail --follow`: not an error to report
        return 130
    except catalog_mod.CatalogError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1


def _policy_api(args: argparse.Namespace) -> int:
    """policy get|preview|set over the admin JSON API (the same checks as the settings page)."""
    org = urllib.parse.quote(args.org, safe="")
    if args.action == "get":
        method, path, body = "GET", f"/v1/orgs/{org}/policy", None
    elif args.action in ("enable", "disable"):
        toggle: dict[str, Any] = {}
        if args.expected_version is not None:
            toggle["expected_version"] = args.expected_version
        method, path, body = "POST", f"/v1/orgs/{org}/policy:{args.action}", toggle
    else:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        try:
            policy = json.loads(text)
        except ValueError as exc:
            print(f"authz: {args.file}: not JSON: {exc}", file=sys.stderr)
            return 1
        if args.action == "preview":
            method, path, body = "POST", f"/v1/orgs/{org}/policy:preview", {"policy": policy}
        else:
            body = {"policy": policy}
            if args.expected_version is not None:
                body["expected_version"] = args.expected_version
            if args.force:
                body["force"] = True
            method, path = "PUT", f"/v1/orgs/{org}/policy"
    request = urllib.request.Request(
        args.api.rstrip("/") + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Bearer {args.token or ''}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            result = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())["error"]
            print(f"authz: {exc.code} {error['code']}: {error['message']}", file=sys.stderr)
        except (ValueError, KeyError):
            print(f"authz: HTTP {exc.code} from {args.api}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"authz: cannot reach the admin API at {args.api}: {exc}", file=sys.stderr)
        return 1
    if args.action == "preview":
        for p in result.get("providers", []):
            unmet = ", ".join(f"{u['label']} ({u['cause'].replace('_', ' ')})" for u in p.get("unmet", []))
            print(f"{'ALLOW' if p.get('allowed') else 'BLOCK'}  {p['provider']:<16} {unmet}")
        orphans = result.get("models_without_compliant_provider", [])
        print(f"models with no compliant provider: {', '.join(orphans) if orphans else 'none'}")
    else:
        print(json.dumps(result, indent=2))
    return 0


def _os_user() -> str:
    """The default audit actor: the OS user running the CLI (a uid when it has no name)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid-{os.getuid()}"


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return value


def _read_catalog(path: str) -> catalog_pb2.Catalog:
    if path == "-":
        return catalog_mod.parse(sys.stdin.buffer.read())
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


async def _admin(args: argparse.Namespace, settings: config_mod.Settings) -> int:
    from redis.exceptions import RedisError

    from authz.redis_client import redis_client

    redis = redis_client(settings)
    store = Store(redis, Keys(settings.key_prefix))
    try:
        return await _run_admin(args, store)
    except RedisError as exc:
        print(f"authz: Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    except StateLost as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


def _import_catalog(args: argparse.Namespace, base: catalog_pb2.Catalog) -> int:
    from authz import litellm_config

    try:
        with open(args.gateway_config) as f:
            result = litellm_config.import_config(f.read(), base)
    except (OSError, litellm_config.ConfigError, catalog_mod.CatalogError) as exc:
        print(f"authz: {args.gateway_config}: {exc}", file=sys.stderr)
        return 1
    out = catalog_mod.to_json(result.catalog)
    if args.out:
        with open(args.out, "w") as f:
            f.write(out + "\n")
    else:
        print(out)
    models = result.catalog.models
    print(
        f"imported {len(models)} models from {args.gateway_config}: "
        + ", ".join(f"{m} -> {','.join(models[m].providers)}" for m in sorted(models)),
        file=sys.stderr,
    )
    for provider, names in sorted(result.unknown_providers.items()):
        print(
            f"provider {provider!r} is not in the catalog (used by {', '.join(names)}): it has no published data, "
            "so it fails every requirement",
            file=sys.stderr,
        )
    for name in result.wildcards:
        print(
            f"wildcard route {name!r}: requests are judged by the provider they name (e.g. openai/<model>)",
            file=sys.stderr,
        )
    for name in result.skipped:
        print(f"skipped {name}", file=sys.stderr)
    return 0


async def _run_admin(args: argparse.Namespace, store: Store) -> int:
    if args.command == "catalog" and args.action == "show":
        raw = await store.catalog_raw()
        if raw is None:
            print("authz: no catalog is stored: load one (authz catalog load FILE) or pass --file", file=sys.stderr)
            return 1
        return _show_provider(catalog_mod.parse(raw), args.provider, args.json)
    if args.command == "catalog" and args.action == "import":
        raw = await store.catalog_raw()
        if raw is None:
            print("authz: no catalog is stored: pass --base FILE", file=sys.stderr)
            return 1
        return _import_catalog(args, catalog_mod.parse(raw))
    if args.command == "catalog" and args.action == "diff":
        from authz import policy as policy_mod

        try:
            new = _read_catalog(args.file)
        except (OSError, catalog_mod.CatalogError) as exc:
            print(f"authz: {exc}", file=sys.stderr)
            return 1
        raw = await store.catalog_raw()
        old = catalog_mod.parse(raw) if raw else None
        report = catalog_mod.diff(old, new)
        report["orgs"] = {
            org: changes
            for org, p in sorted((await store.enabled_policies()).items())
            if any((changes := catalog_mod.compliance_changes(old, new, policy_mod.rules_of(p))).values())
        }
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    if args.command == "catalog":
        from authz.catalog_loading import load_catalog

        try:
            parsed = _read_catalog(args.file)
            version = await load_catalog(store, parsed, args.actor)
        except (OSError, catalog_mod.CatalogError) as exc:
            print(f"authz: {exc}", file=sys.stderr)
            return 1
        print(f"catalog version {version} stored: {len(parsed.providers)} providers, {len(parsed.models)} models")
    elif args.command == "org":
        await store.set_plan(args.org, args.plan, args.actor)
        print(f"org {args.org}: plan {args.plan}")
    elif args.command == "apikey" and args.action == "add":
        key = args.key or "sk-authz-" + secrets.token_urlsafe(24)
        key_hash = await store.add_api_key(key, args.org, args.actor)
        print(f"key {key_hash[:12]} -> org {args.org}" if args.key else key)
    elif args.command == "apikey" and args.action == "list":
        for key_hash, org_id in await store.api_keys(args.org):
            print(f"{api_key_id(key_hash)}  {org_id}")
    elif args.command == "apikey":
        return await _revoke_key(store, args.key_id, args.actor)
    elif args.command == "events":
        return await _events(args, store)
    elif args.command == "bootstrap":
        return await _bootstrap(args, store)
    elif args.command == "audit" and args.action == "list":
        for _, text, _ in await store.audit_entries():
            print(text)
    elif args.command == "audit":
        result = audit.verify(await store.audit_entries(), await store.audit_head())
        p = result.problem
        if p is None:
            print(f"ok: {result.events} audit events, hash chain intact")
            return 0
        where = f" (stream entry {p.entry_id})" if p.entry_id else ""
        print(f"TAMPERED: event {p.seq} {p.kind}{where}: {p.detail}")
        return 3
    return 0


async def _bootstrap(args: argparse.Namespace, store: Store) -> int:
    """What a cluster needs before its first request, as often as it is run: what is already
    there is left alone (and not audited again); only differences are written."""
    from authz.catalog_loading import load_catalog

    plans: list[tuple[str, str]] = []
    for item in args.plan:
        org, sep, plan = item.partition("=")
        if not sep or not org or not plan:
            print(f"authz: --plan {item!r}: use ORG=PLAN, e.g. acme=enterprise", file=sys.stderr)
            return 2
        plans.append((org, plan))
    keys: list[tuple[str, str]] = []
    if args.api_keys and not os.path.exists(args.api_keys):
        # A Kubernetes Secret mounted as optional and not created: nothing to register.
        print(f"no API keys file at {args.api_keys}: none registered")
    elif args.api_keys:
        with open(args.api_keys) as f:
            for n, line in enumerate(f, 1):
                fields = line.split("#", 1)[0].split()
                if not fields:
                    continue
                if len(fields) != 2:
                    print(f"authz: {args.api_keys} line {n}: expected 'ORG KEY'", file=sys.stderr)
                    return 2
                keys.append((fields[0], fields[1]))
    # Everything is read and checked before anything is written: a run either applies all of
    # its input or stops on the first problem with nothing changed.
    new = _read_catalog(args.catalog) if args.catalog else None
    hashes = [api_key_hash(key) for _, key in keys]
    try:
        owners = await store.org_for_key_hashes(hashes)
        stored_plans = {org: await store.plan(org) for org, _ in plans}
    except StateLost:
        if new is None:
            raise
        # A first install: nothing is stored yet, and the catalog below creates the state.
        owners, stored_plans = [None] * len(hashes), dict.fromkeys((org for org, _ in plans), "")
    wanted: dict[str, str] = {}
    for (org, _key), key_hash, owner in zip(keys, hashes, owners, strict=True):
        key_id = api_key_id(key_hash)
        if wanted.setdefault(key_hash, org) != org:
            print(
                f"authz: key {key_id} is listed for orgs {wanted[key_hash]} and {org}; nothing was written",
                file=sys.stderr,
            )
            return 1
        if owner is not None and owner != org:
            print(
                f"authz: key {key_id} belongs to org {owner}, not {org}: revoke it first "
                f"(authz apikey revoke {key_id}); nothing was written",
                file=sys.stderr,
            )
            return 1
    if new is not None:
        raw = await store.catalog_raw()
        stored = catalog_mod.parse(raw) if raw else None
        stored_version = stored.version if stored is not None else 0
        if stored is not None:
            stored.version = new.version  # the content decides, not the version counter
        if stored == new:
            print(f"catalog unchanged (version {stored_version})")
        else:
            version = await load_catalog(store, new, args.actor)
            print(f"catalog version {version} stored: {len(new.providers)} providers, {len(new.models)} models")
    # A plan is set when the org has none: bootstrap seeds, and a plan changed since (authz org
    # set-plan) is never undone by the next run of the same Job.
    for org, plan in plans:
        current = stored_plans[org]
        if current == plan:
            print(f"org {org}: plan {plan} (unchanged)")
        elif current:
            print(f"org {org}: plan {current} kept (set since; bootstrap asks {plan}: use authz org set-plan)")
        else:
            await store.set_plan(org, plan, args.actor)
            print(f"org {org}: plan {plan}")
    added: set[str] = set()
    for (org, key), key_hash, owner in zip(keys, hashes, owners, strict=True):
        if owner == org or key_hash in added:
            print(f"key {api_key_id(key_hash)} -> org {org} (unchanged)")
        else:
            added.add(key_hash)
            await store.add_api_key(key, org, args.actor)
            print(f"key {api_key_id(key_hash)} -> org {org}")
    return 0


async def _revoke_key(store: Store, key_id: str, actor: str) -> int:
    """Revoke by the 12-character key id shown everywhere, or by the full sha256."""
    if not re.fullmatch(r"[0-9a-f]{12}|[0-9a-f]{64}", key_id):
        print(f"authz: {key_id!r} is not a key id (12 hex characters) or a sha256 (64)", file=sys.stderr)
        return 2
    found = [h for h, _ in await store.api_keys() if h.startswith(key_id)]
    if len(found) != 1:
        what = "no API key" if not found else f"{len(found)} API keys"
        print(f"authz: {what} with id {key_id}; list them with: authz apikey list", file=sys.stderr)
        return 1
    if not await store.revoke_api_key(found[0], actor):
        print(f"authz: API key {key_id} was revoked meanwhile", file=sys.stderr)
        return 1
    print(f"revoked {api_key_id(found[0])}")
    return 0


def _matches(event: dict[str, Any], args: argparse.Namespace) -> bool:
    if getattr(args, "org", None) and event.get("org_id") != args.org:
        return False
    providers = event.get("providers", [])
    if getattr(args, "provider", None) and not any(p.get("provider") == args.provider for p in providers):
        return False
    requirement = getattr(args, "requirement", None)
    return not requirement or any(requirement in p.get("failed_requirements", []) for p in providers)


def _show_provider(catalog: catalog_pb2.Catalog, provider_id: str, as_json: bool) -> int:
    """Every attribute a requirement reads, with its value (or unknown), evidence and date:
    what a person checks before trusting a decision."""
    if provider_id not in catalog.providers:
        near = difflib.get_close_matches(provider_id, list(catalog.providers), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        print(f"authz: catalog v{catalog.version} has no provider {provider_id!r}{hint}", file=sys.stderr)
        return 1
    provider = catalog.providers[provider_id]
    dp = provider.data_policy if provider.HasField("data_policy") else None
    attributes = sorted({a for r in requirements.ATTRIBUTE_REQUIREMENTS for a in r.attributes})
    rows: list[dict[str, Any]] = []
    for name in attributes:
        value: object = None
        if dp is not None:
            field = catalog_pb2.DataPolicy.DESCRIPTOR.fields_by_name[name]
            if field.is_repeated:
                value = list(getattr(dp, name)) or None
            elif field.has_presence:
                value = getattr(dp, name) if dp.HasField(name) else None
            else:
                raw = getattr(dp, name)
                value = (field.enum_type.values_by_number[raw].name if field.enum_type else raw) or None
                if value == "SOC2_REPORT_UNSPECIFIED":
                    value = None
        evidence = dp.evidence.get(name) if dp is not None and name in dp.evidence else None
        rows.append(
            {
                "attribute": name,
                "value": value,
                "source": evidence.source if evidence else "",
                "checked_at": evidence.checked_at if evidence else "",
            }
        )
    if as_json:
        print(
            json.dumps(
                {
                    "provider": provider_id,
                    "name": provider.name,
                    "catalog_version": catalog.version,
                    "published_at": catalog.published_at,
                    "privacy_policy_url": provider.privacy_policy_url,
                    "terms_url": provider.terms_url,
                    "attributes": rows,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"{provider.name or provider_id} ({provider_id}), catalog v{catalog.version}"
        + (f" compiled {catalog.published_at}" if catalog.published_at else "")
    )
    for label, url in (("privacy policy", provider.privacy_policy_url), ("terms", provider.terms_url)):
        if url:
            print(f"  {label}: {url}")
    if dp is None:
        print("  publishes no data policy: every requirement is unknown (and fails closed)")
    for row in rows:
        shown = "unknown" if row["value"] is None else json.dumps(row["value"])
        checked = f", checked {row['checked_at']}" if row["checked_at"] else ""
        source = f"  [{row['source']}{checked}]" if row["source"] else ""
        print(f"  {row['attribute']:<22} {shown}{source}")
    return 0


def _serve(settings: config_mod.Settings, workers: int) -> int:
    """One process, or a supervisor of `workers` processes sharing the ports. The ports are
    claimed first (authz.ports): a port another process holds stops it here, with its name."""
    from authz import ports

    try:
        claims = ports.claim({key: getattr(settings, key) for key in ports.LISTEN_KEYS})
    except ports.PortInUse as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    settings = settings.bound_to(claims.addresses)
    if settings.ports_file:
        claims.write(settings.ports_file)
    try:
        if workers == 1:
            from authz.server import run_worker

            run_worker(settings)  # configures its own logging, as each supervised worker does
            return 0
        from authz.logs import configure_logging
        from authz.supervisor import supervise

        configure_logging(settings.log_level)
        return supervise(settings, workers)
    finally:
        claims.release()


def _stream_id(since: str) -> str:
    moment = datetime.fromisoformat(since)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{int(moment.timestamp() * 1000)}-0"


async def _events(args: argparse.Namespace, store: Store) -> int:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    stream = store.keys.security_events
    if args.action == "list":
        async for _, fields in store.stream_entries(stream, _stream_id(args.since) if args.since else "-"):
            event = json.loads(fields[b"event"])
            if _matches(event, args):
                print(json.dumps(event))
        return 0
    entries = await store.redis.xrevrange(stream, count=max(args.count, 1) * (10 if args.org else 1))
    shown = [json.loads(f[b"event"]) for _, f in reversed(entries)]
    matched = [e for e in shown if _matches(e, args)]
    for event in matched[-args.count :] if args.count else []:
        print(json.dumps(event), flush=True)
    last = entries[0][0] if entries else "0-0"
    interrupted = asyncio.Event()
    if args.follow:  # until Ctrl-C (or SIGTERM): a quiet stream is no reason to stop
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, interrupted.set)
    while args.follow and not interrupted.is_set():
        try:
            # Block for less than the client's socket timeout, so waiting is not an error.
            found = await store.redis.xread({stream: last}, block=1000)
        except RedisTimeoutError:
            continue
        for _, items in found or []:
            for entry_id, fields in items:
                last = entry_id
                event = json.loads(fields[b"event"])
                if _matches(event, args):
                    print(json.dumps(event), flush=True)
    return 0
