"""`authz serve --workers N`: N worker processes sharing the service ports (SO_REUSEPORT).

Python runs one core per process; the Check path is CPU-bound, so a sidecar on a multi-core
node scales with worker processes. The supervisor starts them, restarts one that dies (with
a back-off, so a crash loop does not spin), forwards SIGTERM/SIGINT so every worker drains,
and exits when all have stopped. Prometheus samples from all workers are aggregated through
PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:  # the worker imports config itself, after setting up metrics
    from authz.config import Settings

log = structlog.get_logger("authz.server.supervisor")

_RESTART_BACKOFF_S = (0.5, 1, 2, 5, 10)


def _worker_main(settings_fields: dict[str, Any], multiproc_dir: str, supervisor_pid: int) -> None:
    # prometheus_client picks its multiprocess mode when authz.metrics is first imported, so the
    # settings arrive as a plain dict: unpickling a Settings would import the package first.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; SIGTERM drains
    # A supervisor gone however it went (SIGKILL, the OOM killer): the worker drains and ends
    # too, rather than serve on, orphaned, on the shared ports.
    from authz.server.parent import end_with_parent

    end_with_parent(signal.SIGTERM, supervisor_pid)
    from authz.config import Settings
    from authz.server.app import run_worker

    run_worker(Settings(**settings_fields))


def supervise(settings: Settings, workers: int) -> int:
    from prometheus_client import multiprocess

    multiproc_dir = tempfile.mkdtemp(prefix="authz-metrics-")
    context = multiprocessing.get_context("spawn")
    stopping = False
    procs: dict[int, SpawnProcess] = {}
    crashes: dict[int, int] = {}

    def start(slot: int) -> None:
        proc = context.Process(
            target=_worker_main,
            args=(dataclasses.asdict(settings), multiproc_dir, os.getpid()),
            name=f"authz-worker-{slot}",
        )
        proc.start()
        procs[slot] = proc
        log.info("worker_started", slot=slot, worker_pid=proc.pid)

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(workers):
        start(slot)
    exit_code = 0
    try:
        while procs:
            time.sleep(0.2)
            for slot, proc in list(procs.items()):
                if proc.is_alive():
                    continue
                proc.join()
                multiprocess.mark_process_dead(proc.pid, multiproc_dir)  # type: ignore[no-untyped-call]
                del procs[slot]
                if stopping:
                    exit_code = max(exit_code, proc.exitcode or 0)
                    continue
                crashes[slot] = crashes.get(slot, 0) + 1
                delay = _RESTART_BACKOFF_S[min(crashes[slot], len(_RESTART_BACKOFF_S)) - 1]
                log.error("worker_died", slot=slot, worker_pid=proc.pid, exit_code=proc.exitcode, restart_in_s=delay)
                time.sleep(delay)
                if not stopping:
                    start(slot)
    finally:
        shutil.rmtree(multiproc_dir, ignore_errors=True)
    log.info("workers_stopped", exit_code=exit_code)
    return exit_code
