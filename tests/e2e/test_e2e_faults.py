"""State unknown -> 503 through the real Envoy, and the gateway never sees the request.

Its own stack (Redis is stopped here), with short refresh and staleness windows.
"""

from __future__ import annotations

import httpx
import pytest

from devstack.stack import TRANSPORTS, RedisServer, Stack, wait_until
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e

BODY = {"model": "deepseek/deepseek-v3.2", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module", params=TRANSPORTS)
def fault_stack(request, tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp(f"faults-{request.param}"),
        transport=request.param,
        authz_settings={"refresh_interval_s": "0.5", "max_staleness_s": "3", "redis_timeout_s": "0.1"},
    )
    s.admin.load_catalog()
    s.wait_ready()
    yield s
    s.stop()


def post(stack, key, body=BODY):
    return httpx.post(
        stack.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=10
    )


def unavailable(stack: Stack, code: str) -> str:
    """The code of a 503 from authz as the client reads it. Envoy's HTTP ext_authz answers a
    5xx from authz with its own status_on_error; front-proxy-http.yaml gives that a JSON body."""
    return "compliance_check_unavailable" if stack.transport == "http" else code


def test_redis_down_cached_orgs_enforced_until_stale_uncached_503(fault_stack):
    s = fault_stack
    s.admin.set_plan("cached", "enterprise")
    s.admin.add_api_key("sk-cached", "cached")
    s.admin.set_policy("cached", **DEMO_POLICY)
    s.admin.add_api_key("sk-cold", "cold")
    assert post(s, "sk-cached").status_code == 403  # warm
    s.clear_received()

    s.redis.stop()
    try:
        # Cached: still enforced exactly as before, no wrongful allow.
        r = post(s, "sk-cached")
        assert r.status_code == 403 and r.json()["error"]["code"] == "provider_not_compliant"
        # Not cached: unknown state -> 503.
        r = post(s, "sk-cold")
        assert r.status_code == 503 and r.json()["error"]["code"] == unavailable(s, "state_unavailable")
        # Past max staleness even the cached org gets 503 rather than an old policy forever.
        wait_until(lambda: post(s, "sk-cached").status_code == 503, 10, "staleness 503")
        assert post(s, "sk-cached").json()["error"]["code"] == unavailable(s, "state_stale")
        assert httpx.get(s.authz_http + "/readyz").status_code == 503
        assert s.received() == []
    finally:
        # Back, but empty (it keeps nothing on disk): bootstrap it again even if the test failed,
        # so the next test on this stack starts from a usable state.
        s.redis = RedisServer(s.workdir, port=s.redis.port).start()
        s.admin.load_catalog()
    s.admin.add_api_key("sk-cached", "cached")
    s.admin.set_policy("cached", **DEMO_POLICY)
    last: list[httpx.Response] = []

    def resynced() -> bool:
        last[:] = [post(s, "sk-cached")]
        return last[0].status_code == 403

    # Recovery is the promise; the bound allows a loaded CI machine (it took over 15 s once there).
    try:
        wait_until(resynced, 30, "resync after Redis restart")
    except TimeoutError:
        answer = f"{last[0].status_code} {last[0].text[:300]}"
        raise AssertionError(f"still {answer}; authz log:\n{s.authz.log()[-3000:]}") from None
    assert s.received() == []


def test_authz_down_is_503_and_nothing_reaches_the_gateway(fault_stack):
    s = fault_stack
    s.admin.add_api_key("sk-open", "open")  # no policy: would be allowed
    assert post(s, "sk-open").status_code == 200
    s.clear_received()
    s.authz.stop()
    try:
        r = post(s, "sk-open")
        assert r.status_code == 503
        assert s.received() == []
    finally:
        s.restart_authz()
    s.wait_ready()
    wait_until(lambda: post(s, "sk-open").status_code == 200, 10, "authz back")


def test_authz_slower_than_envoys_timeout_is_503(fault_stack):
    import signal

    s = fault_stack
    s.admin.add_api_key("sk-slow", "slow-org")  # no policy: a fast authz would allow
    assert post(s, "sk-slow").status_code == 200
    s.clear_received()
    s.authz.signal(signal.SIGSTOP)  # frozen: Envoy's 200 ms Check timeout fires
    try:
        statuses = [post(s, "sk-slow").status_code for _ in range(3)]
    finally:
        s.authz.signal(signal.SIGCONT)
    assert statuses == [503, 503, 503]
    assert s.received() == []
    wait_until(lambda: post(s, "sk-slow").status_code == 200, 10, "authz resumed")


def test_policy_change_missed_by_a_dropped_subscription_is_enforced(fault_stack):
    s = fault_stack
    s.admin.add_api_key("sk-missed", "missed-org")
    assert post(s, "sk-missed").status_code == 200  # cached: no policy
    client = s.redis.client()
    for _ in range(5):
        client.client_kill_filter(_type="pubsub")  # authz loses its subscription...
        s.admin.set_policy("missed-org", **DEMO_POLICY)  # ...and may miss this invalidation
    # The resubscription resyncs everything cached, so the change is enforced anyway.
    wait_until(lambda: post(s, "sk-missed").status_code == 403, 10, "missed change enforced")
