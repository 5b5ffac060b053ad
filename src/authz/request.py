"""CheckRequest -> the facts a decision needs. Pure, no I/O.

Envoy lower-cases header names and joins repeated headers with ',', so a smuggled second
model header reads as one unknown model and fails closed. The facts carry what the gateway
routes and parses by (method, path, query, content type) and the endpoint row the request
matches; the body itself is parsed later (authz.parsing), only when an enabled policy needs
the model. Credentials may come in any header a real client uses; two that differ are a
conflict, because the gateway might prefer the other one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from envoy.service.auth.v3 import external_auth_pb2

from authz import endpoints

OWNED_PREFIX = "x-compliance-"
REQUIRE_HEADER = "x-compliance-require"  # a client's own extra requirements (read, then stripped)
PARTIAL_BODY_HEADER = "x-envoy-auth-partial-body"


@dataclass(frozen=True, slots=True)
class ReadConfig:
    """Which request headers carry what (configurable; lower-case), and Envoy's body limit."""

    model: str = "x-model"
    provider: str = ""  # empty: the client cannot pin with a header
    org: str = ""  # a header Envoy itself sets (e.g. from jwt_authn); empty: use API keys
    # Envoy's with_request_body.max_request_bytes. A body of this length may have been cut:
    # Envoy 1.40 reports `x-envoy-auth-partial-body: false` and `size` = the buffered length
    # when its buffer fills exactly at the limit, so those two signals alone miss the cut.
    max_request_bytes: int = 32 * 1024 * 1024
    # Where clients send their API key: header names, "authorization" (Bearer only), and
    # "query:NAME" for a query parameter (Gemini's ?key=).
    credentials: tuple[str, ...] = ("authorization", "x-api-key", "api-key", "x-goog-api-key", "query:key")
    endpoints: endpoints.EndpointTable = field(default_factory=endpoints.default_table)


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
    content_encoding: str | None
    owned_headers: tuple[str, ...]  # x-compliance-* the client sent: always stripped
    client_address: str
    user_agent: str


def read(request: external_auth_pb2.CheckRequest, names: ReadConfig) -> RequestFacts:
    http = request.attributes.request.http
    headers = http.headers
    body = http.raw_body or http.body.encode()
    path, _, query = http.path.partition("?")
    keys = _credentials(headers, query, names.credentials)
    return RequestFacts(
        request_id=headers.get("x-request-id", "") or http.id,
        api_key=keys[0] if keys else None,
        credential_conflict=len(keys) > 1,
        method=http.method,
        path=path,
        query=query,
        content_type=headers.get("content-type"),
        endpoint=names.endpoints.match(http.method, path),
        org_header=headers.get(names.org) if names.org else None,
        model_header=headers.get(names.model),
        provider_header=headers.get(names.provider) if names.provider else None,
        require_header=headers.get(REQUIRE_HEADER),
        body=body,
        body_truncated=_truncated(body, http.size, headers, names.max_request_bytes),
        content_encoding=headers.get("content-encoding"),
        owned_headers=tuple(k for k in headers if k.startswith(OWNED_PREFIX)),
        client_address=request.attributes.source.address.socket_address.address,
        user_agent=headers.get("user-agent", ""),
    )


def _credentials(headers: Mapping[str, str], query: str, sources: tuple[str, ...]) -> list[str]:
    """Every distinct credential the request carries, in the configured order."""
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
            values = [(_bearer(value) or "") if source == "authorization" else value.strip()]
        found.extend(v for v in values if v and v not in found)
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


def api_key_hash(key: str) -> str:
    """The Redis lookup key for an API key: sha256 hex. The key itself is never stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_id(key_hash: str) -> str:
    """A short, non-reversible id safe for events and logs."""
    return key_hash[:12]
