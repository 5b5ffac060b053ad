"""A security event's stored JSON: the same data whatever a client put in its fields."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from authz.events.records import record


@given(st.text())
@example("\ud800")  # a lone surrogate: st.text() never draws one
def test_property_every_event_round_trips_through_its_stored_json(text):
    """msgspec encodes it; a lone surrogate (which UTF-8 cannot carry) falls back to json.dumps,
    never an exception on the Check path."""
    event = {"event_id": "e1", "org_id": "acme", "model": text, "user_agent": text + "\n", "enforced": True}
    assert json.loads(record(event)["event"]) == event
