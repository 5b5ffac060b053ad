"""Policy propagation: time from a saved policy change (admin API returns) to the first
request through Envoy that is decided by it. Reported, never asserted.

    .venv/bin/python bench/propagation.py [--changes 100] [--out bench/out/propagation.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from authz.testing.stack import Stack

POLICY = {"enabled": True, "require_gdpr": True, "require_no_prompt_training": True}
BODY = {"model": "deepseek/deepseek-v3.2", "messages": [{"role": "user", "content": "hi"}]}


def measure(stack: Stack, changes: int) -> list[float]:
    org, key = "prop-org", "sk-prop"
    stack.admin.set_plan(org, "enterprise")
    stack.admin.add_api_key(key, org)
    admin = httpx.Client(base_url=stack.authz_http, headers={"authorization": f"Bearer {stack.token(org)}"})
    envoy = httpx.Client(base_url=stack.url, headers={"authorization": f"Bearer {key}"})
    samples = []
    enabled = False
    for _ in range(changes):
        enabled = not enabled
        want = 403 if enabled else 200
        r = admin.put(f"/v1/orgs/{org}/policy", json={"policy": {**POLICY, "enabled": enabled}})
        r.raise_for_status()
        saved = time.perf_counter()
        while envoy.post("/v1/chat/completions", json=BODY).status_code != want:
            if time.perf_counter() - saved > 5:
                raise RuntimeError("a change was not enforced within 5 s")
        samples.append(time.perf_counter() - saved)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--out", default="bench/out/propagation.json")
    args = parser.parse_args()
    with Stack.start(Path(tempfile.mkdtemp(prefix="authz-prop-"))) as stack:
        stack.admin.load_catalog()
        stack.wait_ready()
        samples = measure(stack, args.changes)
    result = {
        "changes": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
        "note": "save returned -> first request through Envoy decided by the new policy (includes one request RTT)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
