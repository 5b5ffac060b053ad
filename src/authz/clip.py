"""Bounding client-controlled text before it is stored, logged, alerted or echoed.

A model name, a user agent or a request id is whatever the client sent: unbounded, it turns one
request into megabytes of Redis, log and deny body. Every place that writes such text keeps at
most a fixed number of characters, and says that it cut.
"""

from __future__ import annotations

# Limits per kind of field, in characters. Real values are far shorter (model ids < 100,
# user agents < 300); the limits only stop abuse.
MODEL = 256
PROVIDER = 128
USER_AGENT = 512
REQUEST_ID = 128
ADDRESS = 64
ORG = 128


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its first `limit` and a marker of the cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[cut {len(text) - limit} chars]"
