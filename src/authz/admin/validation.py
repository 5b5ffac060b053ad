"""What PolicyAdmin refuses before it writes anything, and the error kinds both transports
report: a policy that says something other than its author meant, list entries that are not
ids or name nothing the catalog has, custom providers with bad ids or attestations. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc
from google.protobuf import descriptor_pool, json_format

from authz.policy import catalog as catalog_mod
from authz.policy import rules as policy_rules
from authz.policy.catalog import CatalogIndex
from authz.policy.imports import cloud_regions
from authz.suggest import did_you_mean
from authz.v1 import catalog_pb2, policy_pb2


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of admin error, as both transports report it."""

    name: str  # the JSON error code
    http_status: int
    grpc_code: grpc.StatusCode


UNAUTHENTICATED = Kind("unauthenticated", 401, grpc.StatusCode.UNAUTHENTICATED)
PERMISSION_DENIED = Kind("permission_denied", 403, grpc.StatusCode.PERMISSION_DENIED)
INVALID_ARGUMENT = Kind("invalid_argument", 400, grpc.StatusCode.INVALID_ARGUMENT)
ABORTED = Kind("aborted", 409, grpc.StatusCode.ABORTED)
UNAVAILABLE = Kind("unavailable", 503, grpc.StatusCode.UNAVAILABLE)
NOT_FOUND = Kind("not_found", 404, grpc.StatusCode.NOT_FOUND)


