"""Settings: one TOML file plus `AUTHZ_<KEY>` environment overrides, checked at start.

A bad setting stops the service with a message naming the key and what is allowed,
instead of starting with a guess.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import re
import tempfile
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from authz.suggest import did_you_mean

# Every listen setting; each binds its own port (authz.server.ports claims them first).
LISTEN_KEYS = ("grpc_listen", "http_listen", "admin_grpc_listen", "metrics_listen", "ext_authz_http_listen")


class ConfigError(ValueError):
    pass


# Wildcard listen hosts: they overlap every other host on the same port.
_ANY_HOST = {"0.0.0.0", "[::]", "::", "*"}


# The choices of each choice setting, as types: mypy checks every comparison against them.
OrgSource = Literal["api_key", "header", "jwt", "static", "gateway"]
RoutingEnforcement = Literal["strict", "header"]
NamingProfile = Literal["native", "litellm", "openrouter", "llmgateway", "portkey"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS; no password in it: see redis_password
    # Redis's password (AUTHZ_REDIS_PASSWORD, from a Secret): any characters, never part of a URL
    # or a message. A password in redis_url works too (percent-encoded), but not both.
    redis_password: str = ""
    # Redis Sentinel: comma-separated host:port of the sentinels; the master is looked up by
    # name (and again after a failover). redis_url then only supplies db, user and password.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "mymaster"
    # Redis Cluster: redis_url names any node. Use a hash-tagged key_prefix (e.g. "{authz}:")
    # so every key written in one transaction lives in one slot.
    redis_cluster: bool = False
    key_prefix: str = "authz:"
    grpc_listen: str = "0.0.0.0:9001"
    http_listen: str = "0.0.0.0:9090"
    admin_grpc_listen: str = "0.0.0.0:9002"
    metrics_listen: str = "0.0.0.0:9091"  # /metrics (and /healthz, /readyz): no admin API here
    # Envoy's HTTP ext_authz protocol (http_service), beside or instead of gRPC: the same Check
    # from the same process state, served by granian (HTTP/1.1 framed in Rust). Empty: off.
    ext_authz_http_listen: str = ""
    # A file authz writes the bound address of each *_listen setting to, as JSON, once its ports
    # are claimed: with HOST:0 addresses (the kernel picks the port) it tells a caller where.
    ports_file: str = ""
    # Slow-client limits of the two HTTP ports (each port counts its own connections).
    http_max_connections: int = 256
    http_max_connections_per_client: int = 32
    http_head_timeout_s: float = 10.0
    http_body_timeout_s: float = 10.0
    http_connection_lifetime_s: float = 120.0
    # Admin API tokens: an HS256 secret (>= 32 characters) or an RS256 public key file, not both.
    admin_jwt_hs256_secret: str = ""
    admin_jwt_rs256_public_key_file: str = ""
    admin_jwt_issuer: str = ""
    admin_jwt_audience: str = ""
    # Policies, custom providers and alerts are an Enterprise feature of a multi-tenant gateway:
    # an org needs plan "enterprise" (authz org set-plan) before it can enable them. A
    # single-company deployment turns the gate off (docs/policy.md, "Plans").
    require_enterprise_plan: bool = True
    # "api_key": Authorization: Bearer <key> -> Redis. "header": org_header, set by Envoy itself.
    # "jwt": the org_jwt_claim of the token Envoy's jwt_authn verified (envoy/snippets/jwt-org.yaml).
    # "static": every request belongs to static_org_id (one company, nothing to register).
    org_source: OrgSource = "api_key"
    org_jwt_claim: str = "org"  # a string claim; any other JSON type is refused (401 org_malformed)
    org_jwt_payload_key: str = "jwt_payload"  # jwt_authn's payload_in_metadata
    static_org_id: str = ""
    # With org_source = "static": refuse (401) a request that carries no credential at all.
    static_requires_credential: bool = True
    # org_source = "gateway": ask the gateway's key API (LiteLLM's /key/info) on a cache miss.
    gateway_key_api_url: str = ""  # e.g. http://litellm:4000/key/info
    gateway_key_api_token: str = ""  # the proxy's master key (or set AUTHZ_GATEWAY_KEY_API_TOKEN)
    gateway_key_org_field: str = "team_id"  # the field of the key's info naming the org ("metadata.org_id")
    gateway_key_cache_ttl_s: float = 300.0
    gateway_key_negative_ttl_s: float = 30.0
    gateway_key_timeout_s: float = 0.5
    org_header: str = "x-org-id"
    model_header: str = "x-model"
    provider_header: str = ""  # e.g. "x-provider" to let clients pin with a header
    # How the gateway routes a request that pins no provider. "strict" (safe in front of any
    # gateway): allowed only when every provider serving the model complies. "header": the
    # gateway routes only among x-compliance-allowed-providers (it must; see docs/requests.md).
    routing_enforcement: RoutingEnforcement = "strict"
    # The gateway behind authz: how its clients spell models and its routing contract, one
    # module of authz.policy.gateways each (NamingProfile lists them).
    naming_profile: NamingProfile = "native"
    # Must equal Envoy's ext_authz with_request_body.max_request_bytes. 32 MiB: OpenAI accepts
    # image inputs and files of tens of MB in one request, and a body cut short is denied.
    max_request_bytes: int = 32 * 1024 * 1024
    # Where clients send the API key (first match wins; two that differ are refused): header
    # names, "authorization" meaning its Bearer credential, "query:NAME" for a query parameter.
    # The defaults are every place LiteLLM's proxy reads a key (user_api_key_auth.get_api_key);
    # a general_settings.litellm_key_header_name comes with the catalog imported from its config.
    api_key_sources: str = (
        "authorization,x-litellm-api-key,x-api-key,api-key,x-goog-api-key,ocp-apim-subscription-key,query:key"
    )
    # An endpoint table of your own (TOML; see docs/requests.md): rows matched before the shipped
    # ones, and the Azure deployment -> model map. Empty: the shipped table alone.
    endpoints_file: str = ""
    # Body fields (comma-separated) the gateway's router is known not to route by, beyond those
    # its routing contract lists (docs/gateways.md); any other field is refused, 400.
    extra_body_fields: str = ""
    # Portkey: the custom hosts a request may name, per provider ("openai=http://egress:10000/openai/v1,...";
    # typically the egress routes). Any other x-portkey-custom-host or config custom_host is refused.
    custom_hosts: str = ""
    # Portkey: the Azure OpenAI resources a request may name (x-portkey-azure-resource-name, a
    # target's resource_name), each with the catalog entry of its region
    # ("contoso-se=azure-swedencentral,..."); its deployment must be in the endpoint table's
    # [deployments] map. Any other resource is refused: Portkey sends the prompt to that resource.
    azure_resources: str = ""
    # Bytes of large bodies (>= 1 MiB) one org may have inspected per second, and the burst: past
    # them its large requests get 429 before their body is read (0: no limit). docs/security.md.
    inspection_mib_per_s: float = 16.0
    inspection_burst_mib: float = 64.0
    # Bodies of at least parse_offload_bytes are parsed in parse_workers helper processes (per
    # worker process), so no org's Check waits on another's parse (authz.server.parse_pool);
    # 0 workers: every body is parsed on the event loop.
    parse_workers: int = 1
    parse_offload_bytes: int = 1024 * 1024
    # The egress checkpoint (docs/egress.md): the key both checkpoints share to sign and verify
    # org assertions (at least 32 bytes; empty: no assertions are made, and the egress
    # checkpoint knows the org only with org_source = "static"), and how long one is valid.
    org_assertion_key: str = ""
    org_assertion_ttl_s: int = 600
    refresh_interval_s: float = 30.0  # full resync, backing up pub/sub
    max_staleness_s: float = 120.0  # past this without a successful sync: 503
    # A catalog compiled longer ago than this still enforces, but /readyz warns and
    # authz_catalog_age_seconds shows it (its facts may have changed since).
    catalog_max_age_days: int = 90
    # OpenTelemetry: export a span per Check to this OTLP/gRPC endpoint (e.g. "http://otel-collector:4317");
    # empty: no tracing. Needs the `otlp` extra (pip install 'authz[otlp]').
    otlp_endpoint: str = ""
    redis_timeout_s: float = 0.15  # cold lookups on the Check path (Envoy waits ~200 ms)
    # Unknown API keys: remembered (LRU, TTL) so repeats cost no Redis call, and limited per
    # client address (token bucket charged only by unknown keys; 0 per second: no limit).
    unknown_api_keys_cached: int = 10_000
    unknown_api_keys_ttl_s: float = 30.0
    unknown_api_keys_per_s: float = 5.0
    unknown_api_keys_burst: int = 50
    events_stream_maxlen: int = 1_000_000
    events_queue_size: int = 100_000
    # Where events wait while Redis is unreachable; empty: a directory under the system temp
    # dir named after redis_url and key_prefix, so two deployments on one host never mix.
    events_spool_dir: str = ""
    events_spool_max_bytes: int = 1 << 30
    # A spooled event replayed within this long of its creation is never written twice.
    events_dedupe_window_s: int = 24 * 3600
    events_org_maxlen: int = 10_000  # each org's own listing of its newest security events
    # Where security events go, comma-separated: "redis" (the events:security stream and each
    # org's listing, which the admin API and alerts read) and/or "file" (JSON lines appended to
    # events_file, for a log shipper).
    event_sinks: str = "redis"
    events_file: str = ""
    log_level: LogLevel = "info"
    # Alert webhooks are tenant input: https to public addresses only. Hosts listed here
    # ("host" or "host:port", comma-separated) are the operator's own receivers and may use
    # http and non-public addresses.
    alert_webhook_allowed_hosts: str = ""
    # SIGTERM: keep serving this long while reporting NOT_SERVING, then stop accepting and
    # give in-flight Checks (and the event flush) this long to finish.
    drain_delay_s: float = 5.0
    shutdown_grace_s: float = 10.0

    def sentinels(self) -> list[tuple[str, int]]:
        found = []
        for sentinel in filter(None, self.redis_sentinels.split(",")):
            host, _, port = sentinel.strip().rpartition(":")
            found.append((host.strip("[]"), int(port)))
        return found

    def listens(self) -> dict[str, str]:
        """Each listen setting in use -> its HOST:PORT (ext_authz_http_listen only when set)."""
        return {key: getattr(self, key) for key in LISTEN_KEYS if getattr(self, key)}

    def bound_to(self, addresses: Mapping[str, str]) -> Settings:
        """These settings with each *_listen address replaced by the one bound (authz.server.ports)."""
        bound = {key: addresses[key] for key in self.listens()}
        return dataclasses.replace(self, **bound)  # type: ignore[arg-type]  # every one a str field

    def spool_dir(self) -> str:
        if self.events_spool_dir:
            return self.events_spool_dir
        target = hashlib.sha256(f"{self.redis_url}|{self.key_prefix}".encode()).hexdigest()[:12]
        return os.path.join(tempfile.gettempdir(), "authz-spool", target)

    def event_sink_names(self) -> list[str]:
        return [name.strip() for name in self.event_sinks.split(",") if name.strip()]

    def custom_host_map(self) -> frozenset[tuple[str, str]]:
        pairs = (item.partition("=") for item in self.custom_hosts.split(",") if item.strip())
        return frozenset((p.strip(), url.strip().rstrip("/")) for p, _, url in pairs)

    def azure_resource_map(self) -> frozenset[tuple[str, str]]:
        pairs = (item.partition("=") for item in self.azure_resources.split(",") if item.strip())
        return frozenset((resource.strip(), entry.strip()) for resource, _, entry in pairs)

    def body_fields(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.extra_body_fields.split(",") if name.strip())

    def credential_sources(self) -> tuple[str, ...]:
        return tuple(s.strip().lower() for s in self.api_key_sources.split(",") if s.strip())


def redact_url(url: str) -> str:
    """A Redis URL fit for logs, messages and /readyz: the password replaced by ***."""
    try:
        parts = urllib.parse.urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:  # unreadable: show nothing of it but its scheme
        return url.partition("://")[0] + "://(unreadable)"
    if password is None:
        return url
    user = urllib.parse.quote(parts.username or "", safe="")
    netloc = f"{user}:***@{parts.hostname or ''}" + (f":{port}" if port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _check_redis_url(s: Settings) -> None:
    """redis_url as redis-py reads it, refused with a message that quotes no part of it (a
    password with '/' or '#' makes the rest of the URL unreadable, and the parser's own error
    would quote a piece of the password)."""
    scheme = s.redis_url.partition("://")[0]
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("setting 'redis_url': expected a redis://, rediss:// (TLS) or unix:// URL")
    from redis.connection import parse_url

    try:
        parsed = parse_url(s.redis_url)  # type: ignore[no-untyped-call]
        parts = urllib.parse.urlsplit(s.redis_url)
        if parts.port is None and scheme != "unix" and not parts.hostname:  # port: raises if no number
            raise ValueError("no host")  # "redis://:pw#x@host": the host fell into the fragment
    except (ValueError, TypeError):
        raise ConfigError(
            "setting 'redis_url' cannot be read as a Redis URL (its host, port or db); a password containing "
            "'/', '#', '?', '@' or ':' breaks a URL: give the password as the setting 'redis_password' "
            "(AUTHZ_REDIS_PASSWORD) and leave it out of the URL, or percent-encode it"
        ) from None
    if s.redis_password and parsed.get("password"):
        raise ConfigError("the Redis password is set twice (in redis_url and redis_password): keep one")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_ENV_PREFIX = "AUTHZ_"
# Read by the CLI, not settings of the service.
_CLIENT_VARIABLES = frozenset({"AUTHZ_CONFIG", "AUTHZ_API", "AUTHZ_TOKEN", "AUTHZ_WORKERS"})
_CHOICES: dict[str, tuple[str, ...]] = {
    "org_source": get_args(OrgSource),
    "log_level": get_args(LogLevel),
    "routing_enforcement": get_args(RoutingEnforcement),
    "naming_profile": get_args(NamingProfile),
}


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"{path}: unknown setting {key!r}{_did_you_mean(key)}")
            values[key] = _coerce(key, value, origin=str(path))
    for env_key, raw in environ.items():
        if not env_key.startswith(_ENV_PREFIX) or env_key in _CLIENT_VARIABLES:
            continue
        key = env_key[len(_ENV_PREFIX) :].lower()
        if key not in _FIELDS:
            raise ConfigError(f"environment variable {env_key}: unknown setting {key!r}{_did_you_mean(key)}")
        values[key] = _coerce(key, raw, origin=env_key)
    settings = Settings(**values)
    _check(settings)
    return settings


def _did_you_mean(key: str) -> str:
    return did_you_mean(key, _FIELDS, n=2, cutoff=0.75, otherwise=f" (known: {', '.join(_FIELDS)})")


# Settings that are on/off: a TOML boolean, or a word an environment variable would use.
_BOOLEANS = frozenset(f.name for f in dataclasses.fields(Settings) if f.type == "bool")
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})
# Whole-number settings where 0 means "off" (every other one must be positive).
_ZERO_MEANS_OFF = frozenset({"parse_workers", "parse_offload_bytes"})


def _coerce(key: str, value: Any, origin: str) -> Any:
    kind = _FIELDS[key].type
    if key in _BOOLEANS:
        word = str(value).lower() if isinstance(value, bool | str) else ""
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ConfigError(f"{origin}: setting {key!r} = {value!r}: must be true or false")
    try:
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError("must be a number")
            result = float(value)
            if not result >= 0 or result == float("inf"):
                raise ValueError("must be a finite number, zero or more")
            return result
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError("must be a whole number")
            result = int(value)
            if result < 0 or (result == 0 and key not in _ZERO_MEANS_OFF):
                raise ValueError("must be zero or more" if key in _ZERO_MEANS_OFF else "must be positive")
            return result
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: setting {key!r} = {value!r}: {exc}") from None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _check_tracing(s: Settings) -> None:
    if s.otlp_endpoint and not _installed("opentelemetry.exporter.otlp.proto.grpc"):
        raise ConfigError(
            f"setting 'otlp_endpoint' = {s.otlp_endpoint!r}: the OTLP exporter is not installed "
            "(pip install 'authz[otlp]'), or leave otlp_endpoint empty"
        )


def _check_choices(s: Settings) -> None:
    for key, allowed in _CHOICES.items():
        if getattr(s, key) not in allowed:
            raise ConfigError(f"setting {key!r} = {getattr(s, key)!r}: must be one of {', '.join(allowed)}")


def _check_request_reading(s: Settings) -> None:
    """model_header, org_header, provider_header, api_key_sources."""
    for key in ("model_header", "org_header", "provider_header"):
        value = getattr(s, key)
        if value != value.lower() or " " in value:
            raise ConfigError(f"setting {key!r} = {value!r}: header names must be lower-case, no spaces")
    if not s.model_header:
        raise ConfigError("setting 'model_header' must not be empty")
    sources = s.credential_sources()
    if s.org_source == "api_key" and not sources:
        raise ConfigError("setting 'api_key_sources' must name at least one header or query:NAME")
    for source in sources:
        name = source.removeprefix("query:")
        if not name or " " in name:
            raise ConfigError(f"setting 'api_key_sources': {source!r} is not a header name or query:NAME")


def _check_org_source(s: Settings) -> None:
    """org_source and the settings each source needs."""
    if s.org_source == "gateway" and not (
        s.gateway_key_api_url.startswith(("http://", "https://")) and s.gateway_key_api_token
    ):
        raise ConfigError(
            "org_source = 'gateway' needs gateway_key_api_url (http[s]://…/key/info) and "
            "gateway_key_api_token (the gateway's master key)"
        )
    if s.org_source == "static" and not s.static_org_id:
        raise ConfigError("setting 'static_org_id' must name the org when org_source = 'static'")
    if s.org_source == "jwt" and not (s.org_jwt_claim and s.org_jwt_payload_key):
        raise ConfigError("settings 'org_jwt_claim' and 'org_jwt_payload_key' must be set when org_source = 'jwt'")
    if s.org_source == "header" and not s.org_header:
        raise ConfigError("setting 'org_header' must be set when org_source = 'header'")
    if s.ext_authz_http_listen and s.org_source == "jwt":
        raise ConfigError(
            "org_source = 'jwt' reads the claim from the payload jwt_authn puts in the Check's metadata, which Envoy "
            "sends over gRPC only: serve Checks over gRPC (unset ext_authz_http_listen), or name the org with "
            "org_source = 'header' and jwt_authn's claim_to_headers"
        )


def _check_admin(s: Settings) -> None:
    """The admin API's token settings."""
    if s.admin_jwt_hs256_secret and s.admin_jwt_rs256_public_key_file:
        raise ConfigError("set either 'admin_jwt_hs256_secret' or 'admin_jwt_rs256_public_key_file', not both")
    if s.admin_jwt_hs256_secret and len(s.admin_jwt_hs256_secret) < 32:
        raise ConfigError("setting 'admin_jwt_hs256_secret' must be at least 32 characters")
    if s.admin_jwt_rs256_public_key_file and not os.path.isfile(s.admin_jwt_rs256_public_key_file):
        raise ConfigError(f"setting 'admin_jwt_rs256_public_key_file': no file {s.admin_jwt_rs256_public_key_file}")


