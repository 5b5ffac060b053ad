"""metrics.CheckTally: counts kept as plain numbers reach the Prometheus exposition exactly as
one observe()/inc() per Check would have put them there."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from authz import metrics
from authz.reasons import Reason


def _sample(name: str, **labels: str) -> float:
    value = metrics.registry().get_sample_value(name, labels)
    return value or 0.0


def test_a_flushed_tally_is_what_one_call_per_check_gives():
    samples = [0.00004, 0.00012, 0.0009, 0.003, 0.3, 0.00005]
    # the same observations through prometheus_client's own observe(), in a registry of its own
    reference = CollectorRegistry()
    mirror = Histogram("mirror_seconds", "", buckets=metrics.CHECK_SECONDS._upper_bounds[:-1], registry=reference)
    for s in samples:
        mirror.observe(s)
    metrics.TALLY.flush()  # whatever earlier Checks in this process left unflushed
    before = {le: _sample("authz_check_duration_seconds_bucket", le=le) for le in _les()}
    allowed_before = _sample("authz_decisions_total", result="allowed", reason="compliant")
    hits_before = _sample("authz_cache_lookups_total", cache="org", result="hit")
    for s in samples:
        metrics.TALLY.check("allowed", Reason.COMPLIANT, s)
        metrics.TALLY.cache[("org", "hit")] += 1
    metrics.TALLY.flush()
    for le in _les():
        got = _sample("authz_check_duration_seconds_bucket", le=le) - before[le]
        assert got == reference.get_sample_value("mirror_seconds_bucket", {"le": le}), le
    assert _sample("authz_decisions_total", result="allowed", reason="compliant") - allowed_before == len(samples)
    assert _sample("authz_cache_lookups_total", cache="org", result="hit") - hits_before == len(samples)
    assert b"authz_check_duration_seconds_sum" in generate_latest(metrics.registry())
    metrics.TALLY.flush()  # nothing left to add: a second flush changes nothing
    assert _sample("authz_decisions_total", result="allowed", reason="compliant") - allowed_before == len(samples)


def _les() -> list[str]:
    return [str(b) if b != float("inf") else "+Inf" for b in metrics.CHECK_SECONDS._upper_bounds]
