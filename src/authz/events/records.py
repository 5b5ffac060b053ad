"""Security events: what one block (or dry-run would-block) records, built from a verdict.

Pure: building an event touches no I/O. The event writer (events.writer) takes it off the
Check path; sinks (events.sinks) store it. Events carry ids and metadata only: never the
body, the prompt or a credential, and every client-controlled field is clipped.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from authz.check.decision import Verdict
from authz.check.request import RequestFacts
from authz.clip import ADDRESS, MODEL, ORG, PROVIDER, REQUEST_ID, USER_AGENT, clip
from authz.policy.rules import NO_BLOCK_ALERTS, UNKNOWN, BlockAlerts
from authz.reasons import OUTCOMES

# Providers named in one event: a model has a handful; the catalog bounds it anyway.
_MAX_PROVIDERS = 64

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


def security_event(verdict: Verdict, facts: RequestFacts, decision_id: str, api_key_id: str) -> Event:
    """The event as the JSON form of authz.v1.SecurityEvent (built directly: json_format's
    MessageToDict would cost more than the rest of a blocked Check). Every client-controlled
    field is clipped, so one request can never write more than a few KB anywhere."""
    providers = [
        {
            "provider": clip(p, PROVIDER),
            "failed_requirements": [u.requirement for u in unmet],
            "unknown": [u.requirement for u in unmet if u.cause == UNKNOWN],
        }
        for p, unmet in verdict.blocked[:_MAX_PROVIDERS]
    ]
    if verdict.provider and not verdict.blocked:
        providers.append({"provider": clip(verdict.provider, PROVIDER), "failed_requirements": [], "unknown": []})
    return {
        "event_id": os.urandom(16).hex(),  # 128 random bits, as uuid4's hex without building a UUID
        "time": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "org_id": clip(verdict.org_id, ORG),
        "api_key_id": api_key_id,
        "request_id": clip(facts.request_id, REQUEST_ID),
        "decision_id": decision_id,
        "model": clip(verdict.model, MODEL),
        "routing": verdict.routing,
        "reason": verdict.reason.value,
        "providers": providers,
        "policy_version": verdict.policy_version,
        "enforced": verdict.enforced,
        "client_address": clip(facts.client_address, ADDRESS),
        "user_agent": clip(facts.user_agent, USER_AGENT),
        "http_status": OUTCOMES[verdict.reason].http_status if verdict.enforced else 200,
        "failed_requirements": verdict.failed_requirements,
        "method": clip(facts.method, PROVIDER),
        "path": clip(facts.path, MODEL),
        "custom_id": clip(verdict.item, MODEL),
        "client_requirements": list(verdict.client_requirements),
        "checkpoint": verdict.checkpoint or "ingress",
    }


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
