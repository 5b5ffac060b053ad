"""Large bodies parsed in a helper process, so no org's Check waits on another org's parse.

A 24 MiB JSON body takes about half a second to parse; on the event loop every other org's
Check (and a cold key or policy load) waits behind it, and on a busy machine past Envoy's 2 s
timeout. Measured on this project's 2-core machine (three 24 MiB parses, the loop's longest
stall): in the loop 1.8 s; in a thread 0.8 s (the C decoder holds the GIL between its calls
back into Python); in a helper process 50 ms (handing it the bytes), at 0.25 s more per parse.
So bodies from `parse_offload_bytes` up go to `parse_workers` processes; smaller ones, the
common case, are parsed in place. The helpers run at a lower CPU priority (nice 10): a parse is
bulk work, and on a busy machine the Checks the event loop answers come first. They are started
with `spawn` (nothing of this process's state, sockets or threads is inherited) when the service
starts, so no Check waits for one to boot, and end with it, however it ends: a service killed
(SIGKILL, the OOM killer) takes its helpers along (Linux's parent-death signal), so none is
left behind holding memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import signal

from authz.check import parsing
from authz.check.request import RequestFacts
from authz.policy.gateways.description import Contract
from authz.server.parent import end_with_parent

HELPER_NICENESS = 10  # added to the service's own niceness


def _helper_started(service_pid: int) -> None:
    """In each helper as it starts: a lower priority, and the end of the service is its end."""
    os.nice(HELPER_NICENESS)
    end_with_parent(signal.SIGKILL, service_pid)


class ParsePool:
    def __init__(self, workers: int, min_bytes: int):
        self.min_bytes = min_bytes
        self._pool = (
            concurrent.futures.ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_helper_started,
                initargs=(os.getpid(),),
            )
            if workers > 0
            else None
        )

    def wants(self, facts: RequestFacts) -> bool:
        """Whether this request's body is parsed in a helper process."""
        return self._pool is not None and len(facts.body) >= self.min_bytes

    async def requested(self, facts: RequestFacts, contract: Contract | None) -> parsing.Requested:
        """parsing.requested, in a helper process."""
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._pool, parsing.requested, facts, contract)

    async def start(self) -> None:
        """Boot the helpers now, not under the first large body."""
        if self._pool is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, int, 0)

    def close(self) -> None:
        """Stop the helpers now. They are killed, not asked: a parse holds nothing worth waiting
        for, and the executor's stop message can be lost as a worker process exits (seen: a
        worker's exit blocked for good, joining a helper that never heard it)."""
        if self._pool is not None:
            helpers = list(self._pool._processes.values())  # no public way to end them at once
            self._pool.shutdown(wait=False, cancel_futures=True)
            for helper in helpers:
                helper.kill()
