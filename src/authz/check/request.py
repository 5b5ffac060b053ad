"""CheckRequest -> the facts a decision needs. Pure, no I/O.

Envoy lower-cases header names and joins repeated headers with ',', so a smuggled second
model header reads as one unknown model and fails closed. The facts carry what the gateway
routes and parses by (method, path, query, content type) and the endpoint row the request
matches; the body itself is parsed later (authz.check.parsing), only when an enabled policy needs
the model. Credentials may come in any header a real client uses; two that differ are a
conflict, because the gateway might prefer the other one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from envoy.service.auth.v3 import external_auth_pb2

from authz.check import endpoints

OWNED_PREFIX = "x-compliance-"
REQUIRE_HEADER = "x-compliance-require"  # a client's own extra requirements (read, then stripped)
PARTIAL_BODY_HEADER = "x-envoy-auth-partial-body"


@dataclass(frozen=True, slots=True)
class ReadConfig:
    """Which request headers carry what (configurable; lower-case), and Envoy's body limit."""

    model: str = "x-model"
    provider: str = ""  # empty: the client cannot pin with a header
    org: str = ""  # a header Envoy itself sets (org_source = "header"); empty: not from a header
    # org_source = "jwt": the claim of the token jwt_authn verified, read from the payload it
    # puts in the Check's metadata (payload_in_metadata), where a claim keeps its JSON type.
    org_claim: str = ""
    jwt_payload_key: str = "jwt_payload"
    # Envoy's with_request_body.max_request_bytes. A body of this length may have been cut:
    # Envoy 1.40 reports `x-envoy-auth-partial-body: false` and `size` = the buffered length
    # when its buffer fills exactly at the limit, so those two signals alone miss the cut.
    max_request_bytes: int = 32 * 1024 * 1024
    # Where clients send their API key: header names, "authorization" (Bearer only), and
    # "query:NAME" for a query parameter (Gemini's ?key=).
    credentials: tuple[str, ...] = (
        "authorization",
        "x-litellm-api-key",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
        "query:key",
    )
    # Read Authorization's schemes as LiteLLM's proxy does (user_api_key_auth.py,
    # get_bearer_token: "Bearer", "bearer", "Basic <key>" taken as it is, and the key in an AWS
    # SigV4 "Credential=Bearer <key>/..."), not only as a Bearer credential.
    litellm_schemes: bool = False
    endpoints: endpoints.EndpointTable = field(default_factory=endpoints.default_table)
    # Headers the gateway's routing contract reads (authz.check.contracts), kept in the facts.
    routing_headers: tuple[str, ...] = ()
    routing_header_prefix: str = ""  # and every header with this prefix (Portkey's x-portkey-*)


# Not frozen, for the same reason as decision.Verdict: one per Check. Read-only by convention.
@dataclass(slots=True)
class RequestFacts:
    request_id: str
    api_key: str | None  # the credential; only ever hashed, never logged
    credential_conflict: bool  # two credentials that differ
    method: str
    path: str  # without the query
    query: str
    content_type: str | None
    endpoint: endpoints.Match | None  # the endpoint row it calls; None: no row covers it
    org_header: str | None
    model_header: str | None
    provider_header: str | None
    require_header: str | None
    body: bytes
    body_truncated: bool
    body_limit: int  # the most Envoy sends authz (ReadConfig.max_request_bytes), named in a 413
    content_encoding: str | None
    owned_headers: tuple[str, ...]  # x-compliance-* the client sent: always stripped
    upgrade: str | None  # the protocol a client asks to switch to (Upgrade, or an HTTP/2 CONNECT)
    client_address: str
    user_agent: str
    routing_headers: dict[str, str] = field(default_factory=dict)  # ReadConfig.routing_headers sent


def read(request: external_auth_pb2.CheckRequest, names: ReadConfig) -> RequestFacts:
    """The facts of a gRPC CheckRequest."""
    http = request.attributes.request.http
    headers = http.headers
    org = headers.get(names.org) if names.org else _org_claim(request, names) if names.org_claim else None
    return _facts(
        http.method,
        http.path,
        headers,
        http.raw_body or http.body.encode(),
        http.size,
        request.attributes.source.address.socket_address.address,
        http.id,
        org,
        names,
    )


def read_http(
    method: str, path: str, headers: Mapping[str, str], body: bytes, client_address: str, names: ReadConfig
) -> RequestFacts:
    """The facts of the request Envoy's HTTP ext_authz forwards (authz.server.http_transport):
    the client's method, path and query, its headers (lower-case, repeats joined with ','), and
    the body Envoy buffered. Envoy sends no jwt_authn metadata over HTTP (config refuses
    org_source = "jwt" there) and no separate body size: a cut body says so in
    x-envoy-auth-partial-body, or reaches the limit."""
    org = headers.get(names.org) if names.org else None
    return _facts(method, path, headers, body, len(body), client_address, "", org, names)


