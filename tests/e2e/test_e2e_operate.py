"""SIGTERM under load through Envoy: the draining authz reports NOT_SERVING, keeps answering
while Envoy's health check moves Checks to the other replica, then exits 0. No request fails."""

from __future__ import annotations

import json
import signal
import threading

import httpx
import pytest

from devstack.envoy_config import sidecar_config
from devstack.stack import TRANSPORTS, Stack, wait_until
from support.policies import DEMO_POLICY
from support.processes import running

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sigterm_under_load_fails_no_request(tmp_path, transport):
    """Over gRPC the health service says NOT_SERVING; over HTTP ext_authz, GET /healthz says 503."""
    settings = {"drain_delay_s": "2", "shutdown_grace_s": "5"}
    with Stack.start(tmp_path, replicas=2, transport=transport, authz_settings=settings) as s:
        s.admin.load_catalog()
        s.admin.add_api_key("sk-drain", "drain-org")
        s.admin.set_policy("drain-org", **DEMO_POLICY)
        for proc in s.replicas:
            port = proc.env["AUTHZ_HTTP_LISTEN"].rpartition(":")[2]
            wait_until(lambda port=port: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, 15, proc.name)
        wait_until(
            lambda: (
                [
                    line.endswith("::healthy")
                    for line in httpx.get(s.envoy_admin + "/clusters").text.splitlines()
                    if line.startswith("authz::") and "::health_flags::" in line
                ]
                == [True, True]
            ),
            30,
            "Envoy sees both authz replicas healthy",
        )

        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=s.url, headers={"authorization": "Bearer sk-drain"}, timeout=10) as client:
                while not stop.is_set():
                    for model, want in (("azure/gpt-4o", 200), ("deepseek/deepseek-v3.2", 403)):
                        r = client.post("/v1/chat/completions", json={"model": model, "messages": []})
                        statuses.append(r.status_code if r.status_code != want else 0)

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        wait_until(lambda: len(statuses) >= 40, 20, "load flowing")
        before = len(statuses)
        s.authz.signal(signal.SIGTERM)
        exit_code = s.authz.popen.wait(20)
        during = len(statuses) - before
        # Counted in requests, not seconds: the other replica keeps serving once this one is gone.
        wait_until(lambda: len(statuses) >= before + during + 40, 20, "load flowing after the exit")
        stop.set()
        for w in workers:
            w.join()

        assert exit_code == 0
        assert during > 0, "the load kept flowing through the drain"
        failures = [x for x in statuses if x]
        assert failures == [], f"{len(failures)} of {len(statuses)} requests got an unexpected status: {set(failures)}"
        log = s.authz.log()
        assert log.index('"draining"') < log.index('"stopped"')


def _sample(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{want}}}")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_workers_share_the_port_and_metrics_add_up(tmp_path, transport):
    with Stack.start(tmp_path, workers=2, transport=transport) as s:
        s.admin.load_catalog()
        s.admin.add_api_key("sk-m", "metrics-org")
        s.admin.set_policy("metrics-org", **DEMO_POLICY)
        s.wait_ready()
        with httpx.Client(base_url=s.url, headers={"authorization": "Bearer sk-m"}) as client:
            for _ in range(15):
                assert client.post("/v1/chat/completions", json={"model": "azure/gpt-4o"}).status_code == 200
                assert client.post("/v1/chat/completions", json={"model": "deepseek/deepseek-v3.2"}).status_code == 403
                # A new connection each time, so SO_REUSEPORT spreads them over both workers.
                httpx.get(s.authz_http + "/healthz")
        # Each worker applies its per-Check counts every 0.25 s (metrics.CheckTally): within a
        # second every one of the 30 Checks is counted, exactly once.
        wait_until(
            lambda: _sample(httpx.get(s.authz_metrics + "/metrics").text, "authz_check_duration_seconds_count") >= 30,
            2,
            "every worker's counts",
        )
        text = httpx.get(s.authz_metrics + "/metrics").text
        assert _sample(text, "authz_decisions_total", reason="compliant", result="allowed") == 15
        assert _sample(text, "authz_decisions_total", reason="provider_not_compliant", result="denied") == 15
        assert _sample(text, "authz_check_duration_seconds_count") == 30
        assert _sample(text, "authz_catalog_version") == 1
        assert _sample(text, "authz_policy_staleness_seconds") < 60
        assert _sample(text, "authz_cache_lookups_total", cache="org", result="hit") >= 28
        started = [json.loads(line) for line in s.authz.log().splitlines() if "worker_started" in line]
        checked = {json.loads(line)["pid"] for line in s.authz.log().splitlines() if '"started"' in line}
        assert len({e["worker_pid"] for e in started}) == 2 and checked == {e["worker_pid"] for e in started}


