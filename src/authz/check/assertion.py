"""Org assertions: the ingress check tells the egress check which org a request is for.

The gateway between them forwards the header, but neither it nor a client can forge one: the
assertion is an HMAC-SHA256 over the org, an expiry and a random nonce, with a key only the
two checks hold (setting `org_assertion_key`). A client cannot obtain one either: the ingress
check overwrites any `x-compliance-*` header a client sends, and the assertion travels only
towards the gateway. An expired assertion is refused, so one captured from an old request
cannot be replayed later. Pure, no I/O.

    v1.<org>.<expiry, unix seconds>.<nonce, 16 hex>.<signature, base64url>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from authz.ids import ORG_ID

HEADER = "x-compliance-org-assertion"
_VERSION = "v1"


def _signature(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(org_id: str, key: bytes, now: float, ttl_s: int, nonce: str | None = None) -> str:
    payload = f"{_VERSION}.{org_id}.{int(now) + ttl_s}.{nonce or os.urandom(8).hex()}"
    return f"{payload}.{_signature(key, payload)}"


def verify(token: str, key: bytes, now: float) -> str | None:
    """The org the assertion names, or None when it is malformed, forged or expired."""
    found = verified(token, key, now)
    return found[0] if found is not None else None


def verified(token: str, key: bytes, now: float) -> tuple[str, int] | None:
    """(the org, the expiry in unix seconds) of a valid assertion, or None."""
    if len(token) > 512 or not token.isascii():  # compare_digest raises on non-ASCII text
        return None
    payload, _, signature = token.rpartition(".")
    version, _, rest = payload.partition(".")
    head, _, nonce = rest.rpartition(".")  # the org id may hold dots; expiry and nonce do not
    org_id, _, expiry = head.rpartition(".")
    if version != _VERSION or not ORG_ID.fullmatch(org_id) or not expiry.isdigit() or len(nonce) != 16:
        return None
    if not hmac.compare_digest(signature, _signature(key, payload)):
        return None
    return (org_id, int(expiry)) if int(expiry) > now else None
