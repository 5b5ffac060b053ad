"""Shared fixtures: a private redis-server and the whole stack (Redis, stand-in gateway,
authz, real Envoy) on free loopback ports, started once per session."""

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

# Fixtures that start the real stack (Envoy, authz, Redis, gateway): a test using one is e2e,
# wherever it lives, so `make test-fast` runs every other test.
_STACK_FIXTURES = {"stack", "org", "alert_stack", "lossy"}


def pytest_collection_modifyitems(items):
    for item in items:
        if _STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)

from authz.testing.stack import RedisServer, Stack

DEMO_POLICY = dict(
    enabled=True,
    require_soc2=True,
    require_iso27001=True,
    certifications=2,  # CERTIFICATION_MATCH_ANY
    require_gdpr=True,
    require_no_prompt_training=True,
    require_no_prompt_logging=True,
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # No periodic resync during the session (pub/sub keeps the cache current; resync has its own
    # tests): it would show up as Redis reads in the zero-Redis-calls test.
    # Header routing: the stand-in gateway routes only among x-compliance-allowed-providers.
    # Strict routing has its own stack (test_e2e_gateways.py).
    s = Stack.start(tmp_path_factory.mktemp("stack"), authz_settings={
        "provider_header": "x-provider", "refresh_interval_s": "600", "max_staleness_s": "1200",
        "routing_enforcement": "header"})
    s.admin.load_catalog()
    s.wait_ready()
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
