"""Large bodies parsed in a helper process (authz.server.parse_pool) find exactly what the same
parse on the event loop finds, and the loop stays free meanwhile."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from authz.check import parsing
from authz.check.request import ReadConfig, read
from authz.policy.gateways import contract_for as for_profile
from authz.server.parse_pool import HELPER_NICENESS, ParsePool
from devstack.stack import wait_until
from support.checkrequests import check_request
from support.processes import running

NAMES = ReadConfig(model="x-model")


def facts(body: bytes | dict, path: str = "/v1/chat/completions", **kw):
    return read(check_request(body, path=path, **kw), NAMES)


BODIES = [
    {"model": "azure/gpt-4o", "messages": [{"role": "user", "content": "x" * 2_000_000}]},
    {"model": "a", "MODEL": "b", "messages": []},  # ambiguous: refused the same way
    {"model": "gpt-4o", "fallbacks": ["deepseek-v3.2", {"model": "claude"}], "messages": []},
    b"{not json",
]


@pytest.mark.parametrize("body", BODIES, ids=["large", "ambiguous", "fallbacks", "not-json"])
def test_the_helper_finds_what_the_loop_finds(body):
    contract = for_profile("litellm")

    async def both():
        pool = ParsePool(1, 1)
        try:
            await pool.start()
            request = facts(body)
            assert pool.wants(request)
            return await pool.requested(request, contract), parsing.requested(request, contract)
        finally:
            pool.close()

    helper, inline = asyncio.run(both())
    assert helper == inline


def test_only_bodies_from_the_threshold_up_go_to_the_helper():
    pool = ParsePool(1, 1024)
    try:
        assert not pool.wants(facts({"model": "m", "messages": []}))
        assert pool.wants(facts({"model": "m", "content": "x" * 2000}))
        assert not ParsePool(0, 1).wants(facts({"model": "m", "content": "x" * 2000}))  # off
    finally:
        pool.close()


def test_the_event_loop_runs_on_while_a_large_body_is_parsed():
    item = json.dumps({"role": "user", "content": "x" * 40, "model": "m"})
    body = ('{"model": "azure/gpt-4o", "messages": [' + ", ".join([item] * 300_000) + "]}").encode()

    async def run() -> float:
        pool = ParsePool(1, 1)
        await pool.start()
        stalls: list[float] = []
        done = asyncio.Event()

        async def tick() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await asyncio.sleep(0.002)
                stalls.append(time.perf_counter() - started)

        ticker = asyncio.create_task(tick())
        try:
            found = await pool.requested(facts(body), None)
            assert found == (("azure/gpt-4o", ""),) or isinstance(found, parsing.Refusal)
        finally:
            done.set()
            await ticker
            pool.close()
        return max(stalls)

    # In the loop the parse would stall it for as long as it takes; in the helper, the loop
    # waits only for the bytes to be handed over (measured: 1.8 s against 50 ms for 24 MiB).
    started = time.perf_counter()
    parsing.requested(facts(body), None)
    inline = time.perf_counter() - started
    assert asyncio.run(run()) < inline / 2


def test_the_helpers_run_below_the_services_priority():
    # A parse is bulk work: on a busy machine the event loop's Checks get the CPU first.
    async def helper_niceness():
        pool = ParsePool(1, 1)
        try:
            await pool.start()
            assert pool._pool is not None
            return await asyncio.get_running_loop().run_in_executor(pool._pool, os.nice, 0)
        finally:
            pool.close()

    assert asyncio.run(helper_niceness()) == os.nice(0) + HELPER_NICENESS


SERVICE = """
import asyncio, os, sys
from authz.server.parse_pool import ParsePool

async def main():
    pool = ParsePool(2, 1)
    await pool.start()
    pids = await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(pool._pool, os.getpid) for _ in range(8)))
    print(" ".join(map(str, sorted(set(pids)))), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_a_killed_service_takes_its_helpers_along():
    """SIGKILL (or the OOM killer) gives the service no chance to stop its helpers: they go
    with it (a helper left behind once kept running, orphaned, after a stop that timed out)."""
    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    try:
        helpers = [int(p) for p in service.stdout.readline().split()]
        assert helpers and all(running(p) for p in helpers)
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait(10)
    wait_until(lambda: not any(running(p) for p in helpers), 10, "the helpers to end with the service")
