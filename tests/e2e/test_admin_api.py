"""The admin API of a running authz: the full RBAC matrix (role x plan x own/other org x
method) over JSON and gRPC, optimistic concurrency, audit, enforcement through Envoy, the CLI."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import grpc
import httpx
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from authz.v1 import admin_pb2, admin_pb2_grpc, policy_pb2
from devstack.stack import wait_until
from support.policies import DEMO_POLICY

pytestmark = pytest.mark.e2e
_orgs = itertools.count()


# --- the running service ------------------------------------------------------------------


def fresh_org(stack, plan: str) -> str:
    org = f"rbac-{next(_orgs)}-{plan}"
    stack.admin.set_plan(org, plan)
    return org


def http_call(stack, method: str, org: str, token: str | None) -> httpx.Response:
    h = {"authorization": f"Bearer {token}"} if token else {}
    base = stack.authz_http
    if method == "GetPolicy":
        return httpx.get(f"{base}/v1/orgs/{org}/policy", headers=h)
    if method == "PreviewPolicy":
        return httpx.post(f"{base}/v1/orgs/{org}/policy:preview", headers=h, json={"policy": DEMO_POLICY})
    if method == "SetPolicy:enable":
        return httpx.put(f"{base}/v1/orgs/{org}/policy", headers=h, json={"policy": DEMO_POLICY})
    if method == "SetPolicy:disable":
        return httpx.put(f"{base}/v1/orgs/{org}/policy", headers=h, json={"policy": {**DEMO_POLICY, "enabled": False}})
    if method == "ListProviders":
        return httpx.get(f"{base}/v1/providers", headers=h)
    if method == "ListSecurityEvents":
        return httpx.get(f"{base}/v1/orgs/{org}/security-events", headers=h)
    if method == "ListAuditEvents":
        return httpx.get(f"{base}/v1/orgs/{org}/audit-events", headers=h)
    if method == "SetCustomProvider":
        return httpx.put(
            f"{base}/v1/orgs/{org}/custom-providers/own-llm", headers=h, json={"provider": {"models": ["own-model"]}}
        )
    if method == "DeleteCustomProvider":
        return httpx.delete(f"{base}/v1/orgs/{org}/custom-providers/own-llm", headers=h)
    if method == "SetAlerts":
        return httpx.put(
            f"{base}/v1/orgs/{org}/alerts",
            headers=h,
            json={"alerts": {"webhook_url": "https://hooks.example.com/x", "block_threshold": 5}},
        )
    raise AssertionError(method)


METHODS = [
    "GetPolicy",
    "PreviewPolicy",
    "SetPolicy:enable",
    "SetPolicy:disable",
    "ListProviders",
    "ListSecurityEvents",
    "ListAuditEvents",
    "SetCustomProvider",
    "DeleteCustomProvider",
    "SetAlerts",
]
ROLES = ["owner", "admin", "member", "billing"]
PLANS = ["enterprise", "pro"]


def expected_status(method: str, role: str, plan: str, own_org: bool) -> tuple[int, str]:
    """The rules, written out plainly."""
    manager = role in ("owner", "admin")
    if method == "ListProviders":  # not about one org
        return (200, "") if manager else (403, "owner or admin")
    if not own_org:
        return 403, "your token is for org"
    if not manager:
        return 403, "owner or admin"
    if method in ("PreviewPolicy", "SetPolicy:enable", "SetCustomProvider", "SetAlerts") and plan != "enterprise":
        return 403, "Enterprise plan required"
    if method == "DeleteCustomProvider":  # allowed on any plan (removing one only blocks more); none exists
        return 404, "has no custom provider 'own-llm'"
    return 200, ""


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("own_org", [True, False], ids=["own-org", "other-org"])
def test_rbac_matrix_over_http(stack, role, plan, own_org):
    for method in METHODS:
        target = fresh_org(stack, plan)
        token_org = target if own_org else fresh_org(stack, "enterprise")
        r = http_call(stack, method, target, stack.token(token_org, role=role))
        status, message = expected_status(method, role, plan, own_org)
        assert r.status_code == status, (method, r.text)
        if message:
            assert message in r.json()["error"]["message"], (method, r.text)


@pytest.mark.parametrize("method", METHODS)
def test_no_token_is_401(stack, method):
    r = http_call(stack, method, fresh_org(stack, "enterprise"), None)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


def test_downgraded_org_can_read_and_disable_but_not_re_enable(stack):
    org = fresh_org(stack, "enterprise")
    token = stack.token(org)
    assert http_call(stack, "SetPolicy:enable", org, token).status_code == 200
    stack.admin.set_plan(org, "pro")
    got = http_call(stack, "GetPolicy", org, token)
    assert got.status_code == 200 and got.json()["policy"]["enabled"] is True and got.json()["plan"] == "pro"
    assert http_call(stack, "SetPolicy:enable", org, token).status_code == 403
    assert http_call(stack, "SetPolicy:disable", org, token).status_code == 200


def test_set_policy_versions_conflicts_and_audit(stack):
    org = fresh_org(stack, "enterprise")
    h = {"authorization": f"Bearer {stack.token(org, subject='carol@corp')}"}
    url = f"{stack.authz_http}/v1/orgs/{org}/policy"
    first = httpx.put(
        url, headers=h, json={"policy": {**DEMO_POLICY, "version": 99, "updated_by": "mallory"}, "expected_version": 0}
    )
    assert first.status_code == 200
    stored = first.json()["policy"]
    assert (stored["version"], stored["updated_by"]) == (1, "carol@corp"), "server-owned fields are not client input"
    stale = httpx.put(url, headers=h, json={"policy": DEMO_POLICY, "expected_version": 0})
    assert stale.status_code == 409 and "version 1" in stale.json()["error"]["message"]
    assert (
        httpx.put(url, headers=h, json={"policy": DEMO_POLICY, "expected_version": 1}).json()["policy"]["version"] == 2
    )
    bad = httpx.put(url, headers=h, json={"policy": {"enabled": True, "require_gdpr": "yes"}})
    assert bad.status_code == 400 and "require_gdpr" in bad.json()["error"]["message"]
    audit = httpx.get(f"{stack.authz_http}/v1/orgs/{org}/audit-events", headers=h).json()["events"]
    policy_changes = [e for e in audit if e["action"] == "policy.set"]
    assert [e["actor"] for e in policy_changes] == ["carol@corp", "carol@corp"]
    assert json.loads(policy_changes[0]["after"])["version"] == 2  # newest first


def test_saved_policy_is_enforced_through_envoy(org):
    h = {"authorization": f"Bearer {org.stack.token(org.id)}"}
    r = httpx.put(f"{org.stack.authz_http}/v1/orgs/{org.id}/policy", headers=h, json={"policy": DEMO_POLICY})
    assert r.status_code == 200
    deadline = time.monotonic() + 5
    while org.post({"model": "deepseek/deepseek-v3.2", "messages": []}).status_code != 403:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    def events() -> list:  # written by the background writer: read until it has landed, bounded
        return httpx.get(f"{org.stack.authz_http}/v1/orgs/{org.id}/security-events", headers=h).json()["events"]

    wait_until(lambda: bool(events()), 15, "the block's security event")
    assert events()[0]["providers"][0]["provider"] == "deepseek"


def test_tokens_never_reach_the_logs(stack):
    org = fresh_org(stack, "enterprise")
    token = stack.token(org)
    for method in METHODS:
        http_call(stack, method, org, token)
    http_call(stack, "GetPolicy", org, token + "tampered")
    assert token.split(".")[2] not in stack.authz.log()


# --- gRPC -------------------------------------------------------------------------------


def test_grpc_policy_admin_with_reflection(stack):
    org = fresh_org(stack, "enterprise")
    with grpc.insecure_channel(stack.admin_grpc) as channel:
        admin = admin_pb2_grpc.PolicyAdminStub(channel)
        md = [("authorization", f"Bearer {stack.token(org, subject='dave@corp')}")]
        saved = admin.SetPolicy(
            admin_pb2.SetPolicyRequest(org_id=org, policy=policy_pb2.CompliancePolicy(**DEMO_POLICY)), metadata=md
        )
        assert saved.policy.version == 1 and saved.policy.updated_by == "dave@corp"
        got = admin.GetPolicy(admin_pb2.GetPolicyRequest(org_id=org), metadata=md)
        assert got.policy.require_gdpr and got.plan == "enterprise"
        previewed = admin.PreviewPolicy(
            admin_pb2.PreviewPolicyRequest(org_id=org, policy=policy_pb2.CompliancePolicy(**DEMO_POLICY)), metadata=md
        )
        assert "deepseek-r1-0528" in previewed.models_without_compliant_provider
        assert len(admin.ListProviders(admin_pb2.ListProvidersRequest(), metadata=md).providers) == 12

        with pytest.raises(grpc.RpcError) as err:
            admin.SetPolicy(
                admin_pb2.SetPolicyRequest(
                    org_id=org, policy=policy_pb2.CompliancePolicy(**DEMO_POLICY), expected_version=0
                ),
                metadata=md,
            )
        assert err.value.code() == grpc.StatusCode.ABORTED
        with pytest.raises(grpc.RpcError) as err:
            admin.GetPolicy(admin_pb2.GetPolicyRequest(org_id="someone-else"), metadata=md)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as err:
            admin.GetPolicy(admin_pb2.GetPolicyRequest(org_id=org))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in answer.list_services_response.service}
        assert "authz.v1.PolicyAdmin" in names


# --- CLI ----------------------------------------------------------------------------------


def test_cli_policy_get_preview_set(stack, tmp_path):
    org = fresh_org(stack, "enterprise")
    env = {"AUTHZ_API": stack.authz_http, "AUTHZ_TOKEN": stack.token(org, subject="erin@corp"), "PATH": "/usr/bin:/bin"}

    def authz(*args, stdin=None):
        return subprocess.run(
            [sys.executable, "-m", "authz", "policy", *args],
            capture_output=True,
            text=True,
            env=env,
            input=stdin,
            timeout=60,
        )

    policy = json.dumps(DEMO_POLICY)
    shown = authz("preview", org, "-", stdin=policy)
    assert shown.returncode == 0, shown.stderr
    assert "BLOCK  deepseek" in shown.stdout and "ALLOW  azure" in shown.stdout
    assert "deepseek-r1-0528" in shown.stdout.splitlines()[-1]
    saved = authz("set", org, "-", "--expected-version", "0", stdin=policy)
    assert saved.returncode == 0 and json.loads(saved.stdout)["policy"]["updated_by"] == "erin@corp"
    assert json.loads(saved.stdout)["policy"]["mode"] == "POLICY_MODE_ENFORCE"  # as get shows it, not UNSPECIFIED
    conflict = authz("set", org, "-", "--expected-version", "0", stdin=policy)
    assert conflict.returncode == 1 and "409 aborted" in conflict.stderr
    assert json.loads(authz("get", org).stdout)["policy"]["version"] == 1
    env["AUTHZ_TOKEN"] = stack.token(org, role="member")
    denied = authz("get", org)
    assert denied.returncode == 1 and "owner or admin" in denied.stderr


def test_disable_and_enable_keep_the_requirements(stack):
    """A toggle, not a replace: disabling keeps every requirement, enabling restores them,
    each an audited version; enabling needs the Enterprise plan, disabling does not."""
    org = fresh_org(stack, "enterprise")
    h = {"authorization": f"Bearer {stack.token(org, subject='dana@corp')}"}
    base = f"{stack.authz_http}/v1/orgs/{org}/policy"
    missing = httpx.post(base + ":disable", headers=h)
    assert missing.status_code == 404 and "set one first" in missing.json()["error"]["message"]
    assert httpx.put(base, headers=h, json={"policy": {**DEMO_POLICY, "data_residency": ["eu"]}}).status_code == 200
    off = httpx.post(base + ":disable", headers=h).json()["policy"]
    assert (off["enabled"], off["version"], off["require_gdpr"], off["data_residency"]) == (False, 2, True, ["eu"])
    stack.admin.set_plan(org, "pro")  # a downgrade: switching back on needs the plan again
    refused = httpx.post(base + ":enable", headers=h)
    assert refused.status_code == 403 and "Enterprise plan required" in refused.json()["error"]["message"]
    stack.admin.set_plan(org, "enterprise")
    stale = httpx.post(base + ":enable", headers=h, json={"expected_version": 1})
    assert stale.status_code == 409
    on = httpx.post(base + ":enable", headers=h).json()["policy"]
    assert (on["enabled"], on["version"], on["require_no_prompt_logging"]) == (True, 3, True)
    audit = httpx.get(f"{stack.authz_http}/v1/orgs/{org}/audit-events", headers=h).json()["events"]
    assert [e["target"] for e in audit if e["action"] == "policy.set"][:3] == ["v3", "v2", "v1"]


def test_list_entries_the_catalog_lacks_are_refused_with_the_closest_names(stack):
    org = fresh_org(stack, "enterprise")
    h = {"authorization": f"Bearer {stack.token(org)}"}
    url = f"{stack.authz_http}/v1/orgs/{org}/policy"
    typo = httpx.put(url, headers=h, json={"policy": {"enabled": True, "provider_denylist": ["deepsek"]}})
    assert typo.status_code == 400
    message = typo.json()["error"]["message"]
    assert "provider_denylist: 'deepsek' is not a provider in catalog" in message
    assert "did you mean 'deepseek'" in message and "force: true" in message
    # A preview of the same typo is refused the same way (it previewed as if the list were empty).
    preview = httpx.post(
        f"{url}:preview", headers=h, json={"policy": {"enabled": True, "provider_allowlist": ["opneai"]}}
    )
    assert preview.status_code == 400 and "did you mean 'openai'" in preview.json()["error"]["message"]
    model = httpx.put(url, headers=h, json={"policy": {"enabled": True, "model_allowlist": ["gpt4o"]}})
    assert model.status_code == 400 and "model_allowlist: 'gpt4o'" in model.json()["error"]["message"]
    forced = httpx.put(
        url, headers=h, json={"policy": {"enabled": True, "provider_denylist": ["deepsek"]}, "force": True}
    )
    assert forced.status_code == 200 and forced.json()["policy"]["provider_denylist"] == ["deepsek"]


def test_cli_enable_and_disable(stack):
    org = fresh_org(stack, "enterprise")
    stack.admin.set_policy(org, **DEMO_POLICY)
    env = {"AUTHZ_API": stack.authz_http, "AUTHZ_TOKEN": stack.token(org, subject="erin@corp"), "PATH": "/usr/bin:/bin"}

    def authz(*args):
        return subprocess.run(
            [sys.executable, "-m", "authz", "policy", *args], capture_output=True, text=True, env=env, timeout=60
        )

    off = authz("disable", org)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["policy"]["enabled"] is False and json.loads(off.stdout)["policy"]["require_gdpr"]
    on = authz("enable", org, "--expected-version", "2")
    assert on.returncode == 0 and json.loads(on.stdout)["policy"]["enabled"] is True


def test_tenant_collections_are_bounded_even_with_force(stack):
    """One org's stored input must not slow every org's Checks: each collection has a limit
    that force does not lift (docs/security.md)."""
    org = fresh_org(stack, "enterprise")
    h = {"authorization": f"Bearer {stack.token(org)}"}
    base = f"{stack.authz_http}/v1/orgs/{org}"
    deny = {"enabled": True, "provider_denylist": [f"p{i}" for i in range(513)]}
    r = httpx.put(base + "/policy", headers=h, json={"policy": deny, "force": True})
    assert r.status_code == 400 and "provider_denylist: 513 entries, at most 512" in r.json()["error"]["message"]
    with httpx.Client(headers=h, timeout=10) as client:
        for i in range(50):
            put = client.put(f"{base}/custom-providers/own-{i}", json={"provider": {"models": [f"own-{i}-m"]}})
            assert put.status_code == 200, put.text
        over = client.put(f"{base}/custom-providers/own-50", json={"provider": {"models": ["x"]}})
        assert over.status_code == 400 and "at most 50" in over.json()["error"]["message"]
        replaced = client.put(f"{base}/custom-providers/own-7", json={"provider": {"models": ["a", "b"]}})
        assert replaced.status_code == 200  # replacing one is not adding one
        many = client.put(
            f"{base}/custom-providers/own-7", json={"provider": {"models": [f"m{i}" for i in range(201)]}}
        )
        assert many.status_code == 400 and "201 entries, at most 200" in many.json()["error"]["message"]
        newline = client.put(f"{base}/custom-providers/own-7%0A", json={"provider": {"models": ["a"]}})
        assert newline.status_code == 400
        watched = client.put(base + "/alerts", json={"alerts": {"watched_models": ["gpt-4o"] * 51}})
        assert watched.status_code == 400 and "watched_models: 51 entries" in watched.json()["error"]["message"]
