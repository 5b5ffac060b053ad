"""authz bootstrap: what a cluster needs before its first request (a Kubernetes Job), as
often as it is run: what is already there is left alone (and not audited again); only
differences are written, and nothing at all when any input is wrong. With --policies it also
applies a policies-as-code file (authz policy apply), after the catalog it may load."""

from __future__ import annotations

import argparse
import os

from authz.cli.common import INIT_HELP, USAGE, CommandError, read_catalog, settings, with_store
from authz.cli.declared import carry_out, prepare, read_declaration, webhook_guard
from authz.ids import api_key_hash, api_key_id
from authz.policy import catalog as catalog_mod
from authz.policy.catalog import CatalogIndex
from authz.state.store import Store
from authz.state.writes import StateLost
from authz.v1 import catalog_pb2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    boot = sub.add_parser(
        "bootstrap", help="idempotent first-time set-up (a Kubernetes Job): the catalog, plans and API keys (Redis)"
    )
    boot.add_argument("--catalog", help="catalog JSON; loaded only when it differs from the stored one")
    boot.add_argument("--plan", action="append", default=[], metavar="ORG=PLAN", help="e.g. acme=enterprise")
    boot.add_argument(
        "--api-keys", help="a file of 'ORG KEY' lines (# comments): each key registered once, for its org"
    )
    boot.add_argument(
        "--policies", help="a policies-as-code file (orgs: plan, policy, custom providers, alerts), as `policy apply`"
    )
    boot.add_argument(
        "--import-litellm",
        metavar="CONFIG",
        help="the LiteLLM proxy config this authz fronts: the catalog loaded is --catalog's provider data with this "
        "config's model groups, routes, fallbacks and key header (as `authz catalog import --from litellm`)",
    )
    boot.add_argument("--init", action="store_true", help=INIT_HELP)
    boot.set_defaults(handler=bootstrap_command)


def bootstrap_command(args: argparse.Namespace) -> int:
    # Everything is read and checked before anything is written: a run either applies all of
    # its input or stops on the first problem with nothing changed.
    plans = [_plan(item) for item in args.plan]
    keys = _keys(args.api_keys)
    new = read_catalog(args.catalog) if args.catalog else None
    if args.import_litellm:
        if new is None:
            raise CommandError(
                "--import-litellm needs --catalog: the provider data its deployments are judged by", USAGE
            )
        new = _imported(args.import_litellm, new)
    declaration = read_declaration(args.policies) if args.policies else None
    s = settings(args)

    async def run(store: Store) -> int:
        steps = None
        if declaration is not None:  # checked against the catalog it will run with, before any write
            steps = await prepare(
                store,
                declaration,
                plans_on=s.require_enterprise_plan,
                guard=webhook_guard(s),
                catalog=CatalogIndex.build(new) if new is not None else None,
            )
        code = await _apply(store, args.actor, new, plans, keys)
        if declaration is not None and steps is not None:
            await carry_out(store, declaration, steps, args.actor)
        return code

    return with_store(args, run, access="create")


def _imported(path: str, base: catalog_pb2.Catalog) -> catalog_pb2.Catalog:
    """The LiteLLM config at `path` imported onto `base` (its notes printed, as by catalog import)."""
    from authz.policy.imports import litellm_config

    try:
        with open(path) as f:
            result = litellm_config.import_config(f.read(), base)
    except (OSError, litellm_config.ConfigError, catalog_mod.CatalogError) as exc:
        raise CommandError(f"{path}: {exc}; nothing was written") from None
    for note in result.notes:
        print(f"note: {note}")
    print(f"imported {len(result.catalog.models)} model groups and {len(result.catalog.routes)} routes from {path}")
    return result.catalog


def _plan(item: str) -> tuple[str, str]:
    org, sep, plan = item.partition("=")
    if not sep or not org or not plan:
        raise CommandError(f"--plan {item!r}: use ORG=PLAN, e.g. acme=enterprise", USAGE)
    return org, plan


def _keys(path: str | None) -> list[tuple[str, str]]:
    if not path:
        return []
    if not os.path.exists(path):
        # A Kubernetes Secret mounted as optional and not created: nothing to register.
        print(f"no API keys file at {path}: none registered")
        return []
    keys = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) != 2:
                raise CommandError(f"{path} line {n}: expected 'ORG KEY'", USAGE)
            keys.append((fields[0], fields[1]))
    return keys


async def _apply(
    store: Store,
    actor: str,
    new: catalog_pb2.Catalog | None,
    plans: list[tuple[str, str]],
    keys: list[tuple[str, str]],
) -> int:
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
            raise CommandError(f"key {key_id} is listed for orgs {wanted[key_hash]} and {org}; nothing was written")
        if owner is not None and owner != org:
            raise CommandError(
                f"key {key_id} belongs to org {owner}, not {org}: revoke it first "
                f"(authz apikey revoke {key_id}); nothing was written"
            )
    if new is not None:
        from authz.admin.catalog_loading import load_catalog  # its alert triggers: only when loading

        raw = await store.catalog_raw()
        stored = catalog_mod.parse(raw) if raw else None
        stored_version = stored.version if stored is not None else 0
        if stored is not None:
            stored.version = new.version  # the content decides, not the version counter
        if stored == new:
            print(f"catalog unchanged (version {stored_version})")
        else:
            version = await load_catalog(store, new, actor)
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
            await store.set_plan(org, plan, actor)
            print(f"org {org}: plan {plan}")
    added: set[str] = set()
    for (org, key), key_hash, owner in zip(keys, hashes, owners, strict=True):
        if owner == org or key_hash in added:
            print(f"key {api_key_id(key_hash)} -> org {org} (unchanged)")
        else:
            added.add(key_hash)
            await store.add_api_key(key, org, actor)
            print(f"key {api_key_id(key_hash)} -> org {org}")
    return 0
