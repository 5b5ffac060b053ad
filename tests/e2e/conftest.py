"""Fixtures the e2e modules share."""

from __future__ import annotations

import pytest

from support.capture import Capture


@pytest.fixture(scope="module")
def capture():
    """A loopback stand-in for every provider API, one per module (support.capture)."""
    with Capture.running() as server:
        yield server
