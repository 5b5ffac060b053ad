"""`make bench` keeps working: a smoke run of the harness (tiny data, 1 s loads). It checks
that every number is produced, never what the numbers are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_run_reports_every_measurement(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    r = json.loads(out.read_text())
    for setup in ("a_no_ext_authz", "b_noop_ext_authz", "c_authz"):
        for mode in ("saturated", "fixed_1000rps"):
            run = r["setups"][setup][mode]
            assert run["requests"] > 0 and run["socket_errors"] == 0 and run["p99_ms"] >= run["p50_ms"] > 0
    c = r["setups"]["c_authz"]
    assert c["redis_commands_per_request"]["check_path"] == 0, "a warm Check must not touch Redis"
    assert c["saturated"]["non_2xx"] > 0, "the mix includes blocked requests"
    assert set(r["big_body_ms"]) >= {"context_1mib", "image_8mib", "audio_8mib"}
    assert r["big_body_rss"]["answered"] == r["big_body_rss"]["concurrent"] > 0
    assert c["handler_p50_ms"] is not None and set(r["ratios"]) >= {"c_over_b_rps", "c_over_a_rps"}
    assert set(r["decision_us_by_catalog_models"]) == {"10", "100"}
    assert set(r["check_in_process_us"]) == {"allowed", "blocked", "no_policy"}
    assert all(us > 0 for us in r["check_in_process_us"].values())
    assert set(r["worker_scaling"]) == {"1", "2"} and all(v["rps"] > 0 for v in r["worker_scaling"].values())
    keys = r["gateway_key_lookup"]
    assert keys["key_api_calls"] == keys["keys"] > 0  # one key-API call per key: the second Check was cached
    assert keys["cold_p50_ms"] > 0 and keys["warm_p50_ms"] > 0
    assert r["memory"]["mb"] > 0 and r["memory"]["keys"] > 0
    assert r["propagation"]["workers"] == 4 and r["propagation"]["samples"] > 0
    assert "| (c) Envoy + authz |" in out.with_suffix(".md").read_text()
    # the headline: server CPU per Check, authz against the no-op, direct per case and through Envoy
    assert set(r["cpu_direct"]) == {"allowed", "blocked", "no_policy", "body_1mib", "egress_allowed", "egress_blocked"}
    for case in r["cpu_direct"].values():
        assert case["noop_cpu_us"] > 0 and case["authz_cpu_us"] > 0 and case["ratio"] > 0
    assert r["cpu_through_envoy"]["authz_cpu_us"] > 0 and r["cpu_through_envoy"]["ratio"] > 0
    assert "authz ÷ no-op" in out.with_suffix(".md").read_text()
    # each Check transport through Envoy against the gRPC no-op, per case
    t = r["transports"]
    assert set(t["setups"]) == {"grpc_noop", "http_noop_granian", "http_noop_aiohttp", "authz_grpc", "authz_http"}
    for by in t["cases"].values():
        assert by["grpc_noop"]["ratio_to_grpc_noop"] == 1.0
        assert all(v["cpu_us"] > 0 and v["ratio_to_grpc_noop"] > 0 for v in by.values())
    assert set(t["added_p99_ms_at_1000rps"]) == {"http_noop_granian", "authz_http", "grpc_noop", "authz_grpc"}
    assert all(v["p99_ms"] >= v["p50_ms"] > 0 for v in t["at_1000rps"].values())
    assert "authz_http" in out.with_suffix(".md").read_text()
    # both checkpoints for one allowed request, per transport, against the gRPC no-op
    hop = r["egress_hop"]
    assert set(hop["cpu_us"]) == {"noop", "ingress_grpc", "ingress_http", "egress_grpc", "egress_http"}
    assert all(v > 0 for v in hop["cpu_us"].values())
    assert all(hop["both_checkpoints_to_grpc_noop"][t] > hop["egress_to_grpc_noop"][t] > 0 for t in ("http", "grpc"))
    md = out.with_suffix(".md").read_text()
    assert "Both checkpoints" in md and "| both checkpoints over HTTP" in md and "| workers 1 → 2 over HTTP" in md
    scaling = r["worker_scaling_http"]
    assert set(scaling) == {"1", "2"} and all(v["rps"] > 0 and v["authz_cores"] > 0 for v in scaling.values())
