"""authz catalog: check, load, diff, show, build and import provider catalogs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from authz.cli.common import INIT_HELP, USAGE, CommandError, noun, read_catalog, with_store
from authz.policy import catalog as catalog_mod
from authz.policy import requirements
from authz.state.store import Store
from authz.suggest import did_you_mean
from authz.v1 import catalog_pb2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = noun(sub.add_parser("catalog", help="the provider catalog"))
    load = group.add_parser("load", help="validate FILE and store it as the next catalog version (Redis)")
    load.add_argument("file", help="path, or - for standard input")
    load.add_argument("--init", action="store_true", help=INIT_HELP)
    load.set_defaults(handler=load_command)
    check = group.add_parser("check", help="validate FILE without storing it (local)")
    check.add_argument("file", help="path, or - for standard input")
    check.add_argument(
        "--against",
        choices=["litellm"],
        help="also compare which providers serve which models with a second source, and report every disagreement",
    )
    check.add_argument(
        "--litellm-data",
        metavar="JSON",
        help="LiteLLM's model_prices_and_context_window.json (default: the one of the installed litellm package)",
    )
    check.add_argument("--json", action="store_true", help="print the comparison as JSON")
    check.set_defaults(handler=check_command)
    build = group.add_parser(
        "build", help="build a catalog from a provider data source, with evidence for every value (local)"
    )
    build.add_argument("--from", dest="source", choices=["llmgateway"], required=True, help="the source's format")
    build.add_argument(
        "package_dir",
        metavar="PACKAGE_DIR",
        help="an installed @llmgateway/models, e.g. node_modules/@llmgateway/models (read with Node.js)",
    )
    build.add_argument(
        "--checked-at",
        metavar="YYYY-MM-DD",
        help="the day the data was read: the evidence date and published_at; mappings deactivated by then are no "
        "candidates (default: today, UTC)",
    )
    build.add_argument(
        "--allow-new-fields",
        action="store_true",
        help="build even when the package has provider or data-policy fields authz does not map (they are left out)",
    )
    build.add_argument("--out", help="write the catalog here (default: standard output)")
    build.set_defaults(handler=build_command)
    imp = group.add_parser(
        "import",
        help="build a catalog whose models are the deployments of a gateway config (local with --base, else Redis)",
    )
    imp.add_argument(
        "--from", dest="source", choices=["litellm", "envoy-ai-gateway"], required=True, help="the config's format"
    )
    imp.add_argument(
        "gateway_config",
        metavar="CONFIG",
        help="the gateway's config file (LiteLLM: its proxy config.yaml; Envoy AI Gateway: its manifests, with the "
        "AIGatewayRoutes, AIServiceBackends and Backends)",
    )
    imp.add_argument("--base", help="catalog JSON whose provider data to keep (default: the stored catalog)")
    imp.add_argument(
        "--allow-setting",
        action="append",
        default=[],
        metavar="NAME",
        help="a routing setting the import does not read, checked by you (e.g. litellm_settings.model_alias_map)",
    )
    imp.add_argument("--out", help="write the catalog here (default: standard output)")
    imp.set_defaults(handler=import_command)
    routing = group.add_parser(
        "check-routing",
        help="judge every model group and wildcard route of a gateway config under each org of a policies file, "
        "as the gateway routes it (fallbacks included); exit 1 when one would be blocked (local with --base)",
    )
    routing.add_argument("--from", dest="source", choices=["litellm", "envoy-ai-gateway"], required=True)
    routing.add_argument("gateway_config", metavar="CONFIG", help="the gateway's config file, as for import")
    routing.add_argument("policies", metavar="POLICIES", help="a policies file (YAML/JSON, orgs: ...), as for apply")
    routing.add_argument("--base", help="catalog JSON whose provider data to use (default: the stored catalog)")
    routing.add_argument("--allow-setting", action="append", default=[], metavar="NAME", help="as for import")
    routing.add_argument("--org", action="append", default=[], help="only these orgs of the file")
    routing.set_defaults(handler=check_routing_command)
    dif = group.add_parser("diff", help="what loading FILE would change, and for which orgs' policies (Redis)")
    dif.add_argument("file")
    dif.set_defaults(handler=diff_command)
    show = group.add_parser(
        "show",
        help="a provider's published data policy: each value, its evidence and date (local with --file, else Redis)",
    )
    show.add_argument("provider")
    show.add_argument("--file", help="read this catalog instead of the stored one")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=show_command)


def check_command(args: argparse.Namespace) -> int:
    parsed = read_catalog(args.file)
    if args.against is None:
        if args.litellm_data or args.json:
            raise CommandError("--litellm-data and --json go with --against litellm", USAGE)
        print(f"ok: {len(parsed.providers)} providers, {len(parsed.models)} models")
        return 0
    from authz.policy.imports import litellm_prices

    path = args.litellm_data or _installed_litellm_data()
    try:
        with open(path) as f:
            prices = json.load(f)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: cannot read LiteLLM's model data: {exc}") from None
    if not isinstance(prices, dict):
        raise CommandError(f"{path}: not LiteLLM's model data (a JSON object of model names)")
    found = litellm_prices.compare(prices, parsed)
    if args.json:
        print(json.dumps(dataclasses.asdict(found), indent=1))
    else:
        print(f"ok: {len(parsed.providers)} providers, {len(parsed.models)} models")
        print(f"compared with LiteLLM's model data ({path}) on {len(found.compared_providers)} providers:")
        for provider, model in found.only_in_catalog:
            print(f"  the catalog says {provider} serves {model}; LiteLLM lists no {model} for {provider}")
        for provider, model in found.only_in_litellm:
            print(f"  LiteLLM lists {model} for {provider}; the catalog does not name {provider} for {model}")
        if found.unknown_to_litellm:
            print(f"  LiteLLM lists nothing for: {', '.join(found.unknown_to_litellm)}")
        print(
            f"{len(found.only_in_catalog) + len(found.only_in_litellm)} disagreements, reported only: check each "
            "with the provider before changing the catalog"
        )
    return 0


def _installed_litellm_data() -> str:
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(
            "litellm is not installed here: give its model data with --litellm-data "
            "(litellm/model_prices_and_context_window_backup.json of a LiteLLM install)",
            USAGE,
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "model_prices_and_context_window_backup.json")


def build_command(args: argparse.Namespace) -> int:
    from authz.cli import llmgateway_package
    from authz.policy.imports import llmgateway_catalog

    checked_at = args.checked_at or datetime.now(UTC).date().isoformat()
    try:
        exported = llmgateway_package.export(args.package_dir)
        built, report = llmgateway_catalog.build(exported, checked_at)
        catalog_mod.validate(built)
    except (llmgateway_package.PackageError, llmgateway_catalog.BuildError, catalog_mod.CatalogError) as exc:
        raise CommandError(str(exc)) from None
    for name in report.new_fields:
        print(f"{'left out' if args.allow_new_fields else 'not mapped'}: {name}", file=sys.stderr)
    if report.new_fields and not args.allow_new_fields:
        raise CommandError(
            f"{llmgateway_catalog.PACKAGE}@{report.version} has {len(report.new_fields)} field(s) authz does not map "
            "(listed above): a new compliance attribute must not be dropped silently. Map them in "
            "authz.policy.imports.llmgateway_catalog, or pass --allow-new-fields to build without them"
        )
    for note in report.unread:
        print(f"unknown: {note}", file=sys.stderr)
    out = json.dumps(json_format.MessageToDict(built, preserving_proto_field_name=True), indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(out + "\n")
    else:
        print(out)
    regional = sum(1 for p in built.providers.values() if p.region_of)
    print(
        f"built from {llmgateway_catalog.PACKAGE}@{report.version} as of {checked_at}: "
        f"{len(built.providers) - regional} providers and {regional} regional entries, {len(built.models)} models, "
        f"{report.deactivated} mappings deactivated by then (not candidates). "
        "Review what changes with `authz catalog diff FILE` before loading it.",
        file=sys.stderr,
    )
    return 0


def load_command(args: argparse.Namespace) -> int:
    from authz.admin.catalog_loading import load_catalog

    parsed = read_catalog(args.file)

    async def load(store: Store) -> int:
        version = await load_catalog(store, parsed, args.actor)
        print(f"catalog version {version} stored: {len(parsed.providers)} providers, {len(parsed.models)} models")
        return 0

    return with_store(args, load, access="create")


def diff_command(args: argparse.Namespace) -> int:
    from authz.policy import gateway_names, rules

    new = read_catalog(args.file)
    index = catalog_mod.CatalogIndex.build(new)

    def changes_for(old: catalog_pb2.Catalog | None, p: Any) -> dict[str, Any]:
        changes = catalog_mod.compliance_changes(old, new, rules.rules_of(p))
        # A gateway's own names (an imported config): each as the gateway will route it.
        names = [v.describe() for v in gateway_names.judge(index, rules.rules_of(p))]
        return {**changes, "gateway_names": names} if names else changes

    async def diff(store: Store) -> int:
        old = await _stored(store, required=False)
        report = catalog_mod.diff(old, new)
        report["orgs"] = {
            org: changes
            for org, p in sorted((await store.enabled_policies()).items())
            if any((changes := changes_for(old, p)).values())
        }
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0

    return with_store(args, diff, access="any")


def show_command(args: argparse.Namespace) -> int:
    if args.file:
        return _show_provider(read_catalog(args.file), args.provider, args.json)

    async def show(store: Store) -> int:
        stored = await _stored(store, missing="load one (authz catalog load FILE) or pass --file")
        return _show_provider(stored, args.provider, args.json)

    return with_store(args, show, access="any")


def import_command(args: argparse.Namespace) -> int:
    return _on_base(args, _import)


def _on_base(args: argparse.Namespace, run: Any) -> int:
    """`run(args, catalog)` on --base's catalog, else on the stored one."""
    if args.base:
        return int(run(args, read_catalog(args.base)))

    async def from_stored(store: Store) -> int:
        return int(run(args, await _stored(store, missing="pass --base FILE")))

    return with_store(args, from_stored, access="any")