def test_a_killed_supervisor_takes_its_workers_along(tmp_path):
    """`authz serve --workers 2` SIGKILLed (the OOM killer, a stop that timed out): its workers
    drain and end rather than serve on, orphaned, on the shared ports (two did, for minutes)."""
    with Stack.start(tmp_path, workers=2) as s:
        s.admin.load_catalog()
        s.wait_ready()
        started = [json.loads(line) for line in s.authz.log().splitlines() if "worker_started" in line]
        workers = [e["worker_pid"] for e in started]
        assert len(workers) == 2 and all(running(pid) for pid in workers)
        s.authz.popen.send_signal(signal.SIGKILL)
        s.authz.popen.wait(10)
        wait_until(lambda: not any(running(pid) for pid in workers), 30, "the workers to end with their supervisor")


def test_the_kubernetes_sidecar_envoy_config_enforces_and_answers_probes(tmp_path):
    # envoy.yaml with its container's --config-yaml (the gateway on GATEWAY_PORT, remapped here).
    sidecar = sidecar_config(8000, tmp_path)
    with Stack.start(tmp_path, envoy_config=sidecar) as s:
        s.admin.load_catalog()
        s.admin.add_api_key("sk-sc", "sidecar-org")
        s.admin.set_policy("sidecar-org", **DEMO_POLICY)
        s.wait_ready()
        assert httpx.get(s.url + "/envoy/ready").status_code == 200  # the kubelet's probe, no credentials
        r = httpx.post(
            s.url + "/v1/chat/completions",
            json={"model": "deepseek/deepseek-v3.2"},
            headers={"authorization": "Bearer sk-sc"},
        )
        assert r.status_code == 403 and r.json()["error"]["provider"] == "deepseek"
        # Strict routing (the shipped default): gpt-4o is also served by OpenAI, which logs prompts.
        automatic = httpx.post(
            s.url + "/v1/chat/completions", json={"model": "gpt-4o"}, headers={"authorization": "Bearer sk-sc"}
        )
        assert automatic.status_code == 403 and automatic.json()["error"]["alternatives"] == ["azure/gpt-4o"]
        assert (
            httpx.post(
                s.url + "/v1/chat/completions",
                json={"model": "azure/gpt-4o"},
                headers={"authorization": "Bearer sk-sc"},
            ).status_code
            == 200
        )
        assert [x["path"] for x in s.received()] == ["/v1/chat/completions"]


@pytest.mark.wall_clock
def test_an_old_catalog_still_enforces_but_readyz_and_the_metric_say_its_age(tmp_path):
    """catalog_max_age_days: past it the catalog's facts may have changed. authz keeps
    enforcing the catalog it has (ready, 200) and says so in /readyz and the metric."""
    from datetime import UTC, datetime, timedelta

    from devstack.stack import SAMPLE_CATALOG

    catalog = json.loads(SAMPLE_CATALOG.read_text())
    # A date-time an hour past 200 days, so the age is 200 whole days whatever the hour or day.
    catalog["published_at"] = (datetime.now(UTC) - timedelta(days=200, hours=1)).isoformat(timespec="seconds")
    with Stack.start(tmp_path, authz_settings={"catalog_max_age_days": "120"}) as s:
        s.admin.load_catalog(catalog)
        s.wait_ready()
        ready = httpx.get(s.authz_http + "/readyz")
        assert ready.status_code == 200
        [warning] = ready.json()["warnings"]
        assert "was compiled 200 days ago (catalog_max_age_days = 120)" in warning
        wait_until(
            lambda: _sample(httpx.get(s.authz_metrics + "/metrics").text, "authz_catalog_age_seconds") > 199 * 86400,
            5,
            "the age metric",
        )
        s.admin.add_api_key("sk-old", "old-org")
        s.admin.set_plan("old-org", "enterprise")
        s.admin.set_policy("old-org", **DEMO_POLICY)
        r = httpx.post(
            s.url + "/v1/chat/completions",
            json={"model": "deepseek/deepseek-v3.2", "messages": []},
            headers={"authorization": "Bearer sk-old"},
            timeout=10,
        )
        assert r.status_code == 403  # still enforced
