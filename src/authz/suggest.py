"""The "did you mean" hint every error about an unknown name ends with."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str], n: int = 3, cutoff: float = 0.6, otherwise: str = "") -> str:
    """'; did you mean 'a' or 'b'?' for the known names closest to `word`, else `otherwise`."""
    near = difflib.get_close_matches(word, sorted(known), n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(repr(name) for name in near)}?" if near else otherwise
