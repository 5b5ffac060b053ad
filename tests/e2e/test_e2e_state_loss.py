"""Redis coming back empty (restart without persistence, flush, failover to an empty replica)
is data loss, not "no policy": cached policies stay enforced, authz reports NOT_SERVING and,
once max_staleness_s passes, answers 503. Through the real Envoy, with orgs from a header
(the mode in which the old code let blocked requests through)."""

from __future__ import annotations

import httpx
import pytest
import redis

from authz.state.writes import StateLost
from devstack.stack import Stack, wait_until

pytestmark = pytest.mark.e2e

BLOCKED = "deepseek/deepseek-v3.2"  # deepseek fails GDPR in the sample catalog


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp("lossy"),
        authz_settings={
            "org_source": "header",
            "org_header": "x-org-id",
            "refresh_interval_s": "0.5",
            "max_staleness_s": "4",
        },
    )
    s.admin.load_catalog()
    s.wait_ready()
    yield s
    s.stop()


def post(stack: Stack, org: str, model: str) -> httpx.Response:
    return httpx.post(stack.url + "/v1/chat/completions", json={"model": model}, headers={"x-org-id": org}, timeout=10)


def readyz(stack: Stack) -> httpx.Response:
    return httpx.get(stack.authz_http + "/readyz")


def test_redis_restarted_empty_never_opens_the_gate(lossy):
    s = lossy
    for org in ("lost-a", "lost-b"):
        s.admin.set_plan(org, "enterprise")
        s.admin.set_policy(org, enabled=True, require_gdpr=True)
    for org in ("lost-a", "lost-b"):
        wait_until(lambda org=org: post(s, org, BLOCKED).status_code == 403, 5, "policy enforced")
    s.clear_received()

    s.redis.stop()
    s.redis.start()  # no persistence: every key is gone

    def reports_the_loss() -> bool:
        # Until a sync succeeds against the restarted Redis, /readyz still names the outage
        # ("Redis unreachable"); the loss is reported once authz has read the empty Redis.
        r = readyz(s)
        return r.status_code == 503 and any("state marker is missing" in x for x in r.json()["reasons"])

    wait_until(reports_the_loss, 10, "authz reports the loss")
    body = readyz(s).json()
    assert body["state_lost"] is True and any("state marker is missing" in r for r in body["reasons"])
    # The cached policy is still enforced; an org authz never saw cannot be judged.
    assert post(s, "lost-a", BLOCKED).status_code == 403
    assert post(s, "lost-c", "gpt-4o").status_code == 503
    assert s.received() == []
    assert "redis_state_lost" in s.authz.log()
    assert "authz_redis_state_lost 1.0" in httpx.get(s.authz_metrics + "/metrics").text
    # Writes are refused rather than making one org's change look like the state is back.
    with pytest.raises(StateLost):
        s.admin.set_policy("lost-b", enabled=False)
    # Past max_staleness_s: 503 for everyone, never an allow.
    wait_until(lambda: post(s, "lost-a", BLOCKED).status_code == 503, 10, "stale state -> 503")
    assert post(s, "lost-b", "gpt-4o").status_code == 503
    assert post(s, "lost-c", "gpt-4o").status_code == 503
    assert s.received() == []

    # Recovery: the operator bootstraps again (a new epoch) and restores one org's policy.
    s.admin.load_catalog()
    s.admin.set_plan("lost-a", "enterprise")
    s.admin.set_policy("lost-a", enabled=True, require_gdpr=True)
    wait_until(lambda: readyz(s).status_code == 200, 10, "ready again")
    assert post(s, "lost-a", BLOCKED).status_code == 403
    # lost-b's policy was not restored; authz keeps enforcing what it had cached for it.
    assert post(s, "lost-b", BLOCKED).status_code == 403
    assert "org_policy_missing_in_redis_keeping_cached" in s.authz.log()


def test_state_restored_with_the_same_epoch_resumes(lossy):
    s = lossy
    s.admin.set_plan("kept", "enterprise")
    s.admin.set_policy("kept", enabled=True, require_gdpr=True)
    wait_until(lambda: post(s, "kept", BLOCKED).status_code == 403, 5, "policy enforced")
    client: redis.Redis = s.redis.client()
    dump = {key: client.dump(key) for key in client.keys("*") if client.type(key) in (b"hash", b"string")}
    client.flushall()  # e.g. an OOM-killed Redis whose restart replays an older snapshot later
    wait_until(lambda: readyz(s).status_code == 503, 10, "authz reports the loss")
    for key, value in dump.items():
        client.restore(key, 0, value, replace=True)
    wait_until(lambda: readyz(s).status_code == 200, 10, "state restored")
    assert "redis_state_restored" in s.authz.log()
    assert post(s, "kept", BLOCKED).status_code == 403
