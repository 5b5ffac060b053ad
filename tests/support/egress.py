"""The shipped egress Envoy (envoy/egress.yaml, or egress-http.yaml for the Check over HTTP) for
tests: ports remapped, its provider clusters sent to a loopback capture server in plain HTTP, each
route keeping its provider prefix so the capture server knows which provider a call was for."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from devstack.envoy_config import render
from devstack.stack import first_listener_port, start_envoy

ROOT = Path(__file__).resolve().parents[2]


def to_capture(config: dict[str, Any], host: str, port: int) -> None:
    """Every provider cluster of an egress config sent to a capture server at host:port in plain
    HTTP, each route keeping its prefix so the capture server knows which provider it was for."""
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == "authz":
            continue
        cluster.pop("transport_socket", None)
        cluster["type"] = "STATIC"
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        address["socket_address"] = {"address": host, "port_value": port}
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
        if "route" in route:
            route["route"]["prefix_rewrite"] = route["match"]["prefix"]


CONFIGS = {"grpc": (ROOT / "envoy" / "egress.yaml", 9001), "http": (ROOT / "envoy" / "egress-http.yaml", 9003)}


@contextlib.contextmanager
def egress_envoy(
    authz_port: int,
    capture_port: int,
    workdir: Path,
    env: dict[str, str] | None = None,
    more: Callable[[dict[str, Any]], None] | None = None,
    transport: str = "grpc",
) -> Iterator[str]:
    """The egress listener's base URL while it runs, its Check sent to `authz_port` over
    `transport` (authz's gRPC port, or its ext_authz_http_listen port for "http"). `env` is the
    egress Envoy's environment (AWS credentials for its Bedrock signing); `more(config)` edits
    the config first (more routes)."""
    shipped, authz_placeholder = CONFIGS[transport]

    def mutate(config: dict[str, Any]) -> None:
        if more is not None:
            more(config)
        to_capture(config, "127.0.0.1", capture_port)

    config = render(shipped, {10000: 0, 9902: 0, authz_placeholder: authz_port}, None, mutate, workdir)
    proc, admin = start_envoy(config, workdir, "envoy-egress", env)
    try:
        yield f"http://127.0.0.1:{first_listener_port(admin)}"
    finally:
        proc.stop()
