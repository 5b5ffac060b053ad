"""Server CPU per Check: the robust headline of `make bench`.

CPU time (user + system, every thread, read from /proc) that a server spends per Check,
for the no-op grpc.aio server (bench/noop_authz.py: the floor of a Python gRPC ext_authz) and
for authz, in alternating rounds (noop, authz, noop, authz, ...) and reported as medians, with
the ratio authz ÷ no-op per case (the median of each round's ratio). Saturated rps on a shared
2-core machine swings run to run; CPU per Check depends far less on what else shares the cores.

Direct: h2load (nghttp2) sends gRPC frames (the CheckRequest Envoy would send) straight to the
server, no Envoy. Through Envoy: wrk drives the front Envoy, whose ext_authz calls the server.
Cases: an allowed request of an org with an enforced policy (3 KB body), a blocked one (its
security event queued), an org without a policy, and a 1 MiB body (a long conversation).

    python bench/cpu.py [--rounds 3] [--checks 20000] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from devstack.policies import DEMO_POLICY
from devstack.stack import SAMPLE_CATALOG, Admin, Proc, RedisServer, free_port, wait_until

BENCH = Path(__file__).resolve().parent
H2LOAD = shutil.which("h2load")
CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check"
TICKS = os.sysconf("SC_CLK_TCK")
KEYS = {"enforced": "sk-cpu-acme", "open": "sk-cpu-free"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads included (/proc/PID/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


ASSERTION_KEY = b"bench-org-assertion-key-of-32-bytes!"


def egress_request(provider: str, model: str) -> bytes:
    """The gateway's call to `provider` as the egress Envoy sends it to the egress checkpoint:
    the route's provider in the context extensions, the org in a signed assertion."""
    from envoy.service.auth.v3 import external_auth_pb2

    from authz.check import assertion

    req = external_auth_pb2.CheckRequest()
    req.ParseFromString(check_request("sk-provider-key", model))
    req.attributes.context_extensions.update({"checkpoint": "egress", "provider": provider})
    # Valid for a day: the whole run uses one serialized request.
    req.attributes.request.http.headers[assertion.HEADER] = assertion.sign("acme", ASSERTION_KEY, time.time(), 86_400)
    return req.SerializeToString()


def check_request(key: str, model: str, body_bytes: int = 3000) -> bytes:
    """A CheckRequest as Envoy sends it for a chat completion, serialized."""
    from envoy.service.auth.v3 import external_auth_pb2

    words = "the quarterly figures show steady growth across every region " * (body_bytes // 60 + 1)
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": words[:body_bytes]}]}, separators=(",", ":")
    ).encode()
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path, http.host, http.protocol = "POST", "/v1/chat/completions", "gateway", "HTTP/1.1"
    http.raw_body, http.size = body, len(body)
    for k, v in {
        ":method": "POST",
        ":path": "/v1/chat/completions",
        ":authority": "gateway",
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "content-length": str(len(body)),
        "user-agent": "OpenAI/Python 2.0",
        "x-request-id": "9b7f6a52-1c0e-4f1e-8d7a-2f1e0c9d8b7a",
        "x-envoy-auth-partial-body": "false",
    }.items():
        http.headers[k] = v
    req.attributes.source.address.socket_address.address = "10.0.0.7"
    return req.SerializeToString()