def _facts(
    method: str,
    full_path: str,
    headers: Mapping[str, str],
    body: bytes,
    size: int,
    client_address: str,
    fallback_id: str,
    org: str | None,
    names: ReadConfig,
) -> RequestFacts:
    path, _, query = full_path.partition("?")
    keys = _credentials(headers, query, names.credentials, names.litellm_schemes)
    # An Authorization whose scheme authz does not read ("Basic", "AWS4-HMAC-SHA256 ...") beside a
    # key it does read: the gateway may take its key from either (LiteLLM's get_bearer_token
    # reads Basic and AWS4 credentials too), so which org it serves is not known.
    scheme = _litellm_key if names.litellm_schemes else _bearer
    unread = "authorization" in names.credentials and not scheme(headers.get("authorization"))
    unread = unread and bool(headers.get("authorization", "").strip())
    return RequestFacts(
        request_id=headers.get("x-request-id", "") or fallback_id,
        api_key=keys[0] if keys else None,
        credential_conflict=len(keys) > 1 or (unread and bool(keys)),
        method=method,
        path=path,
        query=query,
        content_type=headers.get("content-type"),
        endpoint=names.endpoints.match(method, path),
        org_header=org,
        model_header=headers.get(names.model),
        provider_header=headers.get(names.provider) if names.provider else None,
        require_header=headers.get(REQUIRE_HEADER),
        body=body,
        body_truncated=_truncated(body, size, headers, names.max_request_bytes),
        body_limit=names.max_request_bytes,
        content_encoding=headers.get("content-encoding"),
        owned_headers=tuple(k for k in headers if k.startswith(OWNED_PREFIX)),
        upgrade=headers.get("upgrade") or (headers.get(":protocol") or "connect" if method == "CONNECT" else None),
        client_address=client_address,
        user_agent=headers.get("user-agent", ""),
        routing_headers=_routing_headers(headers, names)
        if names.routing_headers or names.routing_header_prefix
        else {},
    )


NOT_AN_ID = "\0"  # an org claim that is not a JSON string (a number, a list, an object)
JWT_AUTHN = "envoy.filters.http.jwt_authn"


def _org_claim(request: external_auth_pb2.CheckRequest, names: ReadConfig) -> str | None:
    """The verified token's org claim: its string, NOT_AN_ID for another JSON type, None if absent."""
    payloads = request.attributes.metadata_context.filter_metadata
    if JWT_AUTHN not in payloads or names.jwt_payload_key not in payloads[JWT_AUTHN].fields:
        return None
    claims = payloads[JWT_AUTHN].fields[names.jwt_payload_key].struct_value.fields
    if names.org_claim not in claims:
        return None
    value = claims[names.org_claim]
    return value.string_value if value.WhichOneof("kind") == "string_value" else NOT_AN_ID


def _credentials(
    headers: Mapping[str, str], query: str, sources: tuple[str, ...], litellm_schemes: bool = False
) -> list[str]:
    """Every distinct credential the request carries, in the configured order."""
    authorization = _litellm_key if litellm_schemes else _bearer
    found: list[str] = []
    for source in sources:
        if source.startswith("query:"):
            if not query:
                continue
            name = source[6:]
            values = [v.strip() for k, v in parse_qsl(query, keep_blank_values=True) if k == name]
        else:
            value = headers.get(source)
            if value is None:
                continue
            # Authorization carries a Bearer credential; other headers a bare key, or one with
            # the scheme LiteLLM strips there too (x-litellm-api-key: "Bearer sk-...").
            values = [(authorization(value) or "") if source == "authorization" else _bearer(value) or value.strip()]
        found.extend(v for v in values if v and v not in found)
    return found


def _routing_headers(headers: Mapping[str, str], names: ReadConfig) -> dict[str, str]:
    found = {n: headers[n] for n in names.routing_headers if n in headers}
    prefix = names.routing_header_prefix
    if prefix:
        found.update((n, v) for n, v in headers.items() if n.startswith(prefix))
    return found


def _truncated(body: bytes, size: int, headers: Mapping[str, str], limit: int) -> bool:
    """Whether Envoy may have sent less body than the client did. Any one signal suffices."""
    if headers.get(PARTIAL_BODY_HEADER) == "true" or len(body) >= limit or len(body) < size:
        return True
    declared = headers.get("content-length")
    return declared is not None and declared != str(len(body))


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, credential = value.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return None
    return credential


_AWS4_BEARER = re.compile(r"Credential=Bearer\s+([^/\s,]+)")
_AWS4_CREDENTIAL = re.compile(r"Credential=([^/\s,]+)")


def _litellm_key(value: str | None) -> str | None:
    """The key LiteLLM's get_bearer_token takes from an Authorization value, or None."""
    if not value:
        return None
    for scheme in ("Bearer ", "Basic ", "bearer "):
        if value.startswith(scheme):
            return value.replace(scheme, "") or None  # every occurrence, unstripped: as LiteLLM does
    if value.startswith("AWS4-HMAC-SHA256"):
        found = _AWS4_BEARER.search(value) or _AWS4_CREDENTIAL.search(value)
        return found.group(1) if found else None
    return None