def _check_egress(s: Settings) -> None:
    """The org assertions both checkpoints share; Portkey's allowed Azure resources."""
    if s.org_assertion_key and len(s.org_assertion_key.encode()) < 32:
        raise ConfigError(
            "setting 'org_assertion_key' must be at least 32 bytes "
            "(e.g. AUTHZ_ORG_ASSERTION_KEY=$(openssl rand -hex 32))"
        )
    if not 10 <= s.org_assertion_ttl_s <= 86_400:
        raise ConfigError("setting 'org_assertion_ttl_s' must be between 10 and 86400 seconds")
    for item in (i for i in s.azure_resources.split(",") if i.strip()):
        resource, eq, entry = (part.strip() for part in item.partition("="))
        if not eq or not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", resource) or not entry:
            raise ConfigError(
                f"setting 'azure_resources': {item.strip()[:80]!r} is not RESOURCE=CATALOG_ENTRY "
                "(e.g. contoso-se=azure-swedencentral)"
            )


def _check_inspection(s: Settings) -> None:
    if s.inspection_mib_per_s < 0:
        raise ConfigError("setting 'inspection_mib_per_s' must be 0 (no limit) or more")
    if s.inspection_mib_per_s > 0 and s.inspection_burst_mib * 1024 * 1024 < s.max_request_bytes:
        raise ConfigError(
            "setting 'inspection_burst_mib' must hold at least one body of max_request_bytes "
            f"({s.max_request_bytes / 1024 / 1024:g} MiB), or no such body could ever be inspected"
        )


