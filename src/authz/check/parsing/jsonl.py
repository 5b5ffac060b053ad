"""Batch inputs: OpenAI's JSONL batch file and Anthropic's requests[] array.

Every request of a batch is sent to a provider later, without passing Envoy again, so each
one is judged now. A request is named by its custom_id, so a deny says which line to fix.
"""

from __future__ import annotations

from collections.abc import Iterator

from authz.check.parsing.jsonbody import AMBIGUOUS, MISSING, Pairs, is_object, lookup, model_at, object_pairs
from authz.reasons import Reason

Entry = tuple[str | Reason, str]  # one batch entry's model (or why it has none) and custom_id
Models = list[tuple[str, str]]  # every entry's (model, custom_id)

MAX_ITEMS = 100_000  # more requests than any provider accepts in one batch


def _custom_id(pairs: Pairs, fallback: str) -> str:
    value = lookup(pairs, "custom_id")
    return value if isinstance(value, str) else fallback


def _entry(pairs: Pairs, dotted: str, where: str) -> Entry:
    """(model, custom_id) of one batch entry, or (reason, custom_id) when it names none."""
    name = _custom_id(pairs, where)
    model = model_at(pairs, dotted)
    if model is None:
        return Reason.MODEL_MISSING, name
    return model, name


def _all(entries: Iterator[Entry]) -> Models | tuple[Reason, str]:
    """Every entry's (model, custom_id), or the first failure; a batch of nothing names nothing."""
    found: Models = []
    for model, name in entries:
        if isinstance(model, Reason):
            return model, name
        found.append((model, name))
    return found or (Reason.MODEL_MISSING, "")


def file_models(data: bytes) -> Models | tuple[Reason, str]:
    """(model, custom_id) per line of a JSONL batch file: each line's body.model."""

    def entries() -> Iterator[Entry]:
        count = 0
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            count += 1
            if count > MAX_ITEMS:
                yield Reason.BODY_MALFORMED, f"line {number}"
                return
            pairs = object_pairs(line)
            yield (
                (pairs, f"line {number}")
                if isinstance(pairs, Reason)
                else _entry(pairs, "body.model", f"line {number}")
            )

    return _all(entries())


def request_models(pairs: Pairs) -> Models | tuple[Reason, str]:
    """(model, custom_id) per entry of a JSON body's requests[]: each params.model."""
    requests = lookup(pairs, "requests")
    if requests is AMBIGUOUS:
        return Reason.DUPLICATE_MODEL, ""
    if requests is MISSING or not isinstance(requests, list) or is_object(requests) and requests:
        return Reason.MODEL_MISSING, ""

    def entries() -> Iterator[Entry]:
        for index, item in enumerate(requests):
            where = f"requests[{index}]"
            if index == MAX_ITEMS or not is_object(item):
                yield Reason.BODY_MALFORMED, where
                return
            yield _entry(item, "params.model", where)

    return _all(entries())
