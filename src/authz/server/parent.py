"""A child process that ends with the process that started it.

A supervisor killed (SIGKILL, the OOM killer, a stop that timed out) cannot stop its children:
without this, a worker or a parse helper lives on, orphaned, holding its port and memory. On
Linux the kernel sends the child `signum` when its parent ends (the parent-death signal of
prctl(2); strictly, when the thread that started it ends: both callers start children from
their main thread).
"""

from __future__ import annotations

import ctypes
import os
import sys

_PR_SET_PDEATHSIG = 1  # prctl(2)


def end_with_parent(signum: int, parent_pid: int) -> None:
    """In the child, first thing: `signum` when the parent is gone. If the parent ended before
    this call, the child exits now."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent_pid:
        os._exit(0)
