"""Every shipped Envoy config passes the real binary's validation, and keeps the
properties the design relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from authz.config import Settings
from authz.policy.imports import cloud_regions
from devstack.envoy_config import render, sidecar_config_yaml, validate

ROOT = Path(__file__).resolve().parents[2]
SIDECAR = ROOT / "deploy" / "k8s" / "components" / "sidecar" / "envoy.yaml"
CONFIGS = sorted((ROOT / "envoy").glob("*.yaml")) + [SIDECAR]
EGRESS = ROOT / "envoy" / "egress.yaml"
EGRESS_HTTP = ROOT / "envoy" / "egress-http.yaml"  # the egress checkpoint over HTTP ext_authz
EGRESSES = [EGRESS, EGRESS_HTTP]
INGRESS = [c for c in CONFIGS if c not in EGRESSES]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_validates_with_real_envoy(path):
    # The sidecar's gateway cluster comes from its container's --config-yaml (GATEWAY_PORT).
    result = validate(path, sidecar_config_yaml(8000) if path == SIDECAR else "")
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_rejects_a_broken_config(tmp_path):
    broken = render(
        CONFIGS[0], {}, {"static_resources": {"clusters": [{"name": "authz", "type": "NOPE"}]}}, directory=tmp_path
    )
    assert validate(broken).returncode != 0


def _ext_authz(config: dict) -> dict:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    [f] = [f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.ext_authz"]
    return f["typed_config"]


@pytest.mark.parametrize("path", INGRESS, ids=lambda p: str(p.relative_to(ROOT)))
def test_fails_closed_reads_bodies_and_fences_mutations(path):
    config = yaml.safe_load(path.read_text())
    ext = _ext_authz(config)
    assert ext["failure_mode_allow"] is False
    assert ext["status_on_error"] == {"code": 503}
    # Envoy waits 2 s for authz (a 32 MiB body); authz's Redis timeout on the Check path is far below it.
    http = "http_service" in ext  # the Check over HTTP (front-proxy-http.yaml)
    assert (ext["http_service"]["server_uri"] if http else ext["grpc_service"])["timeout"] == "2s"
    assert Settings().redis_timeout_s < 0.2
    # authz may touch only x-compliance-* headers (and LLMGateway's x-no-fallback, which its routing
    # contract sets), and anything else fails the request.
    assert ext["validate_mutations"] is True
    assert ext["decoder_header_mutation_rules"]["disallow_is_error"] is True
    # A body cut at Envoy's limit is recognised only if authz knows that limit.
    assert ext["with_request_body"]["max_request_bytes"] == Settings().max_request_bytes
    assert ext["with_request_body"]["allow_partial_message"] is True
    assert ext["with_request_body"]["pack_as_bytes"] is True
    if http:  # no metadata travels over HTTP (authz refuses org_source = "jwt" with it)
        assert ext["http_service"]["path_prefix"] == "/check"
        allowed = ext["http_service"]["authorization_response"]["allowed_upstream_headers"]["patterns"]
        assert allowed == [{"prefix": "x-compliance-"}, {"exact": "x-no-fallback"}]  # only ours reach the gateway
        assert ext["allowed_headers"]["patterns"] == [{"safe_regex": {"regex": ".*"}}]  # every header to authz
    else:
        assert ext["metadata_context_namespaces"] == ["envoy.filters.http.jwt_authn"]  # org_source = "jwt"
    assert ext["decoder_header_mutation_rules"]["disallow_all"] is True
    assert ext["decoder_header_mutation_rules"]["allow_expression"]["regex"] == "^(x-compliance-.*|x-no-fallback)$"
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["timeout"] == "0s", "long completions must not be cut by the 15 s default"


def _connection_managers(config: dict) -> list[dict]:
    return [
        f["typed_config"]
        for listener in config["static_resources"]["listeners"]
        for chain in listener["filter_chains"]
        for f in chain["filters"]
        if f["name"] == "envoy.filters.network.http_connection_manager"
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_connection_manager_reads_the_request_as_the_gateway_will(path):
    """Pinned in every shipped config, not only the front proxy's: the client address Envoy
    trusts, the path it routes (and authz judges) after normalising, and no header name with
    "_" (a CGI-style gateway would read x_compliance_... as our x-compliance-... header)."""
    managers = _connection_managers(yaml.safe_load(path.read_text()))
    assert managers
    for hcm in managers:
        assert hcm["use_remote_address"] is True
        assert hcm["normalize_path"] is True and hcm["merge_slashes"] is True
        assert hcm["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"
        # Websocket upgrades off, but on the realtime route (authz refuses them elsewhere too);
        # none at all at egress.
        assert all(u.get("enabled") is False for u in hcm.get("upgrade_configs", []))
        routes = [r for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"]]
        upgraded = [r["match"] for r in routes if r.get("route", {}).get("upgrade_configs")]
        assert upgraded == ([] if path in EGRESSES else [{"path": "/v1/realtime"}])


def route_provider(route: dict) -> str:
    """The provider an egress route names to authz: in the context extensions (gRPC), or as the
    path prefix of its http_service override (/egress/<provider>, HTTP)."""
    settings = route["typed_per_filter_config"]["envoy.filters.http.ext_authz"]["check_settings"]
    if "http_service" in settings:
        prefix = settings["http_service"]["path_prefix"]
        assert prefix.startswith("/egress/") and prefix.count("/") == 2, prefix
        return prefix.removeprefix("/egress/")
    assert settings["context_extensions"]["checkpoint"] == "egress"
    return settings["context_extensions"]["provider"]


@pytest.mark.parametrize("path", EGRESSES, ids=lambda p: p.name)
def test_the_egress_proxy_names_each_routes_provider_and_reaches_nothing_else(path):
    """Each provider route names its catalog provider for the egress checkpoint and goes to that
    provider's host over verified TLS; any other path is answered by Envoy itself."""
    config = yaml.safe_load(path.read_text())
    ext = _ext_authz(config)
    if "http_service" in ext:  # a route without the override is refused by authz (no_egress_route)
        assert ext["http_service"]["path_prefix"] == "/egress-unrouted"
        assert ext["allowed_headers"]["patterns"] == [{"safe_regex": {"regex": ".*"}}]  # the assertion too
    assert ext["failure_mode_allow"] is False and ext["status_on_error"] == {"code": 503}
    assert ext["validate_mutations"] is True
    assert ext["decoder_header_mutation_rules"]["allow_expression"]["regex"] == "^x-compliance-.*"
    assert ext["with_request_body"]["max_request_bytes"] == Settings().max_request_bytes
    catalog = json.loads((ROOT / "catalog" / "catalog.json").read_text())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    [hcm] = _connection_managers(config)
    *routes, last = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert routes
    for route in routes:
        provider = route_provider(route)
        # A catalog provider, or a regional entry an import makes from a cloud's region table.
        parent, _, region = provider.partition("-") if provider.startswith("azure-") else ("", "", "")
        if provider.startswith("google-vertex-"):
            parent, region = "google-vertex", provider.removeprefix("google-vertex-")
        regional = {"azure": cloud_regions.AZURE, "google-vertex": cloud_regions.GCP}.get(parent, {})
        assert provider in catalog["providers"] or region in regional, provider
        cluster = route["route"]["cluster"]
        assert route["route"]["prefix_rewrite"] == "/" and route["route"]["auto_host_rewrite"] is True
        tls = clusters[cluster]["transport_socket"]["typed_config"]
        host = clusters[cluster]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        host = host["socket_address"]["address"]
        assert tls["sni"] == host
        if provider.startswith("aws-bedrock-"):  # signed by the egress, for the host it calls
            signing = route["typed_per_filter_config"]["envoy.filters.http.aws_request_signing"]["aws_request_signing"]
            assert signing["host_rewrite"] == host and provider == f"aws-bedrock-{signing['region']}"
            assert signing["credential_provider"]["custom_credential_provider_chain"] is True  # no metadata calls
        assert tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]["matcher"] == {
            "exact": host
        }
    assert last["match"] == {"prefix": "/"} and last["direct_response"]["status"] == 403


