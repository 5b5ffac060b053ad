"""authz events: security events from the Redis stream, as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time
from datetime import UTC, datetime
from typing import Any

from authz.cli.common import count, noun, with_store
from authz.state.store import Store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = noun(sub.add_parser("events", help="security events (Redis)"))
    tail = group.add_parser("tail", help="print the latest security events as JSON lines")
    tail.add_argument("--count", type=count, default=20, help="how many past events to print first (0: none)")
    tail.add_argument("--org")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events until interrupted")
    tail.set_defaults(handler=tail_command)
    listing = group.add_parser("list", help="export security events as JSON lines, oldest first")
    listing.add_argument(
        "--since",
        type=since_moment,
        help="a duration back from now (30m, 24h, 7d), a date (2026-12-01, UTC) or an RFC 3339 time "
        "(2026-12-01T09:00:00Z; UTC if no offset)",
    )
    listing.add_argument("--org")
    listing.add_argument("--provider")
    listing.add_argument("--requirement", help="e.g. gdpr, no_prompt_training")
    listing.set_defaults(handler=list_command)


def list_command(args: argparse.Namespace) -> int:
    async def listing(store: Store) -> int:
        since = f"{int(args.since.timestamp() * 1000)}-0" if args.since else "-"
        async for _, fields in store.stream_entries(store.keys.security_events, since):
            event = json.loads(fields[b"event"])
            if _matches(event, args):
                print(json.dumps(event))
        return 0

    return with_store(args, listing)


def tail_command(args: argparse.Namespace) -> int:
    return with_store(args, lambda store: _tail(args, store))


async def _tail(args: argparse.Namespace, store: Store) -> int:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    stream = store.keys.security_events
    entries = await store.redis.xrevrange(stream, count=max(args.count, 1) * (10 if args.org else 1))
    shown = [json.loads(f[b"event"]) for _, f in reversed(entries)]
    matched = [e for e in shown if _matches(e, args)]
    for event in matched[-args.count :] if args.count else []:
        print(json.dumps(event), flush=True)
    last = entries[0][0] if entries else "0-0"
    interrupted = asyncio.Event()
    if args.follow:  # until Ctrl-C (or SIGTERM): a quiet stream is no reason to stop
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, interrupted.set)
    while args.follow and not interrupted.is_set():
        try:
            # Block for less than the client's socket timeout, so waiting is not an error.
            found = await store.redis.xread({stream: last}, block=1000)
        except RedisTimeoutError:
            continue
        for _, items in found or []:
            for entry_id, fields in items:
                last = entry_id
                event = json.loads(fields[b"event"])
                if _matches(event, args):
                    print(json.dumps(event), flush=True)
    return 0


_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def since_moment(text: str, now: float | None = None) -> datetime:
    """--since as people write it: a duration back from now, a date or an RFC 3339 time."""
    written = text.strip()
    found = _DURATION.fullmatch(written)
    if found:
        seconds = int(found.group(1)) * _SECONDS[found.group(2)]
        return datetime.fromtimestamp((time.time() if now is None else now) - seconds, UTC)
    try:
        moment = datetime.fromisoformat(written.replace("z", "Z"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is no duration, date or time: write e.g. 24h, 7d, 2026-12-01 or 2026-12-01T09:00:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _matches(event: dict[str, Any], args: argparse.Namespace) -> bool:
    if getattr(args, "org", None) and event.get("org_id") != args.org:
        return False
    providers = event.get("providers", [])
    if getattr(args, "provider", None) and not any(p.get("provider") == args.provider for p in providers):
        return False
    requirement = getattr(args, "requirement", None)
    return not requirement or any(requirement in p.get("failed_requirements", []) for p in providers)
