"""Security event records: what the writer sends to sinks and spools for one event.

The event itself is built from the Check's block (authz.check.security_event), pure and clipped,
when the event writer (events.writer) takes it off the Check path; sinks (events.sinks) store it.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import msgspec

from authz.policy.rules import NO_BLOCK_ALERTS, BlockAlerts

_ENCODE = msgspec.json.Encoder().encode


def _json(event: Event) -> str:
    """msgspec encodes in an eighth of json.dumps's time (a blocked Check's largest single
    cost); a lone surrogate a client slipped into a field (UTF-8 cannot carry it) is escaped by
    json.dumps instead, as before."""
    try:
        return _ENCODE(event).decode()
    except UnicodeEncodeError:
        return json.dumps(event)


Event = dict[str, Any]  # the JSON form of authz.v1.SecurityEvent
Record = dict[str, Any]  # what the writer sends to sinks and spools (see record())


class Deferred(Protocol):
    """An event the writer builds when it takes it (a Check's block: check.security_event.Blocked)."""

    decision_id: str

    def event(self) -> Event: ...


def record(event: Event, alerts: BlockAlerts = NO_BLOCK_ALERTS) -> Record:
    """What the writer sends (and spools) for an event: the event as stored, when it was made
    (sinks deduplicate replays by id within a window of it) and the org's block-alert settings
    as they were when it was blocked (alerts.BlockCounter reads them)."""
    return {
        "event_id": event["event_id"],
        "org_id": event["org_id"],
        "event": _json(event),
        "created_s": int(time.time()),
        "alert_threshold": alerts.threshold,
        "alert_window_s": alerts.window_s,
        "alert_webhook": alerts.webhook,
    }
