"""authz serve: the ext_authz service, in one process or a supervisor of several."""

from __future__ import annotations

import argparse
import os

from authz.cli.common import USAGE, CommandError, settings
from authz.config import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="run the ext_authz service (reads the settings; Redis)")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=os.environ.get("AUTHZ_WORKERS", "1"),  # parsed (and refused) like the flag
        help="worker processes sharing the ports (AUTHZ_WORKERS; default 1)",
    )
    serve.set_defaults(handler=serve_command)


def _workers(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of processes, 1 or more (--workers, AUTHZ_WORKERS)")
    return int(text)


def serve_command(args: argparse.Namespace) -> int:
    """The ports are claimed first (authz.server.ports): a port another process holds stops it
    here, with its name, before any worker starts."""
    from authz.server import components, ports  # the service's modules: only when serving

    s = settings(args)
    try:
        components.check(s)
    except ConfigError as exc:  # the endpoints file
        raise CommandError(f"bad configuration: {exc}", USAGE) from None
    try:
        claims = ports.claim(s.listens())
    except ports.PortInUse as exc:
        raise CommandError(str(exc)) from None
    s = s.bound_to(claims.addresses)
    if s.ports_file:
        claims.write(s.ports_file)
    try:
        if args.workers == 1:
            from authz.server.app import run_worker

            run_worker(s)  # configures its own logging, as each supervised worker does
            return 0
        from authz.logs import configure_logging
        from authz.server.supervisor import supervise

        configure_logging(s.log_level)
        return supervise(s, args.workers)
    finally:
        claims.release()
