"""Logging: structlog JSON lines on stdout, one write per line (so lines from several workers
sharing stdout never interleave), with the process id of the worker that wrote it."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import structlog


def _add_pid(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["pid"] = os.getpid()  # which worker, with --workers N
    return event


def _add_time(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # One time field per line: a security event logged as it is recorded keeps its own "time".
    if "time" not in event:
        event["time"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return event


def configure_logging(level: str) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_pid,
            _add_time,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write() per line: lines from several workers sharing stdout never interleave.
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
