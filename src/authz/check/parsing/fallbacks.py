"""Fallback lists in a request body: every model a gateway may call after the one named.

LiteLLM's router reads them per request (docs/gateways.md), in three shapes; anything else is
refused, as the router could read it another way.
"""

from __future__ import annotations

from typing import Any

from authz.check.parsing.jsonbody import is_object


class FallbackError(ValueError):
    """A fallback field in a shape the gateway may read another way; the text names where."""


def fallback_models(field: str, value: Any) -> list[tuple[str, str]]:
    """Every model a fallback field names, with where it is ("fallbacks[0]"), in every shape
    LiteLLM reads: ["m"], [{"model": "m"}], [{"group": ["m", ...]}] (router.py's
    get_fallback_model_group; the group names only which request the list applies to, and
    "*" every request). Null and [] name none."""
    if value is None:
        return []
    if not isinstance(value, list) or is_object(value) and value:
        raise FallbackError(field)
    found: list[tuple[str, str]] = []
    for i, entry in enumerate(value):
        where = f"{field}[{i}]"
        if isinstance(entry, str) and entry:
            found.append((entry, where))
        elif is_object(entry) and len(entry) == 1 and isinstance(entry[0][1], str):
            key, model = entry[0]
            if key != "model" or not model:  # litellm.completion's dict form; other keys set params
                raise FallbackError(where)
            found.append((model, where))
        elif is_object(entry) and len(entry) == 1 and isinstance(entry[0][1], list):
            _, models = entry[0]
            for j, model in enumerate(models):
                if not isinstance(model, str) or not model:
                    raise FallbackError(f"{where}.{entry[0][0]}[{j}]")
                found.append((model, f"{where}.{entry[0][0]}[{j}]"))
        else:
            raise FallbackError(where)
    return found
