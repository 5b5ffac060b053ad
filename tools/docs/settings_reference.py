# ruff: noqa: E501  (each description is one table cell)
"""docs/settings.md: every setting of `authz.config.Settings`, generated (a test compares).

Name, environment variable, type and default come from `Settings` itself; what each does is
MEANING below, which must name every field (the test says which is missing).

    python3 tools/docs/settings_reference.py          # rewrite docs/settings.md
    python3 tools/docs/settings_reference.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import get_args

from authz import config
from authz.events import registry as sink_registry

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "settings.md"

MEANING: dict[str, str] = {
    "redis_url": "`rediss://` for TLS; a password here must be percent-encoded: prefer `redis_password`",
    "redis_password": "Redis's password, any characters (from a Secret: `AUTHZ_REDIS_PASSWORD`); never printed; not with a password in `redis_url`",
    "redis_sentinels": "Redis Sentinel: the sentinels' `HOST:PORT`, comma-separated (the master is looked up by name, again after a failover)",
    "redis_sentinel_master": "Redis Sentinel: the master's name",
    "redis_cluster": "Redis Cluster (with a hash-tagged `key_prefix`, e.g. `{authz}:`)",
    "key_prefix": "prefix of every Redis key",
    "grpc_listen": "the Check over gRPC (Envoy's ext_authz)",
    "http_listen": "the admin API, the settings page and the probes",
    "admin_grpc_listen": "PolicyAdmin gRPC",
    "metrics_listen": "`/metrics` (and `/healthz`, `/readyz`)",
    "ext_authz_http_listen": 'the Check over Envoy\'s HTTP ext_authz protocol (`envoy/front-proxy-http.yaml`: under `/check`, health at `GET /healthz`), beside gRPC; not with `org_source = "jwt"`',
    "ports_file": "a file authz writes each bound listen address to (JSON), e.g. with `HOST:0` listen addresses",
    "http_max_connections": "open connections per HTTP port",
    "http_max_connections_per_client": "open connections per HTTP port from one client address",
    "http_head_timeout_s": "slow-client limit of the HTTP ports: time to send a request's head",
    "http_body_timeout_s": "slow-client limit of the HTTP ports: time to send a request's body",
    "http_connection_lifetime_s": "slow-client limit of the HTTP ports: a connection's whole life",
    "admin_jwt_hs256_secret": "HS256 secret for admin tokens, at least 32 characters",
    "admin_jwt_rs256_public_key_file": "or: the token issuer's RS256 public key (PEM)",
    "admin_jwt_issuer": "the admin tokens' `iss`, checked when set",
    "admin_jwt_audience": "the admin tokens' `aud`, checked when set",
    "require_enterprise_plan": "a policy can be configured only for orgs on the Enterprise plan (multi-tenant gateways); `false` for one company ([policy.md](policy.md))",
    "org_source": "`api_key`, `jwt`, `header`, `static` or `gateway` ([kubernetes.md](kubernetes.md))",
    "org_jwt_claim": 'with `org_source = "jwt"`: the string claim naming the org',
    "org_jwt_payload_key": 'with `org_source = "jwt"`: jwt_authn\'s `payload_in_metadata` key',
    "static_org_id": 'with `org_source = "static"`: the org every request belongs to',
    "static_requires_credential": 'with `org_source = "static"`: a request carrying no credential at all is still refused (401)',
    "gateway_key_api_url": 'with `org_source = "gateway"`: the gateway\'s key-info API, e.g. `http://127.0.0.1:4000/key/info` (LiteLLM)',
    "gateway_key_api_token": "its master key (a Secret: `AUTHZ_GATEWAY_KEY_API_TOKEN`)",
    "gateway_key_org_field": "the field of a key's info naming its org (`metadata.org_id` for a nested one)",
    "gateway_key_cache_ttl_s": 'with `org_source = "gateway"`: how long a key\'s org is remembered',
    "gateway_key_negative_ttl_s": 'with `org_source = "gateway"`: how long a key the gateway does not know is remembered',
    "gateway_key_timeout_s": 'with `org_source = "gateway"`: how long one key-API call may take',
    "org_header": 'with `org_source = "header"`: set by Envoy, never by clients',
    "model_header": "a header naming the model (e.g. Envoy AI Gateway's `x-ai-eg-model`): a client that sends it must name the body's model, else 400 `model_mismatch`",
    "provider_header": "e.g. `x-provider` to let clients pin with a header",
    "routing_enforcement": "`strict` (unpinned requests pass only if every provider complies) or `header` (the gateway honours `x-compliance-allowed-providers`)",
    "naming_profile": "how the gateway spells models, and its routing contract ([gateways.md](gateways.md)): "
    + ", ".join(f"`{name}`" for name in get_args(config.NamingProfile)),
    "max_request_bytes": "must equal Envoy's `with_request_body.max_request_bytes`",
    "api_key_sources": "where clients send the API key (every place LiteLLM reads one; a `litellm_key_header_name` comes with the imported catalog); two that differ, or an `Authorization` scheme authz does not read beside one → 401",
    "endpoints_file": "your endpoint table (rows before the shipped ones, Azure `[deployments]`)",
    "extra_body_fields": 'body fields your gateway is known not to route by, beyond its routing contract\'s list (docs/gateways.md); comma-separated. Under `naming_profile = "litellm"` any other field is 400 `field_not_allowed`',
    "custom_hosts": "Portkey: the custom hosts a request may name, per provider (`openai=http://egress:10000/openai/v1,…`); any other is refused",
    "azure_resources": "Portkey: the Azure OpenAI resources a request may name, each with its catalog entry (`contoso-se=azure-swedencentral,…`); its deployment must be in the endpoint table's `[deployments]`; any other is refused",
    "inspection_mib_per_s": "MiB of large bodies (1 MiB or more) one org may have inspected per second; past the budget its large requests get 429 `inspection_budget_exceeded` before they are read (0: no limit)",
    "inspection_burst_mib": "the inspection budget's burst, in MiB (at least `max_request_bytes`)",
    "parse_workers": "helper processes per worker that parse bodies of at least `parse_offload_bytes`, so no org's Check waits on another org's large parse (0: on the event loop; [performance.md](performance.md))",
    "parse_offload_bytes": "the body size from which a body is parsed in a helper process",
    "org_assertion_key": 'the key the ingress and egress checkpoints share to sign the org of each forwarded request (at least 32 bytes; `AUTHZ_ORG_ASSERTION_KEY`); empty: no assertions, and the egress checkpoint knows the org only with `org_source = "static"` ([egress.md](egress.md))',
    "org_assertion_ttl_s": "how long an org assertion is valid (10–86400)",
    "refresh_interval_s": "full resync from Redis, backing up pub/sub",
    "max_staleness_s": "no successful sync for this long → 503",
    "catalog_max_age_days": "a catalog compiled longer ago (its `published_at`) still enforces, but `/readyz` lists a warning and `authz_catalog_age_seconds` shows it",
    "otlp_endpoint": "OpenTelemetry: export a span per Check over OTLP/gRPC (e.g. `http://otel-collector:4317`); needs `pip install 'authz[otlp]'`",
    "redis_timeout_s": "cold lookups on the Check path (well inside Envoy's 2 s)",
    "unknown_api_keys_cached": "unknown API keys remembered (LRU)",
    "unknown_api_keys_ttl_s": "how long an unknown API key is remembered",
    "unknown_api_keys_per_s": "unknown-key lookups per client address per second (0: no limit); past it 429",
    "unknown_api_keys_burst": "the unknown-key lookups' burst per client address",
    "events_stream_maxlen": "approximate length kept in `authz:events:security`",
    "events_queue_size": "events held in memory before the writer takes them",
    "events_spool_dir": "where events wait while Redis is unreachable",
    "events_spool_max_bytes": "spool limit; beyond it events are dropped (counted)",
    "events_dedupe_window_s": "a spooled event replayed within this long of its creation is never written twice",
    "events_org_maxlen": "newest security events kept per org for its listing",
    "event_sinks": "where security events go, one or more of "
    + ", ".join(f"`{name}`" for name in sink_registry.BY_NAME)
    + " (comma-separated: `redis,file`)",
    "events_file": "the JSON-lines file of the `file` sink",
    "log_level": "`debug`, `info`, `warning` or `error`",
    "alert_webhook_allowed_hosts": "`host` or `host:port`, comma-separated: the operator's receivers, which may use http and internal addresses",
    "drain_delay_s": "after SIGTERM: keep serving (NOT_SERVING) this long",
    "shutdown_grace_s": "then: time for in-flight Checks and the event flush",
}

HEADER = """# Settings

