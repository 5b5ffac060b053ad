"""Envoy Gateway's translation of our rendered manifests into the Envoy config it would serve,
so a test runs on a real Envoy what a cluster would run.

Envoy Gateway is a Go controller; we cannot run it here. This follows its translator, function
by function, for the fields our components set (envoyproxy/gateway, internal/xds/translator):
- extauth.go, extAuthFilterLevelConfig: an ext_authz filter per distinct filter-level config,
  disabled on the HCM (buildHCMExtAuthFilter); `failOpen` -> failure_mode_allow;
  `headersToExtAuth` -> allowed_headers, each an exact, case-insensitive matcher;
- extauth.go, httpService: `path` -> path_prefix, the backend -> server_uri's cluster, `timeout`,
  `headersToBackend` -> authorization_response.allowed_upstream_headers (exact, ignore case);
- extauth.go, extAuthCheckSettings and patchRoute (enableFilterOnRoute): the filter enabled on
  the route by an ExtAuthzPerRoute whose check_settings carry `bodyToExtAuth.maxRequestBytes`
  (with_request_body, no partial message: a larger body is 413 from Envoy) and the service;
- listener.go (ClientTrafficPolicy): `headers.withUnderscoresAction` ->
  headers_with_underscores_action, `headers.earlyRequestHeaders` -> the HCM's
  early_header_mutation_extensions (envoy.http.early_header_mutation.header_mutation),
  `connection.bufferLimit` -> per_connection_buffer_limit_bytes;
- lua.go (EnvoyExtensionPolicy `lua`): a disabled Lua filter holding each script by name
  (buildHCMLuaFilter: source_codes), enabled on the route by a LuaPerRoute naming it
  (buildLuaRouteFilterConfig); httpfilters.go, newOrderedHTTPFilter: ext_authz (order 3)
  runs before it (the default 50);
- route.go: an HTTPRoute PathPrefix rule -> a prefix route to its backend, `timeouts.request`
  -> the route timeout.
Ports follow front-proxy-http.yaml (8080 listener, 9901 admin, 9003 authz, 8000 the gateway),
so devstack's Stack remaps them as it does for our own front proxy.
"""

from __future__ import annotations

from typing import Any

_T = "type.googleapis.com/envoy.extensions."  # every typed config here is an extension
_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
_UNDERSCORES = {"RejectRequest": "REJECT_REQUEST", "DropHeader": "DROP_HEADER", "Allow": "ALLOW"}


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [d for d in docs if d.get("kind") == kind]
    return found


def _quantity(value: str) -> int:
    for suffix, factor in _UNITS.items():
        if value.endswith(suffix):
            return int(value[: -len(suffix)]) * factor
    return int(value)


def _exact(names: list[str]) -> dict[str, Any]:
    return {"patterns": [{"exact": name, "ignore_case": True} for name in names]}


def _seconds(duration: str) -> str:
    return duration if duration.endswith("s") else f"{duration}s"


def translate(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Envoy bootstrap for the rendered SecurityPolicy (extAuth over HTTP),
    ClientTrafficPolicy and HTTPRoute of an example."""
    ext_auth = _one(docs, "SecurityPolicy")["spec"]["extAuth"]
    client = _one(docs, "ClientTrafficPolicy")["spec"]
    route = _one(docs, "HTTPRoute")["spec"]
    http = ext_auth["http"]
    timeout = _seconds(ext_auth.get("timeout", "10s"))
    service: dict[str, Any] = {
        "path_prefix": http.get("path", ""),
        "server_uri": {"uri": f"http://authz{http.get('path', '')}", "cluster": "authz", "timeout": timeout},
    }
    if http.get("headersToBackend"):
        service["authorization_response"] = {"allowed_upstream_headers": _exact(http["headersToBackend"])}
    filter_config: dict[str, Any] = {
        "@type": _T + "filters.http.ext_authz.v3.ExtAuthz",
        "transport_api_version": "V3",
        "failure_mode_allow": bool(ext_auth.get("failOpen", False)),
        "http_service": service,
    }
    if ext_auth.get("headersToExtAuth"):
        filter_config["allowed_headers"] = _exact(ext_auth["headersToExtAuth"])
    check_settings: dict[str, Any] = {"http_service": service}
    if "bodyToExtAuth" in ext_auth:
        check_settings["with_request_body"] = {"max_request_bytes": ext_auth["bodyToExtAuth"]["maxRequestBytes"]}
    filter_name = "envoy.filters.http.ext_authz/provider-compliance"
    lua_name = "envoy.filters.http.lua/eg/0"
    scripts = {
        f"envoyextensionpolicy/{d['metadata']['name']}/lua/{i}": lua["inline"]
        for d in docs
        if d.get("kind") == "EnvoyExtensionPolicy"
        for i, lua in enumerate(d["spec"].get("lua", []))
    }
    per_route: dict[str, Any] = {
        filter_name: {
            "@type": _T + "filters.http.ext_authz.v3.ExtAuthzPerRoute",
            "check_settings": check_settings,
        }
    }
    for name in scripts:  # one slot: our one script
        per_route[lua_name] = {
            "@type": _T + "filters.http.lua.v3.LuaPerRoute",
            "name": name,
        }
    routes = []
    for rule in route["rules"]:
        for match in rule["matches"]:
            routes.append(
                {
                    "match": {"prefix": match["path"]["value"]},
                    "route": {
                        "cluster": "llm_gateway",
                        "timeout": _seconds(rule.get("timeouts", {}).get("request", "15s")),
                    },
                    "typed_per_filter_config": per_route,
                }
            )
    hcm: dict[str, Any] = {
        "@type": _T + "filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "eg",
        "route_config": {"name": "eg", "virtual_hosts": [{"name": "eg", "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {"name": filter_name, "disabled": True, "typed_config": filter_config},
            *(
                [
                    {
                        "name": lua_name,
                        "disabled": True,
                        "typed_config": {
                            "@type": _T + "filters.http.lua.v3.Lua",
                            "source_codes": {name: {"inline_string": code} for name, code in scripts.items()},
                        },
                    }
                ]
                if scripts
                else []
            ),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _T + "filters.http.router.v3.Router"},
            },
        ],
    }
    headers = client.get("headers", {})
    if "withUnderscoresAction" in headers:
        hcm["common_http_protocol_options"] = {
            "headers_with_underscores_action": _UNDERSCORES[headers["withUnderscoresAction"]]
        }
    early = headers.get("earlyRequestHeaders", {})
    if early:
        mutations = [{"remove": name} for name in early.get("remove", [])]
        mutations += [
            {
                "append": {
                    "header": {"key": h["name"], "value": h["value"]},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            }
            for h in early.get("set", [])
        ]
        hcm["early_header_mutation_extensions"] = [
            {
                "name": "envoy.http.early_header_mutation.header_mutation",
                "typed_config": {
                    "@type": _T + "http.early_header_mutation.header_mutation.v3.HeaderMutation",
                    "mutations": mutations,
                },
            }
        ]
    listener: dict[str, Any] = {
        "name": "eg",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 8080}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }
    if "bufferLimit" in client.get("connection", {}):
        listener["per_connection_buffer_limit_bytes"] = _quantity(client["connection"]["bufferLimit"])

    def static(name: str, port: int) -> dict[str, Any]:
        endpoint = {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        return {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [endpoint]}]},
        }

    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
        "static_resources": {"listeners": [listener], "clusters": [static("authz", 9003), static("llm_gateway", 8000)]},
    }