def test_the_egress_over_http_is_the_egress_over_grpc_but_for_the_transport():
    """One set of routes and providers: egress-http.yaml differs from egress.yaml only in how
    the Check is sent (and the access log's fields that only gRPC fills)."""

    def shape(config: dict) -> tuple:
        [hcm] = _connection_managers(config)
        routes = []
        for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
            named = route_provider(route) if "route" in route else None
            others = {k: v for k, v in route.get("typed_per_filter_config", {}).items() if "ext_authz" not in k}
            routes.append((route["match"], route.get("route"), route.get("direct_response"), named, others))
        clusters = [c for c in config["static_resources"]["clusters"] if c["name"] != "authz"]
        filters = [f["name"] for f in hcm["http_filters"]]
        ext = _ext_authz(config)
        fence = (ext["with_request_body"], ext["decoder_header_mutation_rules"], ext["failure_mode_allow"])
        return routes, clusters, filters, fence, config["static_resources"]["listeners"][0]["address"]

    assert shape(yaml.safe_load(EGRESS_HTTP.read_text())) == shape(yaml.safe_load(EGRESS.read_text()))


def test_the_istio_patch_rejects_underscored_headers_too():
    [doc] = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "components" / "istio" / "envoy-filter.yaml").read_text())
    [patch] = doc["spec"]["configPatches"]
    options = patch["patch"]["value"]["typed_config"]["common_http_protocol_options"]
    assert options["headers_with_underscores_action"] == "REJECT_REQUEST"


# Access-log operators that would write a credential: the path with its query (?key=...), the
# original path, a credential header, or every header.
_SECRET_BEARING = (
    "%REQ(:PATH)%",
    "%REQ(X-ENVOY-ORIGINAL-PATH)%",
    "%PATH%",
    "%REQ(AUTHORIZATION)%",
    "%REQ(X-API-KEY)%",
    "%REQ(API-KEY)%",
    "%REQ(X-GOOG-API-KEY)%",
    "%REQUEST_HEADERS%",
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_access_logs_write_no_query_and_no_credential(path):
    for hcm in _connection_managers(yaml.safe_load(path.read_text())):
        assert hcm["access_log"]
        for log in hcm["access_log"]:
            fmt = json.dumps(log["typed_config"].get("log_format", {})).upper()
            assert fmt != "{}", "a log without a format logs Envoy's default, which has the full path"
            assert not [op for op in _SECRET_BEARING if op in fmt], fmt
            assert "%REQ_WITHOUT_QUERY(:PATH)%" in fmt
