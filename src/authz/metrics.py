"""Prometheus metrics. Labelled children are resolved once here, not on every request.

With several worker processes (PROMETHEUS_MULTIPROC_DIR set by the supervisor before any
worker starts), each worker writes its samples to that directory and /metrics aggregates them.
"""

from __future__ import annotations

import bisect
import os
from collections import Counter as Tallies

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from authz import __version__
from authz.reasons import OUTCOMES, Reason

# The running version, as a constant-1 gauge labelled with it (an Info metric has no
# multiprocess mode; with several workers the value stays 1).
BUILD_INFO = Gauge("authz_build_info", "The running authz version (value 1).", ["version"], multiprocess_mode="max")
BUILD_INFO.labels(version=__version__).set(1)

_decisions = Counter(
    "authz_decisions_total",
    "Check decisions by result (allowed, denied, dry_run) and reason.",
    ["result", "reason"],
)


def _results(reason: Reason) -> tuple[str, ...]:
    if OUTCOMES[reason].http_status == 200:
        return ("allowed",)
    return ("denied", "dry_run") if OUTCOMES[reason].policy_block else ("denied",)


DECISIONS = {
    (result, reason): _decisions.labels(result, reason.value) for reason in Reason for result in _results(reason)
}

CHECK_SECONDS = Histogram(
    "authz_check_duration_seconds",
    "Time spent in the Check handler.",
    buckets=(
        0.00005,
        0.0001,
        0.00015,
        0.0002,
        0.0003,
        0.0005,
        0.00075,
        0.001,
        0.002,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
    ),
)

_cache = Counter("authz_cache_lookups_total", "In-process cache lookups.", ["cache", "result"])
CACHE = {(c, r): _cache.labels(c, r) for c in ("org", "apikey") for r in ("hit", "miss")}

# Policy blocks (enforced or dry run) by what failed. Bounded labels: a catalog provider id, or
# "custom" for an org's own provider (tenants name those); a requirement name from the registry.
BLOCKED_PROVIDERS = Counter(
    "authz_blocked_providers_total",
    "Providers blocked in policy-block decisions (one per provider per decision), by provider.",
    ["provider"],
)
BLOCKED_REQUIREMENTS = Counter(
    "authz_failed_requirements_total",
    "Requirements failed by blocked providers in policy-block decisions, by requirement and cause (unknown, not_met).",
    ["requirement", "cause"],
)
READY = Gauge(
    "authz_ready",
    "1 when this authz is ready to answer Checks (catalog loaded, state fresh, not draining); the least ready worker.",
    multiprocess_mode="livemin",
)

REDIS_ERRORS = Counter("authz_redis_errors_total", "Redis operations that failed.", ["operation"])
for _operation in ("refresh", "subscribe", "alerts", "xadd"):  # exported at 0, so alerts can rate() them
    REDIS_ERRORS.labels(_operation)

_events = Counter("authz_security_events_total", "Security events by outcome.", ["outcome"])
EVENTS = {o: _events.labels(o) for o in ("emitted", "written", "spooled", "replayed", "dropped")}

_alerts = Counter("authz_alerts_total", "Compliance alert deliveries by outcome.", ["outcome"])
ALERTS = {o: _alerts.labels(o) for o in ("delivered", "retried", "failed", "refused")}

STALENESS = Gauge(
    "authz_policy_staleness_seconds",
    "Seconds since policy state was last synced from Redis (the stalest worker).",
    multiprocess_mode="livemax",
)
CATALOG_AGE = Gauge(
    "authz_catalog_age_seconds",
    "Seconds since the loaded catalog's facts were compiled (published_at); -1 when it does not say.",
    multiprocess_mode="livemax",
)
CATALOG_VERSION = Gauge(
    "authz_catalog_version",
    "Version of the loaded provider catalog (0: none; the most behind worker).",
    multiprocess_mode="livemin",
)


def registry() -> CollectorRegistry:
    """What /metrics exposes: this process, or every worker's samples aggregated."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        aggregated = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregated)  # type: ignore[no-untyped-call]
        return aggregated
    return REGISTRY


STATE_LOST = Gauge(
    "authz_redis_state_lost",
    "1 while Redis holds no authz state marker (data lost, or never loaded): cached policies are "
    "enforced until max_staleness_s, then Checks answer 503.",
    multiprocess_mode="livemax",
)

HTTP_CONNECTIONS_REFUSED = Counter(
    "authz_http_connections_closed_total",
    "HTTP connections closed by the slow-client limits (port: admin or metrics; why: connection_limit, "
    "head_timeout, lifetime).",
    ["port", "why"],
)

GATEWAY_KEY_LOOKUPS = Counter(
    "authz_gateway_key_lookups_total",
    "API keys looked up in the gateway's key API (org_source = gateway), by result: known, unknown, unavailable.",
    ["result"],
)


class CheckTally:
    """What every Check counts, kept as plain numbers and applied to the metrics above in bulk
    (every 0.25 s by the readiness loop, and before each /metrics answer). A counter's inc() and
    a histogram's observe() take a lock and, for the histogram, walk the buckets in Python:
    ~20 µs of CPU per Check, measured under load. The Check path runs on the event loop's one
    thread, so plain increments are safe here."""

    def __init__(self) -> None:
        self.decisions: Tallies[tuple[str, Reason]] = Tallies()
        self.cache: Tallies[tuple[str, str]] = Tallies()
        self.blocked_providers: Tallies[str] = Tallies()
        self.failed_requirements: Tallies[tuple[str, str]] = Tallies()
        self._bounds = list(CHECK_SECONDS._upper_bounds)  # what observe() compares with (+Inf last)
        self._buckets = [0] * len(self._bounds)
        self._seconds = 0.0

    def check(self, result: str, reason: Reason, seconds: float) -> None:
        self.decisions[(result, reason)] += 1
        self._buckets[bisect.bisect_left(self._bounds, seconds)] += 1  # the first bucket with le >= it
        self._seconds += seconds

    def flush(self) -> None:
        for key, n in self.decisions.items():
            DECISIONS[key].inc(n)
        self.decisions.clear()
        for lookup, n in self.cache.items():
            CACHE[lookup].inc(n)
        self.cache.clear()
        for provider, n in self.blocked_providers.items():
            BLOCKED_PROVIDERS.labels(provider).inc(n)
        self.blocked_providers.clear()
        for (requirement, cause), n in self.failed_requirements.items():
            BLOCKED_REQUIREMENTS.labels(requirement, cause).inc(n)
        self.failed_requirements.clear()
        # prometheus_client has no bulk observe: add to the histogram's own values, as observe()
        # does one at a time (tests/unit/test_metrics.py holds this to the exposition).
        for i, n in enumerate(self._buckets):
            if n:
                CHECK_SECONDS._buckets[i].inc(n)
                self._buckets[i] = 0
        if self._seconds:
            CHECK_SECONDS._sum.inc(self._seconds)
            self._seconds = 0.0


TALLY = CheckTally()
