"""The service's parts, built from its settings.

`config` only reads and checks settings (it sits at the bottom of the import graph); what
those settings configure in the layers above is built here, by the app and the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authz.admin.tokens import Authenticator
from authz.alerts.webhook_guard import WebhookGuard
from authz.check import assertion, endpoints
from authz.check.decision import Gateway
from authz.check.request import ReadConfig
from authz.config import ConfigError, Settings
from authz.events import registry as sink_registry
from authz.httpguard import Limits
from authz.policy import gateways
from authz.policy.gateways.description import Allowed
from authz.server.org_sources import OrgSource
from authz.server.org_sources.api_key import ApiKeyOrg, RedisKeys
from authz.server.org_sources.assertion import AssertionOrg, AssertionSigner
from authz.server.org_sources.named import HeaderOrg, StaticOrg
from authz.server.unknown_keys import UnknownKeyLimiter
from authz.state.cache import StateCache

if TYPE_CHECKING:  # imported when used: its aiohttp client is only needed with org_source = gateway
    from authz.state.gateway_keys import LiteLLMKeyResolver


def check(settings: Settings) -> None:
    """What `config.load` cannot check from below: the endpoints file parses, and the event
    sinks named exist with their settings (authz.events.registry). Raises ConfigError."""
    endpoint_table(settings)
    sink_registry.check(settings)


def endpoint_table(settings: Settings) -> endpoints.EndpointTable:
    try:
        return endpoints.load(settings.endpoints_file or None)
    except endpoints.EndpointError as exc:
        raise ConfigError(f"setting 'endpoints_file': {exc}") from None


def read_config(settings: Settings) -> ReadConfig:
    described = gateways.named(settings.naming_profile)
    contract = described.contract
    return ReadConfig(
        model=settings.model_header,
        provider=settings.provider_header,
        org=settings.org_header if settings.org_source == "header" else "",
        org_claim=settings.org_jwt_claim if settings.org_source == "jwt" else "",
        jwt_payload_key=settings.org_jwt_payload_key,
        max_request_bytes=settings.max_request_bytes,
        credentials=settings.credential_sources(),
        litellm_schemes=described.litellm_key_schemes,
        endpoints=endpoint_table(settings),
        # The contract's headers, and the egress checkpoint's org assertion.
        routing_headers=(*contract.headers_read, assertion.HEADER),
        routing_header_prefix=contract.header_prefix,
    )


def gateway(settings: Settings) -> Gateway:
    return Gateway(
        routing=settings.routing_enforcement,
        naming=settings.naming_profile,
        extra_body_fields=settings.body_fields(),
        allowed=Allowed(
            custom_hosts=settings.custom_host_map(),
            azure_resources=settings.azure_resource_map(),
            deployments=frozenset(endpoint_table(settings).deployments.items()),
        ),
    )


def gateway_keys(settings: Settings) -> LiteLLMKeyResolver | None:
    if settings.org_source != "gateway":
        return None
    from authz.state.gateway_keys import LiteLLMKeyResolver

    return LiteLLMKeyResolver(
        settings.gateway_key_api_url,
        settings.gateway_key_api_token,
        settings.gateway_key_org_field,
        ttl_s=settings.gateway_key_cache_ttl_s,
        negative_ttl_s=settings.gateway_key_negative_ttl_s,
        timeout_s=settings.gateway_key_timeout_s,
    )


def org_sources(settings: Settings, cache: StateCache, unknown_keys: UnknownKeyLimiter) -> tuple[OrgSource, OrgSource]:
    """Where the org comes from: at ingress by `org_source`; at egress the static org, else the
    ingress checkpoint's signed assertion."""
    ingress: OrgSource
    if settings.org_source == "static":
        ingress = StaticOrg(settings.static_org_id, settings.static_requires_credential)
    elif settings.org_source in ("header", "jwt"):  # named by Envoy: a header or a verified claim
        ingress = HeaderOrg()
    else:
        resolver = gateway_keys(settings)  # org_source = "gateway": the gateway's key API
        ingress = ApiKeyOrg(resolver if resolver is not None else RedisKeys(cache), unknown_keys)
    egress: OrgSource = (
        StaticOrg(settings.static_org_id, requires_credential=False, names_key=False)
        if settings.org_source == "static"
        else AssertionOrg(settings.org_assertion_key.encode())
    )
    return ingress, egress


def assertion_signer(settings: Settings) -> AssertionSigner:
    return AssertionSigner(settings.org_assertion_key.encode(), settings.org_assertion_ttl_s)


def authenticator(settings: Settings) -> Authenticator:
    public_key = ""
    if settings.admin_jwt_rs256_public_key_file:
        with open(settings.admin_jwt_rs256_public_key_file) as f:
            public_key = f.read()
    return Authenticator(
        hs256_secret=settings.admin_jwt_hs256_secret,
        rs256_public_key=public_key,
        issuer=settings.admin_jwt_issuer,
        audience=settings.admin_jwt_audience,
    )


def webhook_guard(settings: Settings) -> WebhookGuard:
    return WebhookGuard.from_setting(settings.alert_webhook_allowed_hosts)


def http_limits(settings: Settings) -> Limits:
    return Limits(
        max_connections=settings.http_max_connections,
        max_per_client=settings.http_max_connections_per_client,
        head_timeout_s=settings.http_head_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        lifetime_s=settings.http_connection_lifetime_s,
    )
