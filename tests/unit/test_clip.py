"""clip: client text bounded, with a marker saying how much was cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from authz import clip as clip_mod
from authz.clip import clip


def test_short_text_is_unchanged_and_the_limit_is_inclusive():
    assert clip("", 3) == ""
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "abc…[cut 1 chars]"


def test_limits_per_field_kind():
    assert (
        clip_mod.MODEL,
        clip_mod.PROVIDER,
        clip_mod.USER_AGENT,
        clip_mod.REQUEST_ID,
        clip_mod.ADDRESS,
        clip_mod.ORG,
    ) == (256, 128, 512, 128, 64, 128)


@given(st.text(max_size=300), st.integers(1, 100))
def test_clipped_text_keeps_its_prefix_and_says_how_much_was_cut(text, limit):
    out = clip(text, limit)
    if len(text) <= limit:
        assert out == text
    else:
        assert out == text[:limit] + f"…[cut {len(text) - limit} chars]"
