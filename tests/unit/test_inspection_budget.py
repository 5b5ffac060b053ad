"""An org's large bodies are inspected within a byte budget; small ones are never counted."""

from __future__ import annotations

import pytest

from authz.config import ConfigError, load
from authz.server import buckets
from authz.server.inspection_budget import HEAVY_BYTES, InspectionBudget

MIB = 1024 * 1024


def test_small_bodies_are_never_counted_and_large_ones_draw_the_orgs_own_bucket(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(buckets.time, "monotonic", lambda: clock[0])
    budget = InspectionBudget(bytes_per_s=16 * MIB, burst_bytes=64 * MIB)
    assert all(budget.allow("flood", HEAVY_BYTES - 1) for _ in range(10_000))
    assert [budget.allow("flood", 32 * MIB) for _ in range(3)] == [True, True, False]
    assert budget.allow("other", 32 * MIB)  # another org's bucket is untouched
    clock[0] += 2.0  # 2 s at 16 MiB/s: one more 32 MiB body
    assert budget.allow("flood", 32 * MIB) and not budget.allow("flood", 32 * MIB)


def test_no_limit_when_the_rate_is_zero():
    assert all(InspectionBudget(0, 0).allow("org", 32 * MIB) for _ in range(100))


def test_a_burst_too_small_for_one_body_is_a_config_error():
    with pytest.raises(ConfigError, match="inspection_burst_mib"):
        load(None, {"AUTHZ_INSPECTION_BURST_MIB": "8"})
    assert load(None, {"AUTHZ_INSPECTION_BURST_MIB": "8", "AUTHZ_INSPECTION_MIB_PER_S": "0"}).inspection_mib_per_s == 0
