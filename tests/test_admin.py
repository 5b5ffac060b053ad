"""Policy management: preview, validation, optimistic concurrency, tokens, and the full RBAC
matrix (role x plan x own/other org x method) over the JSON API and gRPC of a running authz."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import subprocess
import sys
import time

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from authz.admin import AdminError, preview, validate
from authz.auth import AuthError, Authenticator, issue
from authz.catalog import CatalogIndex, parse
from authz.testing.stack import ADMIN_SECRET, SAMPLE_CATALOG
from authz.v1 import admin_pb2, admin_pb2_grpc, policy_pb2
from conftest import DEMO_POLICY


CATALOG = CatalogIndex.build(parse(SAMPLE_CATALOG.read_text()))
_orgs = itertools.count()


# --- pure parts -------------------------------------------------------------------------


def test_preview_lists_every_provider_with_unknown_vs_not_met_and_orphaned_models():
    result = preview(CATALOG, policy_pb2.CompliancePolicy(**DEMO_POLICY))
    by_id = {p.provider: p for p in result.providers}
    assert len(by_id) == len(CATALOG.providers)
    assert by_id["azure"].allowed and not by_id["azure"].unmet
    deepseek = {u.requirement: u.cause for u in by_id["deepseek"].unmet}
    assert deepseek == {"soc2_or_iso27001": "unknown", "gdpr": "not_met", "no_prompt_training": "not_met",
                        "no_prompt_logging": "not_met"}
    assert by_id["groq"].unmet[0].label == "GDPR"
    assert list(result.models_without_compliant_provider) == ["deepseek-r1-0528", "kimi-k2"]
    # Served by compliant and non-compliant providers: strict routing needs a pin for these.
    assert "deepseek-v3.2" in result.models_needing_a_pin_in_strict_routing
    assert "gemini-2.5-pro" not in result.models_needing_a_pin_in_strict_routing  # one provider, compliant
    assert result.allowed_count + result.blocked_count == len(by_id)


def test_preview_of_an_empty_policy_allows_everything():
    result = preview(CATALOG, policy_pb2.CompliancePolicy())
    assert all(p.allowed for p in result.providers) and not result.models_without_compliant_provider


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(enabled=True, require_soc2=True, certifications=2), "needs both"),
        (dict(enabled=True), "at least one requirement"),
    ],
)
def test_validation(fields, message):
    with pytest.raises(AdminError, match=message):
        validate(policy_pb2.CompliancePolicy(**fields))


def test_rs256_tokens(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    auth = Authenticator(rs256_public_key=public, issuer="https://idp.example", audience="authz")
    claims = {"sub": "bob", "org_id": "acme", "role": "admin", "exp": int(time.time()) + 60,
              "iss": "https://idp.example", "aud": "authz"}
    assert auth.principal("Bearer " + jwt.encode(claims, key, algorithm="RS256")).role == "admin"
    with pytest.raises(AuthError, match="not valid"):
        auth.principal("Bearer " + jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256"))
    with pytest.raises(AuthError, match="not valid"):  # algorithm confusion: HS256 keyed with the public key
        auth.principal("Bearer " + forge_hs256(claims, public.encode()))


def forge_hs256(claims: dict, key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Bearer"),
        ("Basic abc", "Bearer"),
        ("Bearer " + issue(ADMIN_SECRET, subject="a", org_id="o", role="owner", ttl_s=-120), "expired"),
        ("Bearer " + issue("another-secret-that-is-long-enough-x", subject="a", org_id="o", role="owner"), "not valid"),
        ("Bearer " + jwt.encode({"sub": "a", "role": "owner", "exp": int(time.time()) + 60}, ADMIN_SECRET), "org_id"),
    ],
)
def test_bad_tokens(header, message):
    with pytest.raises(AuthError, match=message):
        Authenticator(hs256_secret=ADMIN_SECRET).principal(header)


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
        return httpx.put(f"{base}/v1/orgs/{org}/custom-providers/own-llm", headers=h,
                         json={"provider": {"models": ["own-model"]}})
    if method == "DeleteCustomProvider":
        return httpx.delete(f"{base}/v1/orgs/{org}/custom-providers/own-llm", headers=h)
    if method == "SetAlerts":
        return httpx.put(f"{base}/v1/orgs/{org}/alerts", headers=h,
                         json={"alerts": {"webhook_url": "https://hooks.example.com/x", "block_threshold": 5}})
    raise AssertionError(method)


METHODS = ["GetPolicy", "PreviewPolicy", "SetPolicy:enable", "SetPolicy:disable", "ListProviders",
           "ListSecurityEvents", "ListAuditEvents", "SetCustomProvider", "DeleteCustomProvider", "SetAlerts"]
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
    first = httpx.put(url, headers=h, json={"policy": {**DEMO_POLICY, "version": 99, "updated_by": "mallory"},
                                            "expected_version": 0})
    assert first.status_code == 200
    stored = first.json()["policy"]
    assert (stored["version"], stored["updated_by"]) == (1, "carol@corp"), "server-owned fields are not client input"
    stale = httpx.put(url, headers=h, json={"policy": DEMO_POLICY, "expected_version": 0})
    assert stale.status_code == 409 and "version 1" in stale.json()["error"]["message"]
    assert httpx.put(url, headers=h, json={"policy": DEMO_POLICY, "expected_version": 1}).json()["policy"]["version"] == 2
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
    events = httpx.get(f"{org.stack.authz_http}/v1/orgs/{org.id}/security-events", headers=h).json()["events"]
    assert events and events[0]["providers"][0]["provider"] == "deepseek"


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
        saved = admin.SetPolicy(admin_pb2.SetPolicyRequest(org_id=org, policy=policy_pb2.CompliancePolicy(**DEMO_POLICY)),
                                metadata=md)
        assert saved.policy.version == 1 and saved.policy.updated_by == "dave@corp"
        got = admin.GetPolicy(admin_pb2.GetPolicyRequest(org_id=org), metadata=md)
        assert got.policy.require_gdpr and got.plan == "enterprise"
        previewed = admin.PreviewPolicy(admin_pb2.PreviewPolicyRequest(
            org_id=org, policy=policy_pb2.CompliancePolicy(**DEMO_POLICY)), metadata=md)
        assert "deepseek-r1-0528" in previewed.models_without_compliant_provider
        assert len(admin.ListProviders(admin_pb2.ListProvidersRequest(), metadata=md).providers) == 12

        with pytest.raises(grpc.RpcError) as err:
            admin.SetPolicy(admin_pb2.SetPolicyRequest(org_id=org, policy=policy_pb2.CompliancePolicy(**DEMO_POLICY),
                                                       expected_version=0), metadata=md)
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
        return subprocess.run([sys.executable, "-m", "authz", "policy", *args], capture_output=True, text=True,
                              env=env, input=stdin, timeout=60)

    policy = json.dumps(DEMO_POLICY)
    shown = authz("preview", org, "-", stdin=policy)
    assert shown.returncode == 0, shown.stderr
    assert "BLOCK  deepseek" in shown.stdout and "ALLOW  azure" in shown.stdout
    assert "deepseek-r1-0528" in shown.stdout.splitlines()[-1]
    saved = authz("set", org, "-", "--expected-version", "0", stdin=policy)
    assert saved.returncode == 0 and json.loads(saved.stdout)["policy"]["updated_by"] == "erin@corp"
    conflict = authz("set", org, "-", "--expected-version", "0", stdin=policy)
    assert conflict.returncode == 1 and "409 aborted" in conflict.stderr
    assert json.loads(authz("get", org).stdout)["policy"]["version"] == 1
    env["AUTHZ_TOKEN"] = stack.token(org, role="member")
    denied = authz("get", org)
    assert denied.returncode == 1 and "owner or admin" in denied.stderr
