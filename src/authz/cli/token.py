"""authz token issue: an HS256 admin API token signed with the configured secret."""

from __future__ import annotations

import argparse

from authz.admin.tokens import issue
from authz.cli.common import USAGE, CommandError, noun, settings
from authz.config import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = noun(sub.add_parser("token", help="admin API tokens (reads the settings)"))
    token = group.add_parser("issue", help="print an HS256 admin token (needs admin_jwt_hs256_secret)")
    token.add_argument("org")
    token.add_argument("--role", default="owner", choices=["owner", "admin", "member"])
    token.add_argument("--subject", required=True, help="who the token identifies (recorded as the actor)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds")
    token.set_defaults(handler=issue_command)


def issue_command(args: argparse.Namespace) -> int:
    s = settings(args)
    if not s.admin_jwt_hs256_secret:
        raise CommandError("token issue needs admin_jwt_hs256_secret in the configuration", USAGE)
    print(signed(s, args.org, subject=args.subject, role=args.role, ttl_s=args.ttl))
    return 0


def signed(s: Settings, org_id: str, *, subject: str, role: str, ttl_s: int) -> str:
    """An admin token signed with the settings' HS256 secret, issuer and audience."""
    return issue(
        s.admin_jwt_hs256_secret,
        subject=subject,
        org_id=org_id,
        role=role,
        ttl_s=ttl_s,
        issuer=s.admin_jwt_issuer,
        audience=s.admin_jwt_audience,
    )