class AdminError(Exception):
    def __init__(self, kind: Kind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


# What one tenant may store, enforced whatever `force` says (docs/security.md, "Tenant input"):
# far above what a real policy needs, low enough that compiling an org at every limit takes a
# few milliseconds (in a worker thread, cache.compiled) and a Check costs what it always does.
MAX_LIST_ENTRIES = 512  # each provider / model allow or deny list (the catalog has ~400 models)
MAX_COUNTRIES = 250  # allowed_countries: every ISO 3166-1 country
MAX_REGIONS = 32  # data_residency
MAX_ENTRY_CHARS = 200  # one list entry (a model id's own limit)
MAX_CUSTOM_PROVIDERS = 50  # an org's own providers
MAX_CUSTOM_MODELS = 200  # models of one custom provider
MAX_WATCHED_MODELS = 50  # alerts.watched_models
DEFAULT_BLOCK_WINDOW_S = 300  # alerts.block_window_s when a threshold is set without one
ENTERPRISE = "enterprise"  # the plan that may enable policies, custom providers and alerts
LIMITS = {
    "provider_allowlist": MAX_LIST_ENTRIES,
    "provider_denylist": MAX_LIST_ENTRIES,
    "model_allowlist": MAX_LIST_ENTRIES,
    "model_denylist": MAX_LIST_ENTRIES,
    "allowed_countries": MAX_COUNTRIES,
    "data_residency": MAX_REGIONS,
}


def at_most(what: str, count: int, limit: int) -> None:
    if count > limit:
        raise AdminError(
            INVALID_ARGUMENT, f"{what}: {count} entries, at most {limit} (a limit that force does not lift)"
        )


def validate(p: policy_pb2.CompliancePolicy, *, saving: bool = True) -> None:
    """Refuse policies that say something other than what their author meant, or more than
    any tenant may store."""
    for name, limit in LIMITS.items():
        at_most(name, len(getattr(p, name)), limit)
    if p.certifications == policy_pb2.CERTIFICATION_MATCH_ANY and not (p.require_soc2 and p.require_iso27001):
        raise AdminError(
            INVALID_ARGUMENT,
            "certifications 'any' (either SOC 2 or ISO 27001) needs both require_soc2 and "
            "require_iso27001; with one of them, leave certifications unset",
        )
    for country in p.allowed_countries:
        if not catalog_mod.COUNTRY.fullmatch(country):
            raise AdminError(
                INVALID_ARGUMENT,
                f"allowed_countries: {country!r} is not an ISO 3166-1 alpha-2 code in upper case (e.g. 'US', 'DE')",
            )
    for region in p.data_residency:
        problem = region_problem(region)
        if problem:
            raise AdminError(INVALID_ARGUMENT, f"data_residency: {problem}")
    for name in ("provider_allowlist", "provider_denylist", "model_allowlist", "model_denylist"):
        for entry in getattr(p, name):
            # Checked even with force: an entry with a space can never equal an id, so a deny list
            # holding one would be silently inert.
            if not entry or len(entry) > MAX_ENTRY_CHARS or any(c.isspace() for c in entry) or "," in entry:
                raise AdminError(
                    INVALID_ARGUMENT,
                    f"{name}: {entry[:64]!r} is not an id (no spaces or commas, at most {MAX_ENTRY_CHARS} characters)",
                )
    rules = policy_rules.rules_of(p)
    if saving and p.enabled and rules == policy_rules.NO_RULES:
        raise AdminError(INVALID_ARGUMENT, "an enabled policy needs at least one requirement or list")


# The processing-region codes a provider can be in: every code the clouds' region tables map
# to (authz.policy.imports.cloud_regions), which covers every code the shipped catalog publishes.
REGION_CODES = frozenset(
    {
        *cloud_regions.AWS.values(),
        *cloud_regions.AZURE.values(),
        *cloud_regions.GCP.values(),
        *cloud_regions.ALIBABA.values(),
        *cloud_regions.AWS_GEOGRAPHIES.values(),
    }
)
_REGION_WORDS = {"europe": "eu", "european-union": "eu", "usa": "us", "america": "us", "britain": "uk", "gb": "uk"}


def region_problem(region: str) -> str:
    """Why `region` is no processing-region code, with the code meant; "" when it is one. A code
    nothing is in would block every provider, so it is refused like a typo."""
    if region in REGION_CODES:
        return ""
    shown = repr(region[:64])
    lowered = region.strip().lower()
    if lowered in REGION_CODES:
        return f"{shown} is written {lowered!r} (region codes are lower case)"
    if lowered in _REGION_WORDS:
        return f"{shown} is no region code; did you mean {_REGION_WORDS[lowered]!r}?"
    for table in (cloud_regions.AWS, cloud_regions.AZURE, cloud_regions.GCP, cloud_regions.ALIBABA):
        if lowered in table:  # a cloud's region: the processing region it lies in
            return f"{shown} is a cloud region, not a processing region code; it lies in {table[lowered]!r}"
    hint = did_you_mean(
        lowered, REGION_CODES, n=1, cutoff=0.5, otherwise=f" (one of: {', '.join(sorted(REGION_CODES))})"
    )
    return f"{shown} is no processing region code{hint}"


def known_ids(
    p: policy_pb2.CompliancePolicy,
    catalog: CatalogIndex,
    custom: catalog_pb2.CustomProviders,
    *,
    forceable: bool = True,
) -> None:
    """Refuse list entries naming nothing the catalog (or the org's own providers) has: a typo
    in a deny list would block nothing. The message names the closest ids; where the caller
    offers it (`forceable`: saving through the admin API), `force` saves anyway."""
    providers = set(catalog.providers) | set(custom.providers)
    models = set(catalog.models) | {m for cp in custom.providers.values() for m in cp.models}
    for name, known, kind in (
        ("provider_allowlist", providers, "provider"),
        ("provider_denylist", providers, "provider"),
        ("model_allowlist", models, "model"),
        ("model_denylist", models, "model"),
    ):
        for entry in getattr(p, name):
            if entry in known:
                continue
            hint = did_you_mean(entry, known)
            force = " (send force: true to save it anyway)" if forceable else ""
            raise AdminError(
                INVALID_ARGUMENT, f"{name}: {entry!r} is not a {kind} in catalog v{catalog.version}{hint}{force}"
            )


def validate_alerts(alerts: policy_pb2.AlertSettings, catalog: CatalogIndex) -> None:
    """The watched models: within the limit and each in the catalog (a typo would never alert).
    The webhook URL is checked apart, by the WebhookGuard (it resolves the host)."""
    at_most("watched_models", len(alerts.watched_models), MAX_WATCHED_MODELS)
    for model in alerts.watched_models:
        if model not in catalog.models:
            hint = did_you_mean(model, catalog.models)
            raise AdminError(
                INVALID_ARGUMENT, f"watched_models: {model!r} is not a model in catalog v{catalog.version}{hint}"
            )


def with_default_window(alerts: policy_pb2.AlertSettings) -> policy_pb2.AlertSettings:
    """A block threshold without a window counts blocks over DEFAULT_BLOCK_WINDOW_S."""
    if alerts.block_threshold and not alerts.block_window_s:
        alerts.block_window_s = DEFAULT_BLOCK_WINDOW_S
    return alerts


def validate_custom_provider(cp: catalog_pb2.CustomProvider, catalog: CatalogIndex) -> None:
    where = f"custom provider {cp.id!r}"
    if not catalog_mod.PROVIDER_ID.fullmatch(cp.id):
        raise AdminError(INVALID_ARGUMENT, f"{where}: use lower-case letters, digits, '.', '_' or '-' (max 63)")
    if cp.id in catalog.providers:
        raise AdminError(INVALID_ARGUMENT, f"{where}: the catalog already has a provider with this id; choose another")
    if not cp.models:
        raise AdminError(INVALID_ARGUMENT, f"{where}: list the models it serves")
    at_most(f"{where}: models", len(cp.models), MAX_CUSTOM_MODELS)
    for model in cp.models:
        if not catalog_mod.MODEL_ID.fullmatch(model):
            raise AdminError(INVALID_ARGUMENT, f"{where}: model id {model!r}: no spaces, commas or control characters")
    if cp.HasField("attestation"):
        try:
            catalog_mod.validate_data_policy(cp.attestation, where)
        except catalog_mod.CatalogError as exc:
            raise AdminError(INVALID_ARGUMENT, str(exc)) from None


_NO_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(.{0,200}?)" at "([\w.\[\]]*)"')
_BAD_ENUM = re.compile(r"Invalid enum value (\w{0,64}) for enum type ([\w.]+)")
_BAD_VALUE = re.compile(r"Failed to parse (\w+) field: (?!Failed to parse)(.{0,300}?) at ([\w.\[\]]+)\.?$")


def parse_error_text(exc: json_format.ParseError) -> str:
    """protobuf's JSON parse error as people write the fields: "unknown field 'require_gpdr' in
    policy; did you mean 'require_gdpr'?" (its own lists the camelCase names), or the field whose
    value is wrong and why."""
    text = str(exc)
    found = _NO_FIELD.search(text)
    if found:
        type_name, name, where = found.groups()
        try:
            fields = [f.name for f in descriptor_pool.Default().FindMessageTypeByName(type_name).fields]
        except KeyError:
            fields = []
        place = where.partition(".")[2]
        return f"unknown field {name!r}{f' in {place}' if place else ''}{did_you_mean(name, fields, n=1)}"
    found = _BAD_VALUE.search(text.replace("\n", " ").strip())
    if found:
        field, why, where = found.groups()
        enum = _BAD_ENUM.search(why)
        if enum:
            value, type_name = enum.groups()
            try:
                names = [v.name for v in descriptor_pool.Default().FindEnumTypeByName(type_name).values]
            except KeyError:
                names = []
            why = f"{value!r} is not one of {', '.join(names)}" if names else why
        return f"{(where.partition('.')[2] or field).rstrip('.')}: {why.rstrip('.')}"
    return text.split("\n", 1)[0]
