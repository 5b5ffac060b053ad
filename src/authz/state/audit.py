"""The audit trail: a hash chain of every change to what is enforced.

Each AuditEvent carries `seq` (1, 2, 3, ...) and the sha256 of the previous event; the
stream entry stores the event's canonical JSON and its own sha256, and a head key records the
last (seq, hash). `verify` walks the stream and names the first event that was modified,
deleted or reordered, including deletions at the end (the head is ahead of the stream).

This detects tampering by anyone who cannot rewrite the stream *and* the head consistently;
anchor the head elsewhere (e.g. export it periodically) to detect a full rewrite too.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from authz.v1 import events_pb2


def new_event(
    *,
    seq: int,
    prev_hash: str,
    actor: str,
    action: str,
    org_id: str = "",
    target: str = "",
    before: str = "",
    after: str = "",
) -> events_pb2.AuditEvent:
    event = events_pb2.AuditEvent(
        event_id=uuid.uuid4().hex,
        seq=seq,
        prev_hash=prev_hash,
        actor=actor,
        action=action,
        org_id=org_id,
        target=target,
        before=before,
        after=after,
    )
    event.time.FromNanoseconds(time.time_ns())
    return event


def canonical(event: events_pb2.AuditEvent) -> str:
    """The exact text that is hashed and stored: sorted keys, no whitespace."""
    return json.dumps(
        json_format.MessageToDict(event, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        sort_keys=True,
        separators=(",", ":"),
    )


def digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # "modified" | "deleted" | "reordered"
    seq: int  # the sequence number concerned
    entry_id: str  # stream entry id where it was noticed ("" at the end of the stream)
    detail: str


@dataclass(frozen=True, slots=True)
class Verification:
    events: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(entries: list[tuple[str, str, str]], head: tuple[int, str] | None) -> Verification:
    """Check (entry_id, event JSON, stored hash) triples in stream order against the head."""
    parsed: list[tuple[str, str, str, int, Any]] = []  # entry id, text, stored hash, seq, prev_hash
    for entry_id, text, stored_hash in entries:
        try:
            data = json.loads(text)
            seq = int(data.get("seq", 0))
        except (ValueError, TypeError, AttributeError):
            return Verification(len(parsed), Problem("modified", 0, entry_id, "event is not valid JSON"))
        parsed.append((entry_id, text, stored_hash, seq, data.get("prev_hash", "")))
    seqs = [p[3] for p in parsed]
    expected_seq, prev_hash = 1, ""
    for i, (entry_id, text, stored_hash, seq, claimed_prev) in enumerate(parsed):
        if seq != expected_seq:
            if expected_seq in seqs[i + 1 :]:
                return Verification(
                    i, Problem("reordered", expected_seq, entry_id, f"event {expected_seq} appears after event {seq}")
                )
            return Verification(
                i, Problem("deleted", expected_seq, entry_id, f"event {expected_seq} is missing (next present: {seq})")
            )
        if digest(text) != stored_hash:
            return Verification(i, Problem("modified", seq, entry_id, "its content does not match its hash"))
        if claimed_prev != prev_hash:
            return Verification(
                i, Problem("modified", seq - 1, entry_id, f"event {seq} does not chain to event {seq - 1} as stored")
            )
        expected_seq, prev_hash = seq + 1, stored_hash
    last_seq = expected_seq - 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq > last_seq:
            return Verification(
                len(parsed),
                Problem("deleted", last_seq + 1, "", f"events {last_seq + 1}..{head_seq} are missing at the end"),
            )
        if head_seq == last_seq and head_hash != prev_hash:
            return Verification(
                len(parsed), Problem("modified", last_seq, "", "the last event does not match the recorded head")
            )
    return Verification(len(parsed), None)
