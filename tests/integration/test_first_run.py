"""First run: authz says why it is not ready, and what to do, in /readyz and in its log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devstack.stack import AUTHZ_LISTEN as LISTEN_KEYS
from devstack.stack import closed_port, listening_socket, wait_until


def serve(redis_url: str, tmp_path) -> tuple[subprocess.Popen, str]:
    """`authz serve` on ports the kernel picks (read back from its ports file)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ports_file = tmp_path / "authz.server.ports"
    ports_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "AUTHZ_REDIS_URL": redis_url,
        **{f"AUTHZ_{key.upper()}": "127.0.0.1:0" for key in LISTEN_KEYS},
        "AUTHZ_PORTS_FILE": str(ports_file),
        "AUTHZ_EVENTS_SPOOL_DIR": str(tmp_path / "spool"),
        "AUTHZ_REFRESH_INTERVAL_S": "0.5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "authz", "serve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    wait_until(lambda: ports_file.exists() or proc.poll() is not None, 20, "authz's ports file")
    return proc, f"http://{json.loads(ports_file.read_text())['metrics_listen']}/readyz"


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
    port = closed_port()  # nothing listens there
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


def test_a_second_authz_on_the_same_ports_exits_naming_the_setting_and_the_holder(redis_server, tmp_path):
    """Every listener sets SO_REUSEPORT (for --workers): without the claim a second authz would
    bind the same ports and silently take half of the Checks."""
    first, _ = serve(redis_server.url, tmp_path / "first")
    try:
        bound = json.loads((tmp_path / "first" / "authz.server.ports").read_text())
        for workers in ("1", "2"):
            env = {
                **os.environ,
                "AUTHZ_REDIS_URL": redis_server.url,
                **{f"AUTHZ_{key.upper()}": "127.0.0.1:0" for key in LISTEN_KEYS},
                "AUTHZ_GRPC_LISTEN": bound["grpc_listen"],
            }
            second = subprocess.run(
                [sys.executable, "-m", "authz", "serve", "--workers", workers],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            assert second.returncode == 1, second.stderr
            assert f"setting 'grpc_listen' = '{bound['grpc_listen']}': cannot listen there" in second.stderr
            assert f"held by pid {first.pid} " in second.stderr and "AUTHZ_GRPC_LISTEN" in second.stderr
            assert "Traceback" not in second.stderr
    finally:
        stop(first)


def test_a_port_held_by_a_plain_listener_is_named_too(redis_server, tmp_path):
    """A port held by a server that does not set SO_REUSEPORT (PostgreSQL, say): one line, no hang."""
    holder = listening_socket()
    address = f"127.0.0.1:{holder.getsockname()[1]}"
    env = {
        **os.environ,
        "AUTHZ_REDIS_URL": redis_server.url,
        **{f"AUTHZ_{key.upper()}": "127.0.0.1:0" for key in LISTEN_KEYS},
        "AUTHZ_HTTP_LISTEN": address,
    }
    out = subprocess.run([sys.executable, "-m", "authz", "serve"], capture_output=True, text=True, env=env, timeout=60)
    holder.close()
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"authz: setting 'http_listen' = '{address}': cannot listen there (Address already in use); "
        f"held by pid {os.getpid()} ({Path('/proc/self/comm').read_text().strip()}): stop that process or set "
        "http_listen (AUTHZ_HTTP_LISTEN) to a free port"
    ]
