"""One tenant's flood of parser-heavy bodies leaves another org's Checks alone: the flooding
org's large bodies draw its inspection budget and get 429 before they are read, and those it may
send are parsed in a helper process at a lower CPU priority (authz.server.parse_pool), so the
event loop every org's Checks wait on stays free; through the real Envoy, with two CPU hogs
running beside it."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
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


# The flooding client: four connections posting the heavy body until killed, each answer's error
# code (or Envoy's bare status) appended to a file, one a line.
FLOODER = """
import sys, threading, httpx
url, body, out = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "a", buffering=1)
def flood():
    with httpx.Client(timeout=30) as client:
        while True:
            r = client.post(url + "/v1/chat/completions", content=body,
                            headers={"authorization": "Bearer sk-flood", "content-type": "application/json"})
            json_body = r.headers.get("content-type", "").startswith("application/json")
            out.write((r.json().get("error", {}).get("code", "") if json_body else str(r.status_code)) + "\\n")
threads = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""


def calm_requests(url: str, seconds: float) -> tuple[list[float], list[int]]:
    """The calm org's allowed requests, one every 50 ms for `seconds`: their latencies and statuses."""
    latencies, statuses = [], []
    with httpx.Client(timeout=10) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            r = client.post(
                url + "/v1/chat/completions",
                json={"model": "azure/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": "Bearer sk-calm"},
            )
            latencies.append(time.monotonic() - started)
            statuses.append(r.status_code)
            time.sleep(0.05)  # a request rate, not a wait for a condition
    return latencies, statuses


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
        body_file = tmp_path / "heavy.json"
        body_file.write_bytes(heavy_body(24))
        codes_file = tmp_path / "flood-codes"
        # A busy 2-core machine: two processes that only burn CPU, for the whole measured window.
        hogs = [
            subprocess.Popen(
                [sys.executable, "-c", "import time\nend = time.time() + 90\nwhile time.time() < end: pass"]
            )
            for _ in range(2)
        ]
        flooder = None
        try:
            # The same Checks on the same busy machine without the flood: what "unchanged" means here.
            calm_alone, statuses_alone = calm_requests(stack.url, seconds=3)
            # The attacker's client in a process of its own, at a lower priority: in production it runs
            # on another machine, so neither its CPU nor this process's GIL stands in for authz's.
            flooder = subprocess.Popen(
                [sys.executable, "-c", FLOODER, stack.url, str(body_file), str(codes_file)],
                preexec_fn=lambda: os.nice(10),
            )
            # Past the flood's first burst (the budget lets two 24 MiB bodies in at once, then one per
            # 1.5 s): measure once the budget is refusing, its steady state, not a fixed time after
            # the start, which a loaded machine stretches.
            wait_until(
                lambda: codes_file.exists() and "inspection_budget_exceeded" in codes_file.read_text(),
                30,
                "the budget refusing the flood",
            )
            latencies, statuses = calm_requests(stack.url, seconds=6)
        finally:
            for proc in [*hogs, flooder]:
                if proc is not None:
                    proc.kill()
                    proc.wait()
        alone, flooded = statistics.median(calm_alone), statistics.median(latencies)
        assert set(statuses_alone) == {200}, statuses_alone
        assert set(statuses) == {200}, statuses  # never Envoy's 503 for an authz that did not answer in time
        # Bounds, not a benchmark. Measured on the 2-core machine with the two hogs, the calm org's
        # median was 4-7 ms alone and 15-40 ms in the flood, its slowest 0.34-0.56 s (helpers at
        # nice 10); with the helpers at the service's priority 17-50 ms and 0.59-0.75 s; with every
        # parse on the event loop (parse_workers = 0) up to 156 ms and 1.3 s. Earlier bounds: 0.7 and
        # 1.5 s before the helpers, then 0.4 and 1.2 s.
        assert flooded < 0.25 and max(latencies) < 1.2, (alone, flooded, max(latencies))
