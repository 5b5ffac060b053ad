"""The tests that read the wall clock (marked `wall_clock`) pass at any instant: re-run under
libfaketime (Debian's faketime, installed by `make test`) just before and after noon UTC, at
the last second of a day, the end of February and the end of a year. A catalog age printed
with rounding said "201 days" from noon on: this is the test that would have caught it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

INSTANTS = [
    "2026-12-02 12:01:00",
    "2026-12-02 23:59:59",
    "2027-02-28 23:59:40",
    "2026-12-31 23:59:50",
]


@pytest.mark.parametrize("instant", INSTANTS)
def test_the_wall_clock_tests_pass_at(instant):
    faketime = shutil.which("faketime")
    assert faketime, "make test installs Debian's faketime"
    env = {**os.environ, "TZ": "UTC"}
    out = subprocess.run(
        [
            faketime,
            instant,
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "wall_clock",
            "tests",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout.strip().splitlines()[-1] and "deselected" in out.stdout
