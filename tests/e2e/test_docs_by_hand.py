"""docs/operating.md's "by hand" block, run as written (bash, `.venv/bin` on PATH) but with
each documented port moved to a free one (in the block, in authz's listen settings and in a
copy of the Envoy config), so a `make run` on the documented ports beside it is never touched.
Its last request must be the 403 the docs promise."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.envoy_config import render
from devstack.stack import Proc, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def documented_block() -> str:
    text = (ROOT / "docs" / "operating.md").read_text()
    section = text.split("## Running it", 1)[1]
    [block] = re.findall(r"```sh\n(.*?)```", section.split("Settings come from", 1)[0], flags=re.S)
    return block


# The block's ports (Redis, Envoy and its admin, the gateway) and authz's defaults.
DOCUMENTED_PORTS = (6390, 8080, 9901, 8000, 9001, 9090, 9002, 9091)


def test_the_by_hand_steps_work_as_written(tmp_path):
    (tmp_path / "catalog").symlink_to(ROOT / "catalog")  # the block runs from the repository's root
    import httpx

    gateway = Proc(
        "gateway",
        [sys.executable, "-m", "devstack.standin_gateway", "--port", "0", "--port-file", str(tmp_path / "gw")],
        tmp_path / "gw.log",
    ).start()
    wait_until(lambda: (tmp_path / "gw").exists(), 15, "stand-in gateway's port")
    port = {p: free_port() for p in DOCUMENTED_PORTS} | {8000: int((tmp_path / "gw").read_text())}
    gateway_url = f"http://127.0.0.1:{port[8000]}"
    (tmp_path / "envoy").mkdir()
    Path(render(ROOT / "envoy" / "front-proxy.yaml", port, directory=tmp_path)).rename(
        tmp_path / "envoy" / "front-proxy.yaml"
    )
    block = documented_block()
    for documented in DOCUMENTED_PORTS:
        block = re.sub(rf"\b{documented}\b", str(port[documented]), block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["AUTHZ_API"] = f"http://127.0.0.1:{port[9090]}"
    for key, documented in (("GRPC", 9001), ("HTTP", 9090), ("ADMIN_GRPC", 9002), ("METRICS", 9091)):
        env[f"AUTHZ_{key}_LISTEN"] = f"127.0.0.1:{port[documented]}"
    shell = subprocess.Popen(
        ["bash", "-e", "-c", block],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the background services it starts share its process group
    )
    try:
        wait_until(lambda: httpx.get(gateway_url + "/_requests").is_success, 15, "stand-in gateway")
        out, err = shell.communicate(timeout=120)
        assert shell.returncode == 0, err + (tmp_path / "authz.log").read_text()[-3000:]
        last = out.strip().splitlines()[-1]
        error = json.loads(last)["error"]
        assert error["code"] == "provider_not_compliant" and error["provider"] == "deepseek"
        assert error["failed_requirements"] == ["gdpr", "no_prompt_training"]
        assert httpx.get(gateway_url + "/_requests").json() == []  # nothing reached the gateway
    finally:
        try:
            os.killpg(shell.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        gateway.stop()
