"""A security event: what one block (or dry-run would-block) records, built from its verdict.

Pure: building an event touches no I/O. A Check keeps only what the event needs (a Blocked: the
verdict, ids, a few request fields and the time); the event writer (authz.events.writer) builds
the event from it off the Check path, in batches, and sinks store it. Events carry ids and
metadata only: never the body, the prompt or a credential, and every client-controlled field is
clipped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
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


# Not frozen, for the cost of a frozen __init__ on every blocked Check (as Verdict); never changed.
@dataclass(slots=True)
class Blocked:
    """A block as the Check saw it, made into its event later by the writer (`event()`). It
    holds the request's few recorded fields, never the facts: the body stays out of the queue."""

    verdict: Verdict
    decision_id: str
    api_key_id: str
    request_id: str
    client_address: str
    user_agent: str
    method: str
    path: str
    when: float  # unix seconds, the Check's

    def event(self) -> Event:
        """The event as the JSON form of authz.v1.SecurityEvent (built directly: json_format's
        MessageToDict would cost more than the rest of a blocked Check). Every client-controlled
        field is clipped, so one request can never write more than a few KB anywhere."""
        verdict = self.verdict
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
            "time": datetime.fromtimestamp(self.when, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "org_id": clip(verdict.org_id, ORG),
            "api_key_id": self.api_key_id,
            "request_id": clip(self.request_id, REQUEST_ID),
            "decision_id": self.decision_id,
            "model": clip(verdict.model, MODEL),
            "routing": verdict.routing,
            "reason": verdict.reason.value,
            "providers": providers,
            "policy_version": verdict.policy_version,
            "enforced": verdict.enforced,
            "client_address": clip(self.client_address, ADDRESS),
            "user_agent": clip(self.user_agent, USER_AGENT),
            "http_status": OUTCOMES[verdict.reason].http_status if verdict.enforced else 200,
            "failed_requirements": verdict.failed_requirements,
            "method": clip(self.method, PROVIDER),
            "path": clip(self.path, MODEL),
            "custom_id": clip(verdict.item, MODEL),
            "client_requirements": list(verdict.client_requirements),
            "checkpoint": verdict.checkpoint or "ingress",
        }


def blocked(verdict: Verdict, facts: RequestFacts, decision_id: str, api_key_id: str) -> Blocked:
    """What a blocked Check keeps for its event: no more than a tuple's cost on the Check path."""
    return Blocked(
        verdict,
        decision_id,
        api_key_id,
        facts.request_id,
        facts.client_address,
        facts.user_agent,
        facts.method,
        facts.path,
        time.time(),
    )


def security_event(verdict: Verdict, facts: RequestFacts, decision_id: str, api_key_id: str) -> Event:
    """The event of a block, built now."""
    return blocked(verdict, facts, decision_id, api_key_id).event()
