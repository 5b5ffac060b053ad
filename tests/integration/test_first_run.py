"""First run: authz says why it is not ready, and what to do, in /readyz and in its log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from authz.testing.stack import free_port


def serve(redis_url: str, tmp_path) -> tuple[subprocess.Popen, str]:
    ports = {name: free_port() for name in ("grpc", "http", "metrics", "admin_grpc")}
    env = {
        **os.environ,
        "AUTHZ_REDIS_URL": redis_url,
        "AUTHZ_GRPC_LISTEN": f"127.0.0.1:{ports['grpc']}",
        "AUTHZ_HTTP_LISTEN": f"127.0.0.1:{ports['http']}",
        "AUTHZ_METRICS_LISTEN": f"127.0.0.1:{ports['metrics']}",
        "AUTHZ_ADMIN_GRPC_LISTEN": f"127.0.0.1:{ports['admin_grpc']}",
        "AUTHZ_EVENTS_SPOOL_DIR": str(tmp_path / "spool"),
        "AUTHZ_REFRESH_INTERVAL_S": "0.5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "authz", "serve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    return proc, f"http://127.0.0.1:{ports['metrics']}/readyz"


def reasons_when(url: str, wanted: str, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    reasons: list[str] = []
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            reasons = r.json().get("reasons", [])
            if r.status_code == 503 and any(wanted in reason for reason in reasons):
                return reasons
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/readyz never said {wanted!r}; last reasons: {reasons}")


def stop(proc: subprocess.Popen) -> list[dict]:
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_an_unreachable_redis_is_named_with_its_url_but_not_its_password(tmp_path):
    port = free_port()  # nothing listens there
    proc, readyz = serve(f"redis://:hunter2@127.0.0.1:{port}/0", tmp_path)
    try:
        [reason] = reasons_when(readyz, "Redis unreachable")
        assert f"redis://:***@127.0.0.1:{port}/0" in reason and "hunter2" not in reason
        assert "AUTHZ_REDIS_URL" in reason
    finally:
        lines = stop(proc)
    not_ready = [line for line in lines if line["event"] == "not_ready"]
    assert not_ready and any("Redis unreachable" in r for r in not_ready[-1]["reasons"])
    # one time field per line, and no secret in any line
    assert all("time" in line and "timestamp" not in line for line in lines)
    assert not any("hunter2" in json.dumps(line) for line in lines)
    assert not [line for line in lines if line["event"] == "alert_delivery_paused_redis_unreachable"][1:]


def test_an_empty_redis_says_no_catalog_and_the_command_that_loads_one(redis_server, tmp_path):
    proc, readyz = serve(redis_server.url, tmp_path)
    try:
        [reason] = reasons_when(readyz, "no catalog loaded")
        assert "authz catalog load catalog/catalog.json" in reason and redis_server.url in reason
    finally:
        stop(proc)
