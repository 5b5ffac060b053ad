"""The identifiers every layer shares: what an org id may be, and how an API key is named
without being stored. At the bottom of the import graph, so the Check, the state, the CLI and
the admin API read them from one place."""

from __future__ import annotations

import hashlib
import re

# One org id: what an org header or claim must be. A list ("a,b", or a header sent twice, which
# Envoy joins with ","), JSON, base64 of JSON (jwt_authn's claim_to_headers for an array or
# object) or padding could otherwise become an org of its own, one without a policy.
ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


def api_key_hash(key: str) -> str:
    """The Redis lookup key for an API key: sha256 hex. The key itself is never stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_id(key_hash: str) -> str:
    """A short, non-reversible id safe for events and logs."""
    return key_hash[:12]
