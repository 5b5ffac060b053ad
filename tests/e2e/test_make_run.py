"""`make run` as a newcomer uses it: started in the background, waited for, used with the
openai SDK through Envoy at the address it printed, stopped with Ctrl-C, started again on the
same state (what the first run stored is still there). It runs with PORT_BASE=0 (ports the
kernel picks), so a `make run` of a developer's on the documented ports is left alone."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def start(state: Path) -> tuple[subprocess.Popen, str, str]:
    """make run, its printout up to "ready:", and the Envoy address it printed."""
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", "PORT_BASE=0"],
        cwd=ROOT,
        env={**os.environ, "RUN_STATE_DIR": str(state)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches all
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        if line.startswith("ready:"):
            guide = "".join(lines)
            envoy = re.search(r"Envoy \(send requests here\)\s+(http://127\.0\.0\.1:\d+)", guide)
            if envoy:
                return proc, guide, envoy.group(1)
            break
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("make run never said ready:\n" + "".join(lines)[-4000:])


def assert_examples_hold(guide: str, client: openai.OpenAI) -> None:
    """The printout's two curl examples, derived from the stored policy: the first passes, the
    one marked # 403 is refused (they went stale after a policy change when they were fixed text)."""
    allowed, blocked = re.findall(r'"model": "([^"]+)", "messages"', guide)[:2]
    assert re.search(rf'"model": "{re.escape(blocked)}".*# 403', guide), guide
    hi = [{"role": "user", "content": "hi"}]
    assert client.chat.completions.create(model=allowed, messages=hi).choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=blocked, messages=hi)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "authz"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def printed(guide: str, label: str) -> str:
    return re.search(rf"{label}\s+(http://127\.0\.0\.1:\d+)", guide).group(1)


def ctrl_c(proc: subprocess.Popen, envoy: str) -> str:
    """Ctrl-C as a terminal sends it, to make and everything it started; all of it must end."""
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    # make re-raises the interrupt on itself once its child has finished cleanly
    assert proc.returncode in (0, -signal.SIGINT), out[-3000:]
    assert "stopped." in out, out[-3000:]
    with pytest.raises(httpx.ConnectError):  # nothing left listening where it served
        httpx.get(envoy + "/", timeout=2)
    return out


def test_make_run_starts_serves_stops_and_keeps_its_state(tmp_path):
    state = tmp_path / "state"
    proc, guide, envoy = start(state)
    try:
        api_key = re.search(r"API key\s+(\S+)", guide).group(1)
        token = re.search(r"admin token \(12 h\)\s+(\S+)", guide).group(1)
        admin_api = printed(guide, "admin API")
        assert "/settings#token=" in guide and "created" in guide
        assert "import openai" in guide and "import anthropic" in guide and f"curl -s {envoy}" in guide
        client = openai.OpenAI(base_url=envoy + "/v1", api_key=api_key, max_retries=0)
        assert_examples_hold(guide, client)
        # One CLI context: the printed export line serves the Redis verbs and the admin API's.
        context = {"AUTHZ_CONFIG": re.search(r"export AUTHZ_CONFIG=(\S+)", guide).group(1), "PATH": "/usr/bin:/bin"}
        policy = cli(context, "policy", "get", "acme-corp")
        typo = cli(context, "policy", "get", "acme-crop")  # not an empty policy: refused, with the org meant
        assert typo.returncode == 1 and "no org 'acme-crop'; did you mean 'acme-corp'?" in typo.stderr, typo.stderr
        assert policy.returncode == 0, policy.stderr
        assert json.loads(policy.stdout)["policy"]["mode"] == "POLICY_MODE_ENFORCE"  # stored unspecified
        shown = cli(context, "org", "show", "acme-corp")
        assert shown.returncode == 0 and "policy v1 enabled, 1 API key" in shown.stdout, shown.stderr
        reply = client.chat.completions.create(model="azure/gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        with pytest.raises(openai.PermissionDeniedError, match="no prompt logging"):
            client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
        # a change made while it runs: allow OpenAI's prompt logging (drop that requirement)
        api = admin_api + "/v1/orgs/acme-corp/policy"
        auth = {"authorization": f"Bearer {token}"}
        stored = httpx.get(api, headers=auth).json()
        changed = {**stored["policy"], "require_no_prompt_logging": False}
        put = httpx.put(api, headers=auth, json={"policy": changed, "expected_version": stored["policy"]["version"]})
        assert put.status_code == 200, put.text
    finally:
        ctrl_c(proc, envoy)
    assert (state / "redis" / "appendonlydir").exists() or (state / "redis" / "appendonly.aof").exists()

    proc, guide, envoy = start(state)
    try:
        assert "reused from the last run" in guide and re.search(r"API key\s+(\S+)", guide).group(1) == api_key
        client = openai.OpenAI(base_url=envoy + "/v1", api_key=api_key, max_retries=0)
        assert "no prompt logging" not in guide.split("org ", 1)[1].splitlines()[0]  # the policy as it is now
        assert_examples_hold(guide, client)
        # the policy change survived the restart: OpenAI is allowed now
        reply = client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
    finally:
        ctrl_c(proc, envoy)


def test_make_run_refuses_a_redis_it_did_not_start_and_writes_nothing_there(tmp_path):
    """A foreign Redis on the port make run would use for its own: make run stops before starting
    anything, naming the port and its holder (it used to print "created" and write its demo org
    into that Redis)."""
    from devstack.stack import RedisServer, free_port

    foreign = None
    for _ in range(20):  # a base whose eight ports are free but for Redis's, which the foreign one takes
        base = free_port()
        if base + 7 > 65535 or base < 1024:
            continue
        candidate = RedisServer(tmp_path, port=base + 7)
        try:
            foreign = candidate.start()
            break
        except RuntimeError:
            continue
    assert foreign is not None, "no free port range for the test"
    try:
        out = subprocess.run(
            ["make", "--no-print-directory", "run", f"PORT_BASE={base}"],
            cwd=ROOT,
            env={**os.environ, "RUN_STATE_DIR": str(tmp_path / "state")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode != 0
        assert f"redis :{base + 7} (held by pid {foreign.proc.popen.pid} (redis-server))" in out.stdout + out.stderr
        assert "created" not in out.stdout and "Traceback" not in out.stderr
        assert foreign.client().dbsize() == 0
    finally:
        foreign.stop()
