"""A security event: what one block (or dry-run would-block) records, built from its verdict.

Pure: building an event touches no I/O. The event writer (authz.events.writer) takes it off the
Check path; sinks store it. Events carry ids and metadata only: never the body, the prompt or a
credential, and every client-controlled field is clipped.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from authz.check.request import RequestFacts
from authz.check.verdict import Verdict
from authz.clip import ADDRESS, MODEL, ORG, PROVIDER, REQUEST_ID, USER_AGENT, clip
from authz.policy.rules import UNKNOWN
from authz.reasons import OUTCOMES

# Providers named in one event: a model has a handful; the catalog bounds it anyway.
_MAX_PROVIDERS = 64

Event = dict[str, Any]  # the JSON form of authz.v1.SecurityEvent


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
