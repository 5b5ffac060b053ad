"""The Portkey example started as rendered: its pods, not only its manifests.

deploy/k8s/examples/portkey, with the overlay a user writes to declare their policy (the
bootstrap's policies.yaml replaced), is rendered by kustomize; then every container of the
bootstrap Job, the egress Deployment and the gateway Deployment runs as the kubelet would start
it (support.pods: the rendered args, environment, ConfigMaps, Secrets and volumes at their
paths), the egress pod and the gateway pod each in a network namespace of its own, their
Services (authz-redis, authz-egress) resolved and NATed as cluster DNS and kube-proxy would.
The real Portkey gateway, authz and Envoy answer; only the providers are a capture server
(the egress Envoy's provider clusters point at it) and Redis is this machine's redis-server
with the rendered Secret's password.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml

from devstack.stack import RedisServer
from support import netns
from support.capture import Capture
from support.egress import to_capture
from support.kustomize import K8S, KUSTOMIZE
from support.pods import Pod, containers, relay, service_nat

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(netns.available() is not None, reason=str(netns.available()))]

PASSWORD = "pod-test-" + "r" * 24
CLUSTER_IPS = {"authz-redis": "10.96.0.10", "authz-egress": "10.96.0.11"}
POLICIES = {"orgs": {"acme": {"policy": {"enabled": True, "provider_denylist": ["groq"]}}}}
EGRESS = "http://authz-egress:10000"


def render_with_policy(workdir: Path) -> list[dict]:
    """examples/portkey under the user's overlay: their policies.yaml for the bootstrap Job."""
    tree = workdir / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("node_modules"))
    overlay = tree / "examples" / "my-portkey"
    overlay.mkdir()
    (overlay / "policies.yaml").write_text(yaml.safe_dump(POLICIES))
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../portkey"],
                "configMapGenerator": [{"name": "authz-policies", "behavior": "replace", "files": ["policies.yaml"]}],
            }
        )
    )
    out = subprocess.run(
        [str(KUSTOMIZE), "build", str(overlay)], capture_output=True, text=True, check=True, timeout=60
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    work = tmp_path_factory.mktemp("portkey-as-rendered")
    docs = render_with_policy(work)
    secrets = {"authz-redis": {"password": PASSWORD}}  # the one Secret the example requires
    with (
        netns.pod(hosts=CLUSTER_IPS, index=0) as gateway_net,
        netns.pod(hosts=CLUSTER_IPS, index=1) as egress_net,
        Capture.running(egress_net.extra) as provider,  # every provider, on the egress pod's node side
    ):
        redis = RedisServer(
            work / "redis", password=PASSWORD, extra=["--bind", "127.0.0.1", gateway_net.host, egress_net.host]
        ).start()
        pods: list[Pod] = []
        try:
            with relay(gateway_net.host, (egress_net.address, 10000)) as egress_port:
                for net, services in (
                    (
                        gateway_net,
                        {
                            "authz-redis": (gateway_net.host, redis.port),
                            "authz-egress": (gateway_net.host, egress_port),
                        },
                    ),
                    (egress_net, {"authz-redis": (egress_net.host, redis.port)}),
                ):
                    nat = {
                        n: (CLUSTER_IPS[n], 6379 if n == "authz-redis" else 10000, *to) for n, to in services.items()
                    }
                    rules = work / f"{net.name}.nft"
                    rules.write_text(service_nat(nat))
                    done = net.exec("nft", "-f", str(rules))
                    assert done.returncode == 0, done.stderr

                job = Pod(gateway_net, work / "job")
                pods.append(job)
                [bootstrap] = containers(docs, "Job", "authz-bootstrap", work / "job", secrets)
                code, log = job.run(bootstrap)
                assert code == 0, log

                egress = Pod(egress_net, work / "egress")
                pods.append(egress)
                egress_containers = containers(docs, "Deployment", "authz-egress", work / "egress", secrets)
                for c in egress_containers:
                    if c.name == "egress-envoy":  # the providers: the only change to what was rendered
                        path = c.mounts["/etc/envoy"] / "envoy.yaml"
                        config = yaml.safe_load(path.read_text())
                        to_capture(config, egress_net.extra, provider.port)
                        path.write_text(yaml.safe_dump(config))
                    egress.start(c)

                gateway = Pod(gateway_net, work / "gateway")
                pods.append(gateway)
                for c in containers(docs, "Deployment", "llm-gateway", work / "gateway", secrets):
                    gateway.start(c)

                probes = (  # each readinessProbe's port and path, from the pod's node
                    f"http://{egress_net.address}:9090/readyz",
                    f"http://{gateway_net.address}:9090/readyz",
                    f"http://{gateway_net.address}:8787/",  # Portkey's
                )
                deadline = time.monotonic() + 90
                while not all(answers(u) for u in probes):
                    egress.check_alive()  # a container that exited fails the test with its log
                    gateway.check_alive()
                    assert time.monotonic() < deadline, f"not ready after 90 s: {[u for u in probes if not answers(u)]}"
                    time.sleep(0.1)
                yield SimpleNamespace(url=f"http://{gateway_net.address}:8080", provider=provider, docs=docs)
        finally:
            for p in reversed(pods):
                p.stop()
            redis.stop()


def chat(example, provider: str, route: str, model: str) -> httpx.Response:
    headers = {
        "authorization": "Bearer sk-the-providers-own-key",
        "x-portkey-provider": provider,
        "x-portkey-custom-host": f"{EGRESS}{route}",
    }
    body = {"model": model, "messages": [{"role": "user", "content": "the prompt"}]}
    return httpx.post(f"{example.url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def test_the_example_as_rendered_serves_what_the_policy_allows_through_the_egress(example):
    """The sidecar's Envoy asks the sidecar authz (strict, Portkey's contract, the static org the
    params name), Portkey calls the egress Service, whose Envoy asks its own authz, and the
    provider answers: every hop as the manifests wire it."""
    allowed = chat(example, "openai", "/openai/v1", "gpt-4o")
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["choices"][0]["message"]["content"] == "served by openai"
    assert ("openai", "gpt-4o") in example.provider.seen


def test_the_example_as_rendered_refuses_what_the_policy_blocks(example):
    """groq is on the declared policy's deny list (the user's policies.yaml, applied by the
    rendered bootstrap Job): 403 from the sidecar, and no prompt reaches a provider."""
    before = len(example.provider.seen)
    blocked = chat(example, "groq", "/groq/openai/v1", "llama-3.3-70b-versatile")
    assert blocked.status_code == 403, blocked.text
    assert "groq" in blocked.text
    assert len(example.provider.seen) == before


def test_a_custom_host_the_settings_do_not_list_is_refused(example):
    """The example's authz.toml lists the egress routes as the only custom hosts: a request that
    names the provider's own host (around the egress) is refused at ingress (400: the field is
    not allowed), and reaches no provider."""
    before = len(example.provider.seen)
    around = httpx.post(
        f"{example.url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        headers={
            "authorization": "Bearer sk-the-providers-own-key",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": "https://api.openai.com/v1",
        },
        timeout=30,
    )
    assert around.status_code == 400, around.text
    assert around.json()["error"]["code"] == "field_not_allowed" and "custom_hosts" in around.text
    assert len(example.provider.seen) == before
