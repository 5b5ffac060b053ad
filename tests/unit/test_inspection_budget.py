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


def test_token_buckets_forget_the_least_recently_charged_key_first_and_keep_exactly_their_bound():
    """Bounded memory under a flood of new keys: the key charged longest ago goes (it only gets a
    full bucket back); the busy key keeps its debt."""
    bucket = buckets.TokenBuckets(per_s=0.0, burst=10.0, max_keys=3)
    for key in ("a", "b", "c"):
        bucket.charge(key, 10)
    bucket.charge("a", 1)  # "a" is now the most recent
    bucket.charge("d", 10)  # one more than the bound: "b", the least recent, goes
    assert len(bucket) == 3 and "b" not in bucket and "a" in bucket and "d" in bucket
    assert bucket.level("a") == -1.0  # its debt kept
    assert bucket.level("b") == 10.0  # forgotten: a full bucket again
    assert buckets.TokenBuckets(1.0, 1.0)._max == 10_000


def test_token_buckets_refill_from_the_time_given():
    bucket = buckets.TokenBuckets(per_s=2.0, burst=10.0)
    bucket._set("k", 0.0, 100.0)
    assert bucket.level("k", 101.5) == 3.0
    assert bucket.level("k", 200.0) == 10.0  # never above the burst
    assert bucket.level("new", 5.0) == 10.0
