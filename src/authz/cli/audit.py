"""authz audit: the hash-chained audit trail of every change (Redis)."""

from __future__ import annotations

import argparse

from authz.cli.common import noun, with_store
from authz.state import audit
from authz.state.store import Store

TAMPERED = 3  # exit code: the chain does not verify


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = noun(sub.add_parser("audit", help="the audit trail (Redis)"))
    group.add_parser("list", help="print every audit event as JSON lines").set_defaults(handler=list_command)
    group.add_parser(
        "verify", help="check the hash chain; names the first modified, deleted or reordered event"
    ).set_defaults(handler=verify_command)


def list_command(args: argparse.Namespace) -> int:
    async def listing(store: Store) -> int:
        for _, text, _ in await store.audit_entries():
            print(text)
        return 0

    return with_store(args, listing)


def verify_command(args: argparse.Namespace) -> int:
    async def verify(store: Store) -> int:
        result = audit.verify(await store.audit_entries(), await store.audit_head())
        p = result.problem
        if p is None:
            print(f"ok: {result.events} audit events, hash chain intact")
            return 0
        where = f" (stream entry {p.entry_id})" if p.entry_id else ""
        print(f"TAMPERED: event {p.seq} {p.kind}{where}: {p.detail}")
        return TAMPERED

    return with_store(args, verify)
