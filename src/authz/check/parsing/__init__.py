"""Where the request names its model (authz.check.parsing.requested has the dispatch; each
body kind has its own module: jsonbody, multipart, jsonl; fallbacks reads a body's fallback
list). What the rest of the Check uses, by name:"""

from authz.check.parsing.requested import Destination, Named, Refusal, Requested, requested

__all__ = ["Destination", "Named", "Refusal", "Requested", "requested"]