Generated from `authz.config.Settings` by `tools/docs/settings_reference.py` (a test fails when
this file is stale). Settings come from a TOML file (`--config` or `AUTHZ_CONFIG`) and
`AUTHZ_<KEY>` environment variables, which win; an unknown key or a bad value stops the service
with the key named. How to run and operate it: [operating.md](operating.md).

| setting | environment | type | default | what it does |
|---|---|---|---|---|
"""


def kind(field: dataclasses.Field[object]) -> str:
    """The type as a reader needs it: the choices of a choice setting."""
    annotation = str(field.type)
    choices = getattr(config, annotation, None)
    if choices is not None and get_args(choices):
        return " \\| ".join(f"`{c}`" for c in get_args(choices))
    return {"str": "string", "bool": "boolean", "int": "integer", "float": "number"}.get(annotation, annotation)


def default(field: dataclasses.Field[object]) -> str:
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ("", None):
        return "(empty)"
    return f"`{value}`"


def render() -> str:
    fields = dataclasses.fields(config.Settings)
    missing = [f.name for f in fields if f.name not in MEANING]
    unknown = sorted(set(MEANING) - {f.name for f in fields})
    if missing or unknown:
        raise SystemExit(f"MEANING: missing {missing}, not a setting {unknown}")
    rows = [f"| `{f.name}` | `AUTHZ_{f.name.upper()}` | {kind(f)} | {default(f)} | {MEANING[f.name]} |" for f in fields]
    return HEADER + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python3 tools/docs/settings_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
