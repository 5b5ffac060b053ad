"""The `authz` command in a child process, as an operator runs it against one Redis."""

from __future__ import annotations

import subprocess
import sys

Result = subprocess.CompletedProcess[str]


def authz(redis_url: str, *args: str, actor: str, env: dict[str, str] | None = None) -> Result:
    """`authz --actor ACTOR ARGS...` with only AUTHZ_REDIS_URL (and `env`) set."""
    environ = {"AUTHZ_REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", **(env or {})}
    command = [sys.executable, "-m", "authz", "--actor", actor, *args]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)
