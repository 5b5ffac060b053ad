"""CheckRequest -> the facts a decision needs. Pure, no I/O.

Envoy lower-cases header names and joins repeated headers with ',', so a smuggled second
model header reads as one unknown model and fails closed. The body is read only when an
enabled policy needs the model, and only its top-level "model" matters; anything that makes
the model uncertain (not JSON, compressed, truncated, two "model" keys, header and body
disagreeing) is a named reason, never a guess.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from envoy.service.auth.v3 import external_auth_pb2

from authz.reasons import Reason

OWNED_PREFIX = "x-compliance-"
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
    max_request_bytes: int = 1_048_576


@dataclass(frozen=True, slots=True)
class RequestFacts:
    request_id: str
    api_key: str | None  # the bearer credential; only ever hashed, never logged
    org_header: str | None
    model_header: str | None
    provider_header: str | None
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
    return RequestFacts(
        request_id=headers.get("x-request-id", "") or http.id,
        api_key=_bearer(headers.get("authorization")),
        org_header=headers.get(names.org) if names.org else None,
        model_header=headers.get(names.model),
        provider_header=headers.get(names.provider) if names.provider else None,
        body=body,
        body_truncated=_truncated(body, http.size, headers, names.max_request_bytes),
        content_encoding=headers.get("content-encoding"),
        owned_headers=tuple(k for k in headers if k.startswith(OWNED_PREFIX)),
        client_address=request.attributes.source.address.socket_address.address,
        user_agent=headers.get("user-agent", ""),
    )


def _truncated(body: bytes, size: int, headers, limit: int) -> bool:
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


def model_of(facts: RequestFacts) -> str | Reason:
    """The requested model, or the reason it cannot be known for sure."""
    if facts.body_truncated:
        return Reason.BODY_TRUNCATED
    body_model: str | None = None
    if facts.body:
        if facts.content_encoding and facts.content_encoding.lower() != "identity":
            return Reason.BODY_ENCODED
        found = model_in_body(facts.body)
        if isinstance(found, Reason):
            return found
        body_model = found
    header_model = facts.model_header
    if header_model is not None and body_model is not None and header_model != body_model:
        return Reason.MODEL_MISMATCH
    model = header_model if header_model is not None else body_model
    if model is None:
        return Reason.MODEL_MISSING
    if not model:
        return Reason.MODEL_INVALID
    return model


# Every JSON object decodes to a list of (key, value) pairs: duplicate keys survive to be
# counted, and a builtin hook keeps the C decoder's speed.
_PAIRS_DECODER = json.JSONDecoder(object_pairs_hook=list)
_JSON_WHITESPACE = b" \t\n\r"


def model_in_body(body: bytes) -> str | None | Reason:
    """The top-level "model" of a JSON object body; None when it has none."""
    if body.lstrip(_JSON_WHITESPACE)[:1] != b"{":
        return Reason.BODY_NOT_JSON  # arrays and scalars decode to lists too: refuse them here
    try:
        pairs = _PAIRS_DECODER.decode(body.decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return Reason.BODY_NOT_JSON
    models = [value for key, value in pairs if key == "model"]
    if len(models) > 1:
        return Reason.DUPLICATE_MODEL
    if not models:
        return None
    if not isinstance(models[0], str):
        return Reason.MODEL_INVALID
    return models[0]
