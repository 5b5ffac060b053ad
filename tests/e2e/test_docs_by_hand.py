"""docs/operating.md's "by hand" block, run exactly as written (bash, `.venv/bin` on PATH),
in front of the stand-in gateway on :8000: its last request must be the 403 the docs promise."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from authz.testing.stack import Proc, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def documented_block() -> str:
    text = (ROOT / "docs" / "operating.md").read_text()
    section = text.split("## Running it", 1)[1]
    [block] = re.findall(r"```sh\n(.*?)```", section.split("Settings come from", 1)[0], flags=re.S)
    return block


def test_the_by_hand_steps_work_as_written(tmp_path):
    for name in ("catalog", "envoy"):  # the block runs from the repository's root
        (tmp_path / name).symlink_to(ROOT / name)
    import httpx

    gateway = Proc(
        "gateway", [sys.executable, "-m", "authz.testing.standin_gateway", "--port", "8000"], tmp_path / "gw.log"
    ).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHZ_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    shell = subprocess.Popen(
        ["bash", "-e", "-c", documented_block()],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the background services it starts share its process group
    )
    try:
        wait_until(lambda: httpx.get("http://127.0.0.1:8000/_requests").is_success, 15, "stand-in gateway")
        out, err = shell.communicate(timeout=120)
        assert shell.returncode == 0, err + (tmp_path / "authz.log").read_text()[-3000:]
        last = out.strip().splitlines()[-1]
        error = json.loads(last)["error"]
        assert error["code"] == "provider_not_compliant" and error["provider"] == "deepseek"
        assert error["failed_requirements"] == ["gdpr", "no_prompt_training"]
        assert httpx.get("http://127.0.0.1:8000/_requests").json() == []  # nothing reached the gateway
    finally:
        try:
            os.killpg(shell.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        gateway.stop()
