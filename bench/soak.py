"""Soak: the benchmark's set-up (c) at a fixed ~1,000 rps for a while, one row per minute,
to show that memory and latency stay flat. Bounded in time; not part of CI.

    python bench/soak.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data
from run import authz_proc, front_envoy, histogram, load_state, percentile_from_buckets, upstream_envoy, wrk

from devstack.stack import RedisServer


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="authz-soak-"))
    cat, orgs = data.catalog(), data.orgs()
    requests_file = workdir / "requests.tsv"
    requests_file.write_text("\n".join(data.requests(cat, orgs)) + "\n")
    redis_server = RedisServer(workdir).start()
    procs = []
    try:
        asyncio.run(load_state(redis_server.url, cat, orgs))
        upstream, upstream_port = upstream_envoy(workdir)
        procs.append(upstream)
        authz = authz_proc(workdir, "authz", redis_server.url)
        procs.append(authz)
        front, port = front_envoy(workdir, "front", authz.grpc_port, upstream_port)
        procs.append(front)
        url = f"http://127.0.0.1:{port}"
        wrk(url, requests_file, 5, 16)
        print("| minute | rps | p50 ms | p99 ms | handler p99 ms | authz RSS MB | socket errors |")
        print("|---:|---:|---:|---:|---:|---:|---:|", flush=True)
        for minute in range(1, args.minutes + 1):
            before = histogram(authz.metrics)
            r = wrk(url, requests_file, 60, 20, rate=args.rate)
            handler_p99 = percentile_from_buckets(before, histogram(authz.metrics), 0.99)
            print(
                f"| {minute} | {r['rps']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {handler_p99} | "
                f"{rss_mb(authz.popen.pid)} | {r['socket_errors']} |",
                flush=True,
            )
    finally:
        for proc in procs:
            proc.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
