"""`audit.verify` alone: a chain built in memory, and every way of tampering with it, each
named with its kind and the sequence number concerned."""

from __future__ import annotations

import json

import pytest

from authz.state import audit


def chain(n: int = 6) -> tuple[list[tuple[str, str, str]], tuple[int, str]]:
    entries, prev = [], ""
    for seq in range(1, n + 1):
        text = audit.canonical(
            audit.new_event(
                seq=seq, prev_hash=prev, actor=f"actor-{seq}", action="policy.set", org_id="acme", target=f"v{seq}"
            )
        )
        prev = audit.digest(text)
        entries.append((f"{seq}-0", text, prev))
    return entries, (n, prev)


def forged(entry: tuple[str, str, str], rehash: bool) -> tuple[str, str, str]:
    entry_id, text, hashed = entry
    changed = text.replace('"actor":"actor-', '"actor":"mallory-')
    assert changed != text
    return entry_id, changed, audit.digest(changed) if rehash else hashed


def test_an_intact_chain_verifies():
    entries, head = chain()
    result = audit.verify(entries, head)
    assert result.ok and result.events == 6 and result.problem is None
    assert audit.verify([], None).ok
    assert audit.verify(entries, None).ok  # no head recorded: nothing to compare the end with


def tampered(how: str):
    entries, head = chain()
    if how == "edit":
        entries[2] = forged(entries[2], rehash=False)
    elif how == "edit-and-rehash":
        entries[2] = forged(entries[2], rehash=True)
    elif how == "edit-and-rehash-last":
        entries[-1] = forged(entries[-1], rehash=True)
    elif how == "delete":
        del entries[2]
    elif how == "delete-first":
        del entries[0]
    elif how == "delete-last":
        del entries[-1]
    elif how == "delete-last-two":
        del entries[-2:]
    elif how == "reorder":
        entries[2], entries[3] = entries[3], entries[2]
    elif how == "not-json":
        entries[1] = (entries[1][0], "{not json", entries[1][2])
    return audit.verify(entries, head)


@pytest.mark.parametrize(
    ("how", "kind", "seq", "entry", "events", "detail"),
    [
        ("edit", "modified", 3, "3-0", 2, "its content does not match its hash"),
        ("edit-and-rehash", "modified", 3, "4-0", 3, "event 4 does not chain to event 3 as stored"),
        ("edit-and-rehash-last", "modified", 6, "", 6, "the last event does not match the recorded head"),
        ("delete", "deleted", 3, "4-0", 2, "event 3 is missing (next present: 4)"),
        ("delete-first", "deleted", 1, "2-0", 0, "event 1 is missing (next present: 2)"),
        ("delete-last", "deleted", 6, "", 5, "events 6..6 are missing at the end"),
        ("delete-last-two", "deleted", 5, "", 4, "events 5..6 are missing at the end"),
        ("reorder", "reordered", 3, "4-0", 2, "event 3 appears after event 4"),
        ("not-json", "modified", 0, "2-0", 1, "event is not valid JSON"),
    ],
)
def test_tampering_is_named(how, kind, seq, entry, events, detail):
    result = tampered(how)
    assert not result.ok
    assert result.problem == audit.Problem(kind, seq, entry, detail)
    assert result.events == events


def test_an_event_without_a_sequence_number_reads_as_number_zero():
    entries, head = chain(2)
    entries.insert(1, ("1-5", '{"action":"policy.set"}', audit.digest('{"action":"policy.set"}')))
    result = audit.verify(entries, head)
    assert result.problem == audit.Problem("reordered", 2, "1-5", "event 2 appears after event 0")


def test_events_carry_every_field_and_hash_canonically():
    event = audit.new_event(
        seq=7,
        prev_hash="ab",
        actor="alice",
        action="policy.set",
        org_id="acme",
        target="v2",
        before="{}",
        after='{"x":1}',
    )
    assert (
        event.seq,
        event.prev_hash,
        event.actor,
        event.action,
        event.org_id,
        event.target,
        event.before,
        event.after,
    ) == (7, "ab", "alice", "policy.set", "acme", "v2", "{}", '{"x":1}')
    assert len(event.event_id) == 32 and event.time.seconds > 0
    bare = audit.new_event(seq=1, prev_hash="", actor="a", action="catalog.load")
    assert (bare.org_id, bare.target, bare.before, bare.after) == ("", "", "", "")
    text = audit.canonical(bare)
    data = json.loads(text)
    # Every field is present (defaults included), keys sorted, no whitespace: the hash is stable.
    assert list(data) == sorted(data) and {"org_id", "target", "before", "after", "prev_hash", "seq"} <= set(data)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_problem_points_at_the_stream_entry():
    result = tampered("edit")
    assert result.problem.entry_id == "3-0"
    assert tampered("delete-last").problem.entry_id == ""


def test_digest_is_sha256_of_the_text():
    assert (
        audit.digest("abc")
        == audit.digest(b"abc")
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_a_first_event_without_prev_hash_chains_from_nothing():
    text = '{"action":"catalog.load","seq":1}'
    assert audit.verify([("1-0", text, audit.digest(text))], (1, audit.digest(text))).ok
