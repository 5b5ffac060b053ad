"""Arguments as operators write them: one-line refusals with an example, never a traceback."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from authz.cli.events import since_moment

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("written", "moment"),
    [
        ("1h", datetime(2026, 12, 7, 11, 0, tzinfo=UTC)),
        ("24h", datetime(2026, 12, 6, 12, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
        ("30m", datetime(2026, 12, 7, 11, 30, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-11-25T09:00", datetime(2026, 11, 25, 9, tzinfo=UTC)),
    ],
)
def test_since_takes_durations_dates_and_times(written, moment):
    assert since_moment(written, NOW) == moment


@pytest.mark.parametrize("written", ["yesterday", "1 day", "-1h", "", "2026-13-01"])
def test_since_refuses_anything_else_with_an_example(written):
    with pytest.raises(argparse.ArgumentTypeError, match="write e.g. 24h, 7d, 2026-12-01"):
        since_moment(written, NOW)
