"""The egress checkpoint as the LiteLLM example deploys it, and no way around it.

The rendered example (deploy/k8s/examples/litellm, with components/egress) is started as its
manifests describe it: LiteLLM with the example's args and config, in a network namespace of its
own (the pod) whose output is filtered by the rendered NetworkPolicy authz-gateway-egress-only
(support.netns: nftables, as a CNI enforces it); the egress Envoy with the component's
envoy.yaml on the node's end of the link (the authz-egress Service, as the pod's /etc/hosts
resolves it), its provider clusters pointed at a capture server on another node address (a
provider). A direct call from the pod to the provider fails; the call through the egress is
judged (an EU-residency policy: the Azure deployment in Sweden passes, Anthropic does not).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml

from authz.check import assertion
from devstack.envoy_config import render
from devstack.stack import Proc, Stack, start_envoy, wait_until
from support import kustomize, netns
from support.capture import Capture
from support.egress import to_capture
from support.litellm import LITELLM, SHIPPED_CATALOG, import_catalog

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(netns.available() is not None, reason=str(netns.available()))]
KEY = "i" * 40
MASTER = "sk-example-master"
EU_ONLY = {"enabled": True, "data_residency": ["eu"]}


def find(docs, kind, name):
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    return found


@pytest.fixture(scope="module")
def rendered():
    return kustomize.rendered("examples/litellm")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """The pod's namespace and link (its /etc/hosts resolves the egress Service to the node)."""
    with netns.pod(hosts={"authz-egress": "0.0.0.0"}) as found:
        hosts = Path("/etc/netns") / found.name / "hosts"
        hosts.write_text(hosts.read_text().replace("0.0.0.0", found.host))
        yield found


@pytest.fixture(scope="module")
def provider(node):
    with Capture.running(node.extra) as server:  # a provider's address, on the node's end
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack.start(tmp_path_factory.mktemp("isolation"), transport="http", authz_settings={"org_assertion_key": KEY})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def egress(rendered, node, provider, stack, tmp_path_factory):
    """The component's egress Envoy, as its ConfigMap gives it, on the Service's address."""
    workdir = tmp_path_factory.mktemp("egress-envoy")
    config = workdir / "envoy.yaml"
    config.write_text(find(rendered, "ConfigMap", "authz-egress-envoy")["data"]["envoy.yaml"])

    def on_this_machine(c: dict) -> None:
        c["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] = node.host
        to_capture(c, node.extra, provider.port)

    # The component's authz serves the Check over HTTP (its authz.toml): the stack's does too.
    authz_port = stack.ports["authz_ext_authz_http"]
    rendered_config = render(config, {9902: 0, 9003: authz_port}, None, on_this_machine, workdir)
    proc, _ = start_envoy(rendered_config, workdir, "egress")
    yield f"http://{node.host}:10000"
    proc.stop()


@pytest.fixture(scope="module")
def litellm(rendered, node, egress, stack, provider, tmp_path_factory):
    """LiteLLM in the pod: the example's container args and config (plus one deployment that
    calls a provider directly, as a misconfigured or compromised gateway would)."""
    workdir = tmp_path_factory.mktemp("litellm-pod")
    text = find(rendered, "ConfigMap", "litellm-config")["data"]["config.yaml"]
    config = yaml.safe_load(text)
    config["model_list"].append(
        {
            "model_name": "direct",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_base": f"http://{node.extra}:{provider.port}/openai/v1",
                "api_key": "k",
            },
        }
    )
    config["general_settings"].pop("database_url")  # the example's database is not part of this test
    config.setdefault("router_settings", {})["num_retries"] = 0
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    imported = workdir / "catalog.json"
    import_catalog(path, imported, stack.authz_env, base=SHIPPED_CATALOG)
    stack.admin.load_catalog(imported)
    stack.admin.set_plan("company", "enterprise")
    stack.admin.set_policy("company", **EU_ONLY)
    stack.wait_ready()
    pod_spec = find(rendered, "Deployment", "litellm")["spec"]["template"]["spec"]
    [gateway] = [c for c in pod_spec["containers"] if c["name"] == "gateway"]
    args = [str(path) if a == "/etc/litellm/config.yaml" else a for a in gateway["args"]]
    port = args[args.index("--port") + 1]
    env = {
        "PATH": "/usr/bin:/bin",
        "LITELLM_MASTER_KEY": MASTER,
        "AZURE_API_KEY": "k",
        "ANTHROPIC_API_KEY": "k",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
    }
    proc = Proc("litellm-pod", node.popen_args(str(LITELLM), *args), workdir / "litellm.log", env=env).start()
    wait_until(
        lambda: proc.check_alive() and _in_pod(node, port, "/health/liveliness", None).get("status") == 200,
        120,
        "LiteLLM in the pod",
    )
    yield port
    proc.stop()


