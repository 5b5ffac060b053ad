"""Fixtures the e2e modules share."""

from __future__ import annotations

import pytest

from support.capture import Capture


@pytest.fixture(scope="module")
def capture():
    """A loopback stand-in for every provider API, one per module (support.capture)."""
    with Capture.running() as server:
        yield server


@pytest.fixture(scope="session")
def llmgateway_gateway(tmp_path_factory):
    """LLMGateway's real gateway (support.llmgateway), started once: each module seeds its own
    organizations, whose provider keys point at its own capture server."""
    from support import llmgateway

    with llmgateway.running(tmp_path_factory.mktemp("llmgateway")) as gateway:
        yield gateway