CASES = {
    "allowed": lambda: check_request(KEYS["enforced"], "azure/gpt-4o"),
    "blocked": lambda: check_request(KEYS["enforced"], "deepseek/deepseek-v3.2"),
    "no_policy": lambda: check_request(KEYS["open"], "azure/gpt-4o"),
    "body_1mib": lambda: check_request(KEYS["enforced"], "azure/gpt-4o", body_bytes=1 << 20),
    # The egress checkpoint: the gateway's own call, judged by the route's provider.
    "egress_allowed": lambda: egress_request("azure", "gpt-4o"),
    "egress_blocked": lambda: egress_request("deepseek", "deepseek-chat"),
}


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load(port: int, frame_file: Path, checks: int, clients: int = 2, streams: int = 16) -> dict:
    out = subprocess.run(
        [
            H2LOAD or "h2load",
            f"http://127.0.0.1:{port}{CHECK_PATH}",
            "-n",
            str(checks),
            "-c",
            str(clients),
            "-m",
            str(streams),
            "-d",
            str(frame_file),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out.stdout)
    if not done or int(done.group(2)) != checks:
        raise RuntimeError(f"h2load did not complete {checks} Checks:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return {"rps": float(rps.group(1)) if rps else None}


def measure(pid: int, run) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    before = cpu_seconds(pid)
    extra = run()
    return cpu_seconds(pid) - before, extra


class Servers:
    """The no-op server and authz, side by side on one Redis, for alternating rounds."""

    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.redis = RedisServer(workdir).start()
        admin = Admin(self.redis.url)
        admin.load_catalog(SAMPLE_CATALOG, actor="bench")
        for org, key in (("acme", KEYS["enforced"]), ("free", KEYS["open"])):
            admin.set_plan(org, "enterprise", actor="bench")
            admin.add_api_key(key, org, actor="bench")
        admin.set_policy("acme", actor="bench", **DEMO_POLICY)
        self.noop_port, self.authz_port, self.authz_http_port = free_port(), free_port(), free_port()
        self.noop = Proc(
            "noop", [sys.executable, str(BENCH / "noop_authz.py"), "--port", str(self.noop_port)], workdir / "noop.log"
        ).start()
        http, metrics = free_port(), free_port()
        self.authz_env = env = dict(
            os.environ,
            AUTHZ_REDIS_URL=self.redis.url,
            AUTHZ_GRPC_LISTEN=f"127.0.0.1:{self.authz_port}",
            AUTHZ_EXT_AUTHZ_HTTP_LISTEN=f"127.0.0.1:{self.authz_http_port}",  # the Check over HTTP too
            AUTHZ_HTTP_LISTEN=f"127.0.0.1:{http}",
            AUTHZ_ADMIN_GRPC_LISTEN=f"127.0.0.1:{free_port()}",
            AUTHZ_METRICS_LISTEN=f"127.0.0.1:{metrics}",
            AUTHZ_EVENTS_SPOOL_DIR=str(workdir / "spool"),
            AUTHZ_LOG_LEVEL="error",  # a security-event log line per block is its own cost: measured apart
            AUTHZ_REFRESH_INTERVAL_S="600",
            AUTHZ_MAX_STALENESS_S="1200",
            AUTHZ_ORG_ASSERTION_KEY=ASSERTION_KEY.decode(),
        )
        self.authz = Proc("authz", [sys.executable, "-m", "authz", "serve"], workdir / "authz.log", env=env).start()
        wait_until(
            lambda: self.authz.check_alive() and httpx.get(f"http://127.0.0.1:{metrics}/readyz").status_code == 200,
            30,
            "authz",
        )
        time.sleep(0.5)

    def pids(self) -> dict[str, int]:
        return {"noop": self.noop.popen.pid, "authz": self.authz.popen.pid}

    def stop(self) -> None:
        for proc in (self.noop, self.authz):
            proc.stop()
        self.redis.stop()


def direct(servers: Servers, rounds: int, checks: int) -> dict:
    """CPU µs per Check over h2load, per case and server, alternating servers each round."""
    frames = {}
    for case, make in CASES.items():
        path = servers.workdir / f"{case}.frame"
        path.write_bytes(grpc_frame(make()))
        frames[case] = path
    ports = {"noop": servers.noop_port, "authz": servers.authz_port}
    for port in ports.values():  # warm: caches filled, code paths hot
        for case, path in frames.items():
            h2load(port, path, 2000 if case != "body_1mib" else 100)
    samples: dict[str, dict[str, list[float]]] = {c: {"noop": [], "authz": []} for c in CASES}
    rps: dict[str, dict[str, list[float]]] = {c: {"noop": [], "authz": []} for c in CASES}
    for _ in range(rounds):
        for case, path in frames.items():
            n = checks if case != "body_1mib" else max(200, checks // 50)
            for name in ("noop", "authz"):
                used, extra = measure(servers.pids()[name], lambda p=ports[name], f=path, n=n: h2load(p, f, n))
                samples[case][name].append(used / n * 1e6)
                if extra["rps"]:
                    rps[case][name].append(extra["rps"])
    return summarize(samples, rps)


def in_process(servers: Servers, rounds: int, checks: int) -> dict:
    """CPU µs of the real gRPC Check (GrpcCheck over the app's Checker) per case, in this
    process, without gRPC: the same App, cache and event writer as `authz serve` (same Redis and
    data), each Check on a freshly parsed CheckRequest as gRPC hands one over. Our own work per
    Check, for comparison with what the same Checks cost a server (direct): between gRPC
    callbacks the code runs on cold caches."""
    import asyncio
    import gc

    import uvloop
    from envoy.service.auth.v3 import external_auth_pb2

    from authz import config
    from authz.logs import configure_logging
    from authz.server import app as server
    from authz.server.grpc_transport import GrpcCheck

    env = dict(servers.authz_env)
    for name in ("GRPC", "HTTP", "ADMIN_GRPC", "METRICS"):
        env[f"AUTHZ_{name}_LISTEN"] = f"127.0.0.1:{free_port()}"
    env["AUTHZ_EVENTS_SPOOL_DIR"] = str(servers.workdir / "spool-in-process")
    settings = config.load(environ=env)
    configure_logging(settings.log_level)

    async def measure() -> dict[str, float]:
        app = server.App(settings)
        await app.start()
        # The first sync runs in the background: measure Checks of the loaded state, not the
        # 503s of a catalog not loaded yet (a warm Check yields to nothing that would load it).
        deadline = time.monotonic() + 30
        while not app.ready() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        thresholds = gc.get_threshold()
        server.settle_gc()  # as `authz serve` does after start; undone below for the rest of the bench
        assert app.checker is not None
        check = GrpcCheck(app.checker).Check
        out: dict[str, float] = {}
        try:
            for case in ("allowed", "blocked", "no_policy"):
                raw = CASES[case]()
                for _ in range(200):  # warm
                    await check(external_auth_pb2.CheckRequest.FromString(raw), None)
                samples = []
                for _ in range(rounds):
                    requests = [external_auth_pb2.CheckRequest.FromString(raw) for _ in range(checks)]
                    started = time.process_time()
                    for request in requests:
                        await check(request, None)
                    samples.append((time.process_time() - started) / checks * 1e6)
                    await asyncio.sleep(0.05)  # let the event writer store what was blocked
                out[case] = round(statistics.median(samples), 1)
        finally:
            await app.stop()
            gc.set_threshold(*thresholds)
            gc.unfreeze()
        return out

    return uvloop.run(measure())


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (a supervisor and its workers)."""
    pids = {pid}
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids.update(int(child) for child in (task / "children").read_text().split())
    return sum(cpu_seconds(p) for p in pids)


def worker_scaling(servers: Servers, counts: tuple[int, ...], rounds: int, checks: int) -> dict:
    """Saturated direct rps and CPU per allowed Check of `authz serve --workers N` for each N
    (SO_REUSEPORT spreads h2load's 8 connections over the workers), alternating rounds."""
    frame = servers.workdir / "scaling.frame"
    frame.write_bytes(grpc_frame(CASES["allowed"]()))
    procs: dict[int, tuple[Proc, int]] = {}
    try:
        for n in counts:
            port, metrics = free_port(), free_port()
            env = dict(servers.authz_env, AUTHZ_GRPC_LISTEN=f"127.0.0.1:{port}")
            env.update(
                AUTHZ_HTTP_LISTEN=f"127.0.0.1:{free_port()}",
                AUTHZ_ADMIN_GRPC_LISTEN=f"127.0.0.1:{free_port()}",
                AUTHZ_METRICS_LISTEN=f"127.0.0.1:{metrics}",
                AUTHZ_EVENTS_SPOOL_DIR=str(servers.workdir / f"spool-{n}-workers"),
                AUTHZ_EXT_AUTHZ_HTTP_LISTEN="",  # gRPC only here (Servers' authz holds that port)
            )
            cmd = [sys.executable, "-m", "authz", "serve", "--workers", str(n)]
            proc = Proc(f"authz-{n}-workers", cmd, servers.workdir / f"authz-{n}-workers.log", env=env).start()
            wait_until(lambda m=metrics: httpx.get(f"http://127.0.0.1:{m}/readyz").status_code == 200, 30, "authz")
            procs[n] = (proc, port)
            h2load(port, frame, 4000, clients=8)  # warm every worker
        runs: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
        for _ in range(rounds):
            for n, (proc, port) in procs.items():
                before = tree_cpu_seconds(proc.popen.pid)
                rps = h2load(port, frame, checks, clients=8)["rps"] or 0.0
                runs[n].append((rps, (tree_cpu_seconds(proc.popen.pid) - before) / checks * 1e6))
    finally:
        for proc, _ in procs.values():
            proc.stop()
    return scaling_summary(runs)


def scaling_summary(runs: dict[int, list[tuple[float, float]]]) -> dict:
    """Workers -> median rps and CPU µs per Check of its (rps, µs) rounds."""
    return {
        str(n): {
            "rps": round(statistics.median(r for r, _ in samples)),
            "cpu_us": round(statistics.median(c for _, c in samples), 1),
        }
        for n, samples in runs.items()
    }


def summarize(samples: dict, rps: dict) -> dict:
    out = {}
    for case, by_server in samples.items():
        noop, authz = statistics.median(by_server["noop"]), statistics.median(by_server["authz"])
        # Each round's two runs are adjacent in time, so their ratio cancels the machine's slow
        # drift (a shared VM's speed moves ±15 % over minutes); the median of those ratios is
        # steadier than the ratio of the two medians.
        paired = [a / n for n, a in zip(by_server["noop"], by_server["authz"], strict=True) if n]
        out[case] = {
            "noop_cpu_us": round(noop, 1),
            "authz_cpu_us": round(authz, 1),
            "ratio": round(statistics.median(paired), 3) if paired else None,
            "noop_rps": round(statistics.median(rps[case]["noop"])) if rps[case]["noop"] else None,
            "authz_rps": round(statistics.median(rps[case]["authz"])) if rps[case]["authz"] else None,
            "samples": {k: [round(v, 1) for v in vs] for k, vs in by_server.items()},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checks", type=int, default=20000)
    parser.add_argument("--smoke", action="store_true", help="tiny runs: only check that it works")
    args = parser.parse_args()
    if not H2LOAD:
        raise SystemExit("h2load is not installed (apt install nghttp2-client; make bench installs it)")
    rounds, checks = (1, 400) if args.smoke else (args.rounds, args.checks)
    workdir = Path(tempfile.mkdtemp(prefix="authz-cpu-"))
    servers = Servers(workdir)
    try:
        result = {"direct": direct(servers, rounds, checks), "in_process": in_process(servers, rounds + 2, checks)}
    finally:
        servers.stop()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