async def _stored(store: Store, required: bool = True, missing: str = "") -> Any:
    raw = await store.catalog_raw()
    if raw is None and required:
        raise CommandError(f"no catalog is stored: {missing}")
    return catalog_mod.parse(raw) if raw else None


BLOCKED = 1  # check-routing's exit code when a name would be blocked


def check_routing_command(args: argparse.Namespace) -> int:
    return _on_base(args, _check_routing)


def _check_routing(args: argparse.Namespace, base: catalog_pb2.Catalog) -> int:
    """For a CI step beside a gateway config change: every org's verdict on every name."""
    from authz.admin import declared
    from authz.policy import gateway_names, rules

    imported = catalog_mod.CatalogIndex.build(_imported(args, base).catalog)
    try:
        declaration = declared.read(args.policies)
    except declared.DeclarationError as exc:
        raise CommandError(str(exc), USAGE) from None
    orgs = {o.org_id: o for o in declaration.orgs}
    unknown = [o for o in args.org if o not in orgs]
    if unknown:
        raise CommandError(f"{args.policies} declares no org {unknown[0]!r}{did_you_mean(unknown[0], orgs)}", USAGE)
    blocked = 0
    for org_id in args.org or sorted(orgs):
        declared_policy = orgs[org_id].policy
        if declared_policy is None or not declared_policy.enabled:
            print(f"org {org_id}: no enabled policy: every name passes")
            continue
        print(f"org {org_id}:")
        for verdict in gateway_names.judge(imported, rules.rules_of(declared_policy)):
            print(f"  {verdict.describe()}")
            blocked += not verdict.allowed
    print(f"{blocked} blocked" if blocked else "every name passes", file=sys.stderr)
    return BLOCKED if blocked else 0


