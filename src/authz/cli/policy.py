"""authz policy: an org's compliance policy.

get, preview, set, enable and disable go through the admin HTTP API (the same checks, audit and
permissions as the settings page). apply, diff and history are the platform team's policies as
code (authz.admin.declared): they read the settings and talk to Redis, as bootstrap does."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from authz.cli.common import USAGE, CommandError, noun, require_known_org, settings, with_store
from authz.cli.declared import apply_command, diff_command, history_command
from authz.cli.token import signed
from authz.state.store import Store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("policy", help="an org's compliance policy (admin API: --api, --token)")
    parser.add_argument(
        "--api",
        default=os.environ.get("AUTHZ_API"),
        help="admin API base URL (AUTHZ_API; default: http_listen of the settings, on loopback)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("AUTHZ_TOKEN"),
        help="admin JWT (AUTHZ_TOKEN; default: a 5-minute owner token signed with the settings' admin secret)",
    )
    group = noun(parser)
    get = group.add_parser("get", help="print the stored policy as JSON")
    get.add_argument("org")
    preview = group.add_parser("preview", help="which providers FILE (CompliancePolicy JSON) allows and blocks")
    preview.add_argument("org")
    preview.add_argument("file", help="path, or - for standard input")
    put = group.add_parser("set", help="store FILE (CompliancePolicy JSON) as the org's next policy version")
    put.add_argument("org")
    put.add_argument("file", help="path, or - for standard input")
    put.add_argument("--expected-version", type=int, help="fail if the stored version is not this one")
    put.add_argument("--force", action="store_true", help="save list entries the catalog does not know")
    for toggle in ("enable", "disable"):
        t = group.add_parser(toggle, help=f"{toggle} the stored policy, keeping its requirements")
        t.add_argument("org")
        t.add_argument("--expected-version", type=int, help="fail if the stored version is not this one")
    for action in group.choices.values():
        action.set_defaults(handler=policy_command)
    apply = group.add_parser("apply", help="make Redis hold what FILE (YAML/JSON, orgs: ...) declares (Redis)")
    apply.add_argument("file", help="path, or - for standard input")
    apply.set_defaults(handler=apply_command)
    diff = group.add_parser("diff", help="what `policy apply FILE` would change, changing nothing (exit 1: changes)")
    diff.add_argument("file", help="path, or - for standard input")
    diff.set_defaults(handler=diff_command)
    history = group.add_parser("history", help="an org's policy versions from the audit trail (settings, Redis)")
    history.add_argument("org")
    history.set_defaults(handler=history_command)


def policy_command(args: argparse.Namespace) -> int:
    method, path, body = _request(args)
    api, token = _context(args)
    if args.action in ("get", "preview", "enable", "disable") and not args.token:
        # The operator's own context (the settings sign the token, so they name Redis too): an
        # org Redis holds nothing of, which the admin API answers with an empty default, is
        # refused here by name. With a token of its own a caller may have no Redis to ask.
        with_store(args, lambda store: _known(store, args.org), access="any")
    if method != "GET" and args.action != "preview":
        print(f"authz: writing through the admin API at {api}", file=sys.stderr)
    result = _call(api, token, method, path, body)
    if args.action == "preview":
        for p in result.get("providers", []):
            unmet = ", ".join(f"{u['label']} ({u['cause'].replace('_', ' ')})" for u in p.get("unmet", []))
            print(f"{'ALLOW' if p.get('allowed') else 'BLOCK'}  {p['provider']:<16} {unmet}")
        orphans = result.get("models_without_compliant_provider", [])
        names = result.get("gateway_names", [])
        if names:  # an imported gateway config: what each of its names does, as the gateway routes it
            print("the gateway's model names, as it routes them (fallbacks included):")
            for line in gateway_name_lines(names):
                print(f"  {line}")
        else:
            print(f"models with no compliant provider: {', '.join(orphans) if orphans else 'none'}")
        for line in result.get("advice", []):
            print(f"note: {line}")
    else:
        print(json.dumps(result, indent=2))
        for line in result.get("advice", []):  # also in the JSON; said where a person reads it
            print(f"authz: note: {line}", file=sys.stderr)
    return 0


async def _known(store: Store, org_id: str) -> int:
    await require_known_org(store, org_id)
    return 0


def gateway_name_lines(names: list[dict[str, Any]]) -> list[str]:
    """PreviewPolicyResponse.gateway_names (as JSON), a line each."""
    from authz.policy import gateway_names

    return [
        gateway_names.NameVerdict(
            name=n["name"],
            wildcard=bool(n.get("wildcard")),
            reason=n.get("reason", ""),
            blocked=tuple(
                gateway_names.Candidate(
                    b["provider"], tuple(b.get("failed_requirements", ())), b.get("reached_through", "")
                )
                for b in n.get("blocked", ())
            ),
            model_unmet=tuple(n.get("model_unmet", ())),
        ).describe()
        for n in names
    ]


def _context(args: argparse.Namespace) -> tuple[str, str | None]:
    """The admin API and a token: given (--api, --token, AUTHZ_API, AUTHZ_TOKEN), else from the
    same settings the Redis commands read (one context: make run writes it), so one config file
    serves every verb."""
    if args.api and args.token:
        return args.api, args.token
    s = settings(args)
    api = args.api
    if not api:
        host, _, port = s.http_listen.rpartition(":")
        api = f"http://{'127.0.0.1' if host in ('0.0.0.0', '', '*') else host}:{port}"
    token = args.token
    if not token and s.admin_jwt_hs256_secret:
        token = signed(s, args.org, subject=args.actor, role="owner", ttl_s=300)
    if not token:
        raise CommandError(
            "no admin token: set AUTHZ_TOKEN (authz token issue ...), or admin_jwt_hs256_secret in the "
            "settings (AUTHZ_CONFIG) so the CLI signs its own",
            USAGE,
        )
    return api, token


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    org = urllib.parse.quote(args.org, safe="")
    if args.action == "get":
        return "GET", f"/v1/orgs/{org}/policy", None
    body: dict[str, Any] = {}
    if getattr(args, "expected_version", None) is not None:
        body["expected_version"] = args.expected_version
    if args.action in ("enable", "disable"):
        return "POST", f"/v1/orgs/{org}/policy:{args.action}", body
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as exc:
        raise CommandError(f"{args.file}: {exc.strerror}", USAGE) from None
    try:
        policy = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{args.file}: not JSON: {exc}") from None
    if args.action == "preview":
        return "POST", f"/v1/orgs/{org}/policy:preview", {"policy": policy}
    body["policy"] = policy
    if args.force:
        body["force"] = True
    return "PUT", f"/v1/orgs/{org}/policy", body


def _call(api: str, token: str | None, method: str, path: str, body: dict[str, Any] | None) -> Any:
    request = urllib.request.Request(
        api.rstrip("/") + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Bearer {token or ''}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read())["error"]
            message = f"{exc.code} {error['code']}: {error['message']}"
        except (ValueError, KeyError):
            message = f"HTTP {exc.code} from {api}"
        raise CommandError(message) from None
    except OSError as exc:
        raise CommandError(f"cannot reach the admin API at {api}: {exc}") from None
