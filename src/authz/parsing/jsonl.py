"""Batch inputs: OpenAI's JSONL batch file and Anthropic's requests[] array.

Every request of a batch is sent to a provider later, without passing Envoy again, so each
one is judged now. A request is named by its custom_id, so a deny says which line to fix.
"""

from __future__ import annotations

from authz.parsing.jsonbody import AMBIGUOUS, MISSING, is_object, lookup, model_at, object_pairs
from authz.reasons import Reason

MAX_ITEMS = 100_000  # more requests than any provider accepts in one batch


def _custom_id(pairs: list, fallback: str) -> str:
    value = lookup(pairs, "custom_id")
    return value if isinstance(value, str) else fallback


def file_models(data: bytes) -> list[tuple[str, str]] | tuple[Reason, str]:
    """(model, custom_id) per line of a JSONL batch file: each line's body.model."""
    found = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(found) >= MAX_ITEMS:
            return Reason.BODY_MALFORMED, f"line {number}"
        pairs = object_pairs(line)
        if isinstance(pairs, Reason):
            return pairs, f"line {number}"
        name = _custom_id(pairs, f"line {number}")
        model = model_at(pairs, "body.model")
        if isinstance(model, Reason):
            return model, name
        if model is None:
            return Reason.MODEL_MISSING, name
        found.append((model, name))
    if not found:
        return Reason.MODEL_MISSING, ""
    return found


def request_models(pairs: list) -> list[tuple[str, str]] | tuple[Reason, str]:
    """(model, custom_id) per entry of a JSON body's requests[]: each params.model."""
    requests = lookup(pairs, "requests")
    if requests is AMBIGUOUS:
        return Reason.DUPLICATE_MODEL, ""
    if requests is MISSING or not isinstance(requests, list) or is_object(requests) and requests:
        return Reason.MODEL_MISSING, ""
    found = []
    for index, item in enumerate(requests[:MAX_ITEMS + 1]):
        if index == MAX_ITEMS:
            return Reason.BODY_MALFORMED, f"requests[{index}]"
        if not is_object(item):
            return Reason.BODY_MALFORMED, f"requests[{index}]"
        name = _custom_id(item, f"requests[{index}]")
        model = model_at(item, "params.model")
        if isinstance(model, Reason):
            return model, name
        if model is None:
            return Reason.MODEL_MISSING, name
        found.append((model, name))
    if not found:
        return Reason.MODEL_MISSING, ""
    return found
