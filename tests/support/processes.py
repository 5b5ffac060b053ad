"""Whether a process is running, by pid, for tests that watch processes they did not start
themselves (a service's workers and helpers)."""

from __future__ import annotations

from pathlib import Path


def running(pid: int) -> bool:
    """True while the process exists and has not exited (a zombie waiting for its parent's
    wait() has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
