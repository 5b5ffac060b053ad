"""Run a module's e2e tests over both Check transports (gRPC, and Envoy's HTTP ext_authz):

    stack = both_transports()

at module level overrides the session `stack` with one parametrized over
devstack.stack.TRANSPORTS; every test (and the `org` fixture) then runs against each.
"""

from __future__ import annotations

from typing import Any

import pytest

from devstack.stack import TRANSPORTS, Stack


def both_transports() -> Any:
    @pytest.fixture(scope="module", params=TRANSPORTS)
    def stack(request: pytest.FixtureRequest, stack: Stack) -> Stack:
        return request.getfixturevalue("http_stack") if request.param == "http" else stack

    return stack