_CLIENT = """
import json, sys, httpx
port, path, body = sys.argv[1], sys.argv[2], sys.argv[3]
headers = json.loads(sys.argv[4])
try:
    r = (httpx.post if body != "null" else httpx.get)(
        f"http://127.0.0.1:{port}{path}", **({"json": json.loads(body)} if body != "null" else {}),
        headers=headers, timeout=30)
    print(json.dumps({"status": r.status_code, "text": r.text[:2000]}))
except httpx.HTTPError as exc:
    print(json.dumps({"status": 0, "text": str(exc)}))
"""


def _in_pod(node, port, path, body, headers=None) -> dict:
    """A request from inside the pod (where the sidecar Envoy sends the gateway its traffic)."""
    done = node.exec(sys.executable, "-c", _CLIENT, str(port), path, json.dumps(body), json.dumps(headers or {}))
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout else {"status": -1, "text": done.stderr}


def chat(node, port, model) -> dict:
    headers = {
        "authorization": f"Bearer {MASTER}",
        assertion.HEADER: assertion.sign("company", KEY.encode(), time.time(), 600),  # as ingress adds it
    }
    body = {"model": model, "messages": [{"role": "user", "content": "the prompt"}]}
    return _in_pod(node, port, "/v1/chat/completions", body, headers)


@pytest.fixture(scope="module")
def isolated(rendered, node, litellm, tmp_path_factory):
    """The rendered NetworkPolicy on the pod, from the moment LiteLLM serves."""
    policy = find(rendered, "NetworkPolicy", "authz-gateway-egress-only")
    peers = {(("app.kubernetes.io/name", "authz-egress"),): node.host}  # the egress Service
    netns.apply_rules(node, netns.egress_rules(policy, peers), tmp_path_factory.mktemp("netpol"))
    return litellm


_CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def test_the_pod_cannot_reach_a_provider_directly_but_reaches_the_egress(isolated, node, provider):
    direct = node.exec(sys.executable, "-c", _CONNECT, node.extra, str(provider.port))
    assert direct.stdout.strip() in ("ConnectionRefusedError", "ConnectionResetError", "TimeoutError", "OSError")
    assert node.exec(sys.executable, "-c", _CONNECT, node.host, "10000").stdout.strip() == "connected"


def test_the_gateways_direct_call_to_a_provider_fails(isolated, node, provider):
    before = len(provider.seen)
    reply = chat(node, isolated, "direct")
    assert reply["status"] >= 400, reply
    assert provider.providers()[before:] == []


def test_a_call_through_the_egress_is_judged_by_where_it_goes(isolated, node, provider):
    before = len(provider.seen)
    served = chat(node, isolated, "gpt-4o")  # Azure, Sweden: meets the EU residency policy
    assert served["status"] == 200, served
    assert provider.providers()[before:] == ["azure"]
    refused = chat(node, isolated, "claude-sonnet-4")  # Anthropic: processing outside the EU
    assert refused["status"] >= 400 and provider.providers()[before + 1 :] == []
    assert "data_residency" in refused["text"] or "provider_not_compliant" in refused["text"]


def test_a_fallback_to_a_blocked_group_is_stopped_at_egress(isolated, node, provider):
    """A body fallback (LiteLLM made to fail the first group) takes the prompt to Anthropic:
    the ingress check is bypassed here, and the egress stops it."""
    headers = {
        "authorization": f"Bearer {MASTER}",
        assertion.HEADER: assertion.sign("company", KEY.encode(), time.time(), 600),
    }
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "the prompt"}],
        "fallbacks": ["claude-sonnet-4"],
        "mock_testing_fallbacks": True,  # LiteLLM fails the first group on purpose
    }
    before = len(provider.seen)
    reply = _in_pod(node, isolated, "/v1/chat/completions", body, headers)
    assert reply["status"] >= 400, reply
    assert provider.providers()[before:] == []


def test_the_anthropic_pass_through_reaches_nothing(isolated, node, provider):
    """LiteLLM's /anthropic pass-through calls Anthropic's own host, which the pod cannot reach."""
    headers = {"authorization": f"Bearer {MASTER}", "x-api-key": "k"}
    body = {"model": "claude-sonnet-4-20250514", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    before = len(provider.seen)
    reply = _in_pod(node, isolated, "/anthropic/v1/messages", body, headers)
    assert reply["status"] != 200, reply
    assert provider.providers()[before:] == []
