"""`make run`: the whole stack, kept running until Ctrl-C, its state kept.

Redis (data under the state directory, append-only file on), the stand-in LLM gateway, authz
and a real Envoy, on the ports the docs name; `PORT_BASE=N` moves them to N, N+1, ... (in the
order of PORTS below, Redis last) and `PORT_BASE=0` lets the kernel pick each (the printout
says where). Every port is checked before anything starts, and a Redis it did not start is
never used. The first run loads the shipped catalog, creates
the org `acme-corp` (Enterprise) with a policy and an API key, and writes an admin secret; a
later run reuses all of it (policies and keys you changed stay as you left them). It prints
what you need to try it: the API key, an admin token, the settings page, and curl, openai-SDK
and anthropic-SDK commands.

State directory: $RUN_STATE_DIR, default `.state/` in the repository (git-ignored).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from authz.admin.tokens import issue as issue_token
from authz.server.ports import PortInUse, claim
from devstack.policies import DEMO_POLICY
from devstack.stack import ROOT, Admin, RedisServer, Stack

ORG = "acme-corp"
OWNER = "owner@acme-corp"
CATALOG = ROOT / "catalog" / "catalog.json"
# The documented ports (README, docs/operating.md): the service's own defaults where it has them.
PORTS = {
    "envoy": 8080,
    "envoy_admin": 9901,
    "authz_grpc": 9001,
    "authz_http": 9090,
    "authz_admin_grpc": 9002,
    "authz_metrics": 9091,
    "gateway": 8000,
}
REDIS_PORT = 6390  # not 6379: never someone else's Redis


def chosen_ports(port_base: str) -> tuple[dict[str, int], int | None]:
    """The stack's ports and Redis's for PORT_BASE: empty, the documented ones; 0, the kernel's
    picks (an empty map and None); N, consecutive ports from N."""
    if not port_base:
        return dict(PORTS), REDIS_PORT
    if not port_base.isdigit() or not (int(port_base) == 0 or 1024 <= int(port_base) <= 65535 - len(PORTS)):
        raise SystemExit(f"make run: PORT_BASE={port_base!r}: a port from 1024 to {65535 - len(PORTS)}, or 0")
    base = int(port_base)
    if base == 0:
        return {}, None
    return {name: base + i for i, name in enumerate(PORTS)}, base + len(PORTS)


def check_free(ports: dict[str, int]) -> None:
    """Stop before starting anything when a port is taken, naming it and its holder."""
    taken = []
    for name, port in ports.items():
        try:
            claim({name: f"127.0.0.1:{port}"}).release()
        except PortInUse as exc:
            holder = exc.holder
            taken.append(f"{name} :{port}" + (f" (held by {holder})" if holder else ""))
    if taken:
        raise SystemExit(
            "make run: ports in use: " + ", ".join(taken) + ". Stop what holds them (another `make run`?) "
            "or pick other ports: make run PORT_BASE=18000 (or PORT_BASE=0 for any free ports)"
        )


def _secret_file(path: Path, make: str) -> str:
    """A value kept across runs, readable by its owner only."""
    if not path.exists():
        path.write_text(make)
        path.chmod(0o600)
    return path.read_text().strip()


def _first_run_setup(admin: Admin, api_key: str) -> bool:
    """Load the catalog, the org, its policy and key once; later runs keep what is there."""

    async def stored(store):  # type: ignore[no-untyped-def]
        return await store.catalog_raw(), await store.policy(ORG), await store.api_keys(ORG)

    catalog, policy, keys = admin._run(stored)
    first = catalog is None
    if first:
        admin.load_catalog(CATALOG, actor="make-run")
    if policy is None:
        admin.set_plan(ORG, "enterprise", actor="make-run")
        admin.set_policy(ORG, actor=OWNER, **DEMO_POLICY)
    if not keys:
        admin.add_api_key(api_key, ORG, actor="make-run")
    return first


def main() -> int:
    state = Path(os.environ.get("RUN_STATE_DIR", ROOT / ".state")).resolve()
    (state / "redis").mkdir(parents=True, exist_ok=True)
    secret = _secret_file(state / "admin-secret", secrets.token_urlsafe(32))
    api_key = _secret_file(state / "api-key", "sk-acme-" + secrets.token_urlsafe(18))
    ports, redis_port = chosen_ports(os.environ.get("PORT_BASE", ""))
    check_free({**ports, **({"redis": redis_port} if redis_port else {})})
    for old in (state / "run").glob("*.log"):  # a failure shows this run's logs only
        old.unlink()
    for old in (state / "redis").glob("redis-*.log"):
        old.unlink()
    redis = RedisServer(state / "redis", port=redis_port, extra=["--appendonly", "yes", "--appendfsync", "everysec"])
    print(f"starting Redis (data in {state / 'redis'}), the stand-in gateway, authz and Envoy…", flush=True)
    try:
        redis.start()
    except RuntimeError as exc:
        raise SystemExit(f"make run: {exc}") from None
    try:
        stack = Stack.start(
            state / "run",
            redis_server=redis,
            ports=ports,
            authz_settings={
                "admin_jwt_hs256_secret": secret,
                "events_spool_dir": str(state / "spool"),
                "routing_enforcement": "header",  # the stand-in gateway honours the header
                "drain_delay_s": "1",
            },
        )
    except BaseException as exc:
        redis.stop()
        if isinstance(exc, (RuntimeError, TimeoutError)):
            raise SystemExit(f"make run: could not start the stack: {exc}") from None
        raise
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        first = _first_run_setup(stack.admin, api_key)
        stack.wait_ready(timeout=30)
        token = issue_token(secret, subject=OWNER, org_id=ORG, role="owner", ttl_s=12 * 3600)
        context = _write_cli_context(stack, secret, state)
        _print_guide(stack, api_key, token, first, state, context)
        print("ready: Ctrl-C stops everything (the state stays for the next `make run`)", flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        print("\nstopping Envoy, authz, the gateway and Redis…", flush=True)
        stack.stop()
    print("stopped.")
    return 0


def _write_cli_context(stack: Stack, secret: str, state: Path) -> Path:
    """One settings file for the `authz` command: this run's Redis (and key prefix), its admin
    API, and the admin secret the CLI signs its own short tokens with (owner-readable only)."""
    path = state / "authz.toml"
    path.write_text(
        "# Written by `make run`: the `authz` command's context for this run (export AUTHZ_CONFIG=this file).\n"
        f'redis_url = "{stack.redis.url}"\n'
        f'http_listen = "{stack.authz_http.removeprefix("http://")}"\n'
        f'admin_jwt_hs256_secret = "{secret}"\n'
    )
    path.chmod(0o600)
    return path


def _examples(admin: Admin) -> tuple[str, str, str]:
    """What the stored policy asks, a model it lets through and one it blocks (pinned, so the
    guide's commands stay true after the policy is changed and `make run` is started again)."""
    from authz.policy import catalog as catalog_mod
    from authz.policy import rules as policy_rules

    async def read(store):  # type: ignore[no-untyped-def]
        return await store.catalog_raw(), await store.policy(ORG)

    raw, policy = admin._run(read)
    index = catalog_mod.CatalogIndex.build(catalog_mod.parse(raw))
    rules = policy_rules.rules_of(policy)
    lists = [name for name in policy_rules.LIST_FIELDS if policy is not None and getattr(policy, name)]
    described = ", ".join(policy_rules.labels(rules) + lists) or "nothing (no policy enabled)"
    table = index.table(rules)
    allowed = blocked = ""
    for model in ("gpt-4o", *sorted(index.models)):
        verdict = table.for_model(model)
        if not allowed and verdict.allowed:
            provider = "azure" if "azure" in verdict.allowed else sorted(verdict.allowed)[0]
            allowed = f"{provider}/{model}"
        if not blocked and verdict.blocked:
            blocked = f"{verdict.blocked[0][0]}/{model}"
        if allowed and blocked:
            break
    return described, allowed, blocked


def _print_guide(stack: Stack, api_key: str, token: str, first: bool, state: Path, context: Path) -> None:
    url = stack.url
    status = "created" if first else "reused from the last run"
    policy, allowed, blocked = _examples(stack.admin)
    print(
        f"""
authz is running ({status}; state in {state})

  Envoy (send requests here)  {url}
  admin API                   {stack.authz_http}   Redis {stack.redis.url}
  settings page               {stack.authz_http}/settings#token={token}
  readiness / metrics         {stack.authz_metrics}/readyz   {stack.authz_metrics}/metrics
  org                         {ORG}: its policy asks {policy}
  API key                     {api_key}
  admin token (12 h)          {token}

Try it:

  curl -s {url}/v1/chat/completions -H 'authorization: Bearer {api_key}' \\
       -H 'content-type: application/json' \\
       -d '{{"model": "{allowed}", "messages": [{{"role": "user", "content": "hi"}}]}}'
  curl -s {url}/v1/chat/completions -H 'authorization: Bearer {api_key}' \\
       -H 'content-type: application/json' \\
       -d '{{"model": "{blocked}", "messages": [{{"role": "user", "content": "hi"}}]}}'   # 403

  .venv/bin/python -c 'import openai; c = openai.OpenAI(base_url="{url}/v1", api_key="{api_key}"); \\
print(c.chat.completions.create(model="{allowed}", messages=[{{"role": "user", "content": "hi"}}]))'

  # the Anthropic Messages API, judged the same way
  .venv/bin/python -c 'import anthropic; c = anthropic.Anthropic(base_url="{url}", api_key="{api_key}"); \\
print(c.messages.create(model="{allowed}", max_tokens=64, \\
messages=[{{"role": "user", "content": "hi"}}]))'

The `authz` command, for this run (its Redis and admin API, and tokens it signs itself):

  export AUTHZ_CONFIG={context}
  .venv/bin/authz policy get {ORG}
  .venv/bin/authz events tail --follow
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
