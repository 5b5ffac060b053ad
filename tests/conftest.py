"""Shared fixtures: a private redis-server and the whole stack (Redis, stand-in gateway,
authz, real Envoy) on free loopback ports, started once per session.

Tiers are directories: tests/unit (pure), tests/integration (real Redis, sockets, processes),
tests/e2e (through Envoy). Shared test code lives in tests/support."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import settings

# Property tests check correctness, not speed: a generous deadline keeps a loaded 2-core CI
# machine from failing them, while a runaway example (a hang, an accidental quadratic) still fails.
settings.register_profile("authz", deadline=2000, print_blob=True)
settings.load_profile("authz")

# Fixtures that start the real stack (Envoy, authz, Redis, gateway): only tests/e2e may use them,
# so `make test-fast` (unit and integration) never starts Envoy.
_STACK_FIXTURES = {"stack", "http_stack", "org", "alert_stack", "lossy"}


def pytest_collection_modifyitems(items):
    for item in items:
        tier = item.path.parent.name
        item.add_marker(getattr(pytest.mark, tier if tier in ("unit", "integration") else "e2e"))
        params = getattr(getattr(item, "callspec", None), "params", {})  # a parameter named "org" is no fixture
        if tier != "e2e" and _STACK_FIXTURES & (set(getattr(item, "fixturenames", ())) - set(params)):
            raise pytest.UsageError(f"{item.nodeid} uses the Envoy stack: move it to tests/e2e")


from devstack.stack import RedisServer, Stack  # noqa: E402

# tests/image runs the built image: `make image-test` builds it and names it; `make test` does not.
collect_ignore = [] if os.environ.get("IMAGE_UNDER_TEST") else ["image"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def _session_stack(tmp_path_factory, transport: str) -> Stack:
    # No periodic resync during the session (pub/sub keeps the cache current; resync has its own
    # tests): it would show up as Redis reads in the zero-Redis-calls test.
    # Header routing: the stand-in gateway routes only among x-compliance-allowed-providers.
    # Strict routing has its own stack (test_e2e_gateways.py).
    # Both event sinks: every block also lands in a JSON-lines file (test_e2e_events.py).
    workdir = tmp_path_factory.mktemp(f"stack-{transport}")
    s = Stack.start(
        workdir,
        transport=transport,
        authz_settings={
            "provider_header": "x-provider",
            "refresh_interval_s": "600",
            "max_staleness_s": "1200",
            "routing_enforcement": "header",
            "event_sinks": "redis,file",
            "events_file": str(workdir / "events.jsonl"),
        },
    )
    s.admin.load_catalog()
    s.wait_ready()
    return s


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    s = _session_stack(tmp_path_factory, "grpc")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def http_stack(tmp_path_factory):
    """The same stack with the Check over Envoy's HTTP ext_authz (envoy/front-proxy-http.yaml).
    A module runs its tests over both transports with support.transports.both_transports."""
    s = _session_stack(tmp_path_factory, "http")
    yield s
    s.stop()


_orgs = itertools.count(1)


@dataclass
class Org:
    """A fresh org with an API key, so tests never share policy state."""

    id: str
    key: str
    stack: Stack

    def set_policy(self, **fields):
        return self.stack.admin.set_policy(self.id, **fields)

    def post(self, body=None, *, headers=None, content=None, path="/v1/chat/completions", key=True, **kw):
        h = {"authorization": f"Bearer {self.key}"} if key else {}
        if content is not None:
            h["content-type"] = "application/json"  # as a JSON client labels a body (override in headers)
        h.update(headers or {})
        kw.setdefault("timeout", 10)
        return httpx.post(self.stack.url + path, json=body, content=content, headers=h, **kw)

    def received(self) -> list[dict]:
        return [r for r in self.stack.received() if r["headers"].get("authorization") == f"Bearer {self.key}"]

    def events(self) -> list[dict]:
        return [e for e in self.stack.admin.security_events() if e["org_id"] == self.id]


@pytest.fixture
def org(stack) -> Org:
    n = next(_orgs)
    org = Org(id=f"org-{os.getpid()}-{n}", key=f"sk-test-{os.getpid()}-{n}", stack=stack)
    stack.admin.set_plan(org.id, "enterprise")
    stack.admin.add_api_key(org.key, org.id)
    return org
