"""`authz` command line: run the service and manage what it enforces.

    authz serve [--workers N]                                  settings, Redis
    authz catalog check FILE | show P --file FILE              local
    authz catalog load FILE | diff FILE | show P | import ...  Redis
    authz org list | show ORG | set-plan ORG PLAN              Redis
    authz apikey add ORG [--key KEY] | list [--org ORG] | revoke KEY_ID     Redis
    authz events tail [--org ORG] [--count N] [--follow] | list [--since TIME] ...  Redis
    authz bootstrap [--catalog F] [--policies F] [--plan ORG=PLAN] [--api-keys F]  Redis
    authz audit list | verify                                  Redis
    authz policy apply FILE | diff FILE | history ORG          Redis (policies as code)
    authz policy get ORG | preview ORG FILE | set ORG FILE | enable | disable   admin API
    authz token issue ORG --role owner --subject alice@example.com            settings

One context: every command reads the same settings (--config or AUTHZ_CONFIG, AUTHZ_*
variables) for Redis and for the admin API (http_listen); with admin_jwt_hs256_secret there, the
policy verbs sign their own short token. AUTHZ_API and AUTHZ_TOKEN (--api, --token) override.
"""

from __future__ import annotations

import argparse
import os
import sys

from authz import __version__
from authz.cli import audit, bootstrap, catalog, events, orgs, policy, serve, token
from authz.cli.common import CommandError, os_user

GROUPS = (serve, catalog, orgs, policy, token, events, bootstrap, audit)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="authz", description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    top.epilog = "\n".join(__doc__.splitlines()[2:])
    top.add_argument("--version", action="version", version=f"authz {__version__}")
    top.add_argument("--config", default=os.environ.get("AUTHZ_CONFIG"), help="TOML settings file")
    top.add_argument(
        "--actor", default=os_user(), help="who makes a change, for the audit trail (default: cli:<OS user>)"
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except CommandError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:  # Ctrl-C, e.g. ending `events tail --follow`: not an error to report
        return 130
    except BrokenPipeError:  # `authz audit list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except OSError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