def _imported(args: argparse.Namespace, base: catalog_pb2.Catalog) -> Any:
    """The gateway config named by args, imported onto `base` (one-line errors)."""
    from authz.policy.imports import envoy_ai_gateway_config, litellm_config
    from authz.policy.imports.gateway_import import ConfigError

    try:
        with open(args.gateway_config) as f:
            text = f.read()
        if args.source == "litellm":
            return litellm_config.import_config(text, base, args.allow_setting)
        if args.allow_setting:
            raise CommandError("--allow-setting applies to --from litellm only")
        return envoy_ai_gateway_config.import_config(text, base)
    except (OSError, ConfigError, catalog_mod.CatalogError) as exc:
        raise CommandError(f"{args.gateway_config}: {exc}") from None


def _import(args: argparse.Namespace, base: catalog_pb2.Catalog) -> int:
    from authz.policy.imports.gateway_import import Imported

    result: Imported = _imported(args, base)
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
    for route in result.catalog.routes:
        print(
            f"wildcard route {route.pattern!r} -> {','.join(route.providers)}: a name that is no model group and "
            "matches it is judged by these providers",
            file=sys.stderr,
        )
    for name in result.skipped:
        print(f"skipped {name}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _show_provider(catalog: catalog_pb2.Catalog, provider_id: str, as_json: bool) -> int:
    """Every attribute a requirement reads, with its value (or unknown), evidence and date:
    what a person checks before trusting a decision."""
    if provider_id not in catalog.providers:
        hint = did_you_mean(provider_id, catalog.providers)
        raise CommandError(f"catalog v{catalog.version} has no provider {provider_id!r}{hint}")
    provider = catalog.providers[provider_id]
    dp = provider.data_policy if provider.HasField("data_policy") else None
    attributes = sorted({a for r in requirements.ATTRIBUTE_REQUIREMENTS for a in r.attributes})
    rows = [_attribute_row(dp, name) for name in attributes]
    # The models it serves, as a request names them pinned to it (native spelling), and those
    # whose mapping was deactivated (with the date: no longer a candidate from then on).
    ended = {(m, d.provider): d.at for m, mp in catalog.models.items() for d in mp.deactivated}
    models = sorted(
        {m for m, mp in catalog.models.items() if provider_id in mp.providers}
        | {m for m, p in ended if p == provider_id}
    )
    if as_json:
        shown = {
            "provider": provider_id,
            "name": provider.name,
            "catalog_version": catalog.version,
            "published_at": catalog.published_at,
            "privacy_policy_url": provider.privacy_policy_url,
            "terms_url": provider.terms_url,
            "legal_entity": provider.legal_entity,
            "website": provider.website,
            "region_of": provider.region_of,
            "attributes": rows,
            "models": [{"model": m, "deactivated": ended.get((m, provider_id), "")} for m in models],
        }
        print(json.dumps(shown, indent=2))
        return 0
    print(
        f"{provider.name or provider_id} ({provider_id}), catalog v{catalog.version}"
        + (f" compiled {catalog.published_at}" if catalog.published_at else "")
    )
    for label, text in (
        ("operated by", provider.legal_entity),
        ("region of", provider.region_of),
        ("website", provider.website),
        ("privacy policy", provider.privacy_policy_url),
        ("terms", provider.terms_url),
    ):
        if text:
            print(f"  {label}: {text}")
    if dp is None:
        print("  publishes no data policy: every requirement is unknown (and fails closed)")
    for row in rows:
        value = "unknown" if row["value"] is None else json.dumps(row["value"])
        checked = f", checked {row['checked_at']}" if row["checked_at"] else ""
        source = f"  [{row['source']}{checked}]" if row["source"] else ""
        print(f"  {row['attribute']:<22} {value}{source}")
    print(f"  models ({len(models)}; pin one as {provider_id}/MODEL):")
    for model in models:
        end = ended.get((model, provider_id))
        print(f"    {model}" + (f"  (deactivated {end})" if end else ""))
    return 0


def _attribute_row(dp: catalog_pb2.DataPolicy | None, name: str) -> dict[str, Any]:
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
    return {
        "attribute": name,
        "value": value,
        "source": evidence.source if evidence else "",
        "checked_at": evidence.checked_at if evidence else "",
    }
