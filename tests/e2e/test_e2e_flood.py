"""One tenant's flood of parser-heavy bodies leaves another org's Checks alone: the flooding
org's large bodies draw its inspection budget and get 429 before they are read, and those it may
send are parsed in a helper process (authz.server.parse_pool), so the event loop every org's
Checks wait on stays free; through the real Envoy, with two CPU hogs running beside it."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time

import httpx
import pytest

from devstack.stack import Stack, wait_until
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e


def heavy_body(mib: int) -> bytes:
    # Many "model" keys: the fast path cannot read it, so the whole body is parsed (the costly case).
    item = json.dumps({"role": "user", "content": "x" * 40, "model": "m"})
    count = mib * 1024 * 1024 // (len(item) + 2)
    return ('{"model": "azure/gpt-4o", "messages": [' + ", ".join([item] * count) + "]}").encode()


def test_a_flood_of_heavy_bodies_from_one_org_leaves_another_orgs_checks_fast(tmp_path):
    with Stack.start(tmp_path / "flood", authz_settings={"routing_enforcement": "strict"}) as stack:
        stack.admin.load_catalog()
        for org, key in (("flood", "sk-flood"), ("calm", "sk-calm")):
            stack.admin.set_plan(org, "enterprise")
            stack.admin.add_api_key(key, org)
            stack.admin.set_policy(org, **DEMO_POLICY)
        stack.wait_ready()
        # The calm org is an active one: its key and policy are cached before the flood, so what
        # is measured is its Checks' wait behind the flood, not a cold Redis load queued there.
        calm = {"model": "azure/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        warm = httpx.post(stack.url + "/v1/chat/completions", json=calm, headers={"authorization": "Bearer sk-calm"})
        assert warm.status_code == 200, warm.text
        body = heavy_body(24)
        stop = threading.Event()
        flood_codes: list[str] = []

        def flood() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    r = client.post(
                        stack.url + "/v1/chat/completions",
                        content=body,
                        headers={"authorization": "Bearer sk-flood", "content-type": "application/json"},
                    )
                    # Envoy's own answers (a flooded Check that timed out) carry no JSON body.
                    json_body = r.headers.get("content-type", "").startswith("application/json")
                    flood_codes.append(r.json().get("error", {}).get("code", "") if json_body else str(r.status_code))

        threads = [threading.Thread(target=flood) for _ in range(4)]
        for t in threads:
            t.start()
        # A busy 2-core machine: two processes that only burn CPU, for the measured window.
        hogs = [
            subprocess.Popen(
                [sys.executable, "-c", "import time\nend = time.time() + 60\nwhile time.time() < end: pass"]
            )
            for _ in range(2)
        ]
        latencies, statuses = [], []
        try:
            # Past the flood's first burst (the budget lets two 24 MiB bodies in at once, then one per
            # 1.5 s): measure once the budget is refusing, its steady state, not a fixed time after
            # the start, which a loaded machine stretches.
            wait_until(lambda: "inspection_budget_exceeded" in flood_codes, 30, "the budget refusing the flood")
            time.sleep(2.0)
            with httpx.Client(timeout=10) as client:
                end = time.monotonic() + 6
                while time.monotonic() < end:
                    started = time.monotonic()
                    r = client.post(
                        stack.url + "/v1/chat/completions",
                        json={"model": "azure/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                        headers={"authorization": "Bearer sk-calm"},
                    )
                    latencies.append(time.monotonic() - started)
                    statuses.append(r.status_code)
                    time.sleep(0.05)
        finally:
            stop.set()
            for hog in hogs:
                hog.kill()
                hog.wait()
            for t in threads:
                t.join(60)
        assert set(statuses) == {200}, statuses  # never Envoy's 503 for an authz that did not answer in time
        assert "inspection_budget_exceeded" in flood_codes, flood_codes
        # Bounds, not a benchmark: measured on the 2-core machine with two hogs and a full test run
        # beside it, the calm org's median was 0.12-0.16 s and its slowest 0.66-0.73 s with the
        # parse pool, 0.33 s and 1.08 s without it (every Check queued behind a 24 MiB parse):
        # far below Envoy's 2 s ext_authz timeout. (Before the pool, the bounds were 0.7 and 1.5 s.)
        assert statistics.median(latencies) < 0.4 and max(latencies) < 1.2, (
            statistics.median(latencies),
            max(latencies),
        )