def _check_listeners(s: Settings) -> None:
    """Every *_listen setting is HOST:PORT, each on a port of its own."""
    listening: dict[str, tuple[str, str]] = {}
    for key in s.listens():
        host, _, port = getattr(s, key).rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"setting {key!r} = {getattr(s, key)!r}: expected HOST:PORT")
        # Every listener sets SO_REUSEPORT (for --workers), so two on one port would both bind
        # and split the connections between them instead of failing.
        for other, (other_host, other_port) in listening.items():
            if port == other_port != "0" and (host == other_host or {host, other_host} & _ANY_HOST):
                raise ConfigError(
                    f"settings {other!r} = {getattr(s, other)!r} and {key!r} = {getattr(s, key)!r} "
                    "listen on the same port: give each its own"
                )
        listening[key] = (host, port)


def _check_redis(s: Settings) -> None:
    """redis_url and redis_password, Sentinel, Cluster and its key prefix."""
    if s.redis_cluster:
        if s.redis_sentinels:
            raise ConfigError("set either 'redis_cluster' or 'redis_sentinels', not both")
        start, end = s.key_prefix.find("{"), s.key_prefix.find("}")
        if not (0 <= start < end - 1):
            raise ConfigError(
                f"setting 'key_prefix' = {s.key_prefix!r}: with redis_cluster it needs a hash tag, "
                "e.g. '{authz}:', so keys written together share a slot"
            )
    for sentinel in filter(None, s.redis_sentinels.split(",")):
        host, _, port = sentinel.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"setting 'redis_sentinels': {sentinel!r} is not HOST:PORT")
    _check_redis_url(s)


def _check_timing(s: Settings) -> None:
    """Timeouts and the refresh that keeps the state fresh."""
    for key in (
        "refresh_interval_s",
        "redis_timeout_s",
        "http_head_timeout_s",
        "http_body_timeout_s",
        "http_connection_lifetime_s",
    ):
        if getattr(s, key) <= 0:
            raise ConfigError(f"setting {key!r} must be more than zero")
    if s.max_staleness_s <= s.refresh_interval_s:
        raise ConfigError(
            f"setting 'max_staleness_s' ({s.max_staleness_s}) must exceed 'refresh_interval_s' "
            f"({s.refresh_interval_s}), or every refresh would already be stale"
        )


# Each section's settings checked together, in this order (the first failure is reported).
# What needs the layers above (the endpoints file, the event sinks) is checked by
# authz.server.components.check.
_SECTION_CHECKS = (
    _check_tracing,
    _check_choices,
    _check_request_reading,
    _check_org_source,
    _check_admin,
    _check_egress,
    _check_inspection,
    _check_listeners,
    _check_redis,
    _check_timing,
)


def _check(s: Settings) -> None:
    for check in _SECTION_CHECKS:
        check(s)
