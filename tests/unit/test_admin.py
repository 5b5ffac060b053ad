"""Policy management without a server: preview, validation, tokens, the error-kind and method
tables (the running service's RBAC matrix is tests/e2e/test_admin_api.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authz.admin.service import preview
from authz.admin.tokens import Authenticator, AuthError, issue
from authz.admin.validation import AdminError, validate
from authz.policy.catalog import CatalogIndex, parse
from authz.v1 import admin_pb2, policy_pb2
from devstack.stack import ADMIN_SECRET, SAMPLE_CATALOG
from support.policies import DEMO_POLICY

CATALOG = CatalogIndex.build(parse(SAMPLE_CATALOG.read_text()))
_orgs = itertools.count()


# --- pure parts -------------------------------------------------------------------------


def test_preview_lists_every_provider_with_unknown_vs_not_met_and_orphaned_models():
    result = preview(CATALOG, policy_pb2.CompliancePolicy(**DEMO_POLICY))
    by_id = {p.provider: p for p in result.providers}
    assert len(by_id) == len(CATALOG.providers)
    assert by_id["azure"].allowed and not by_id["azure"].unmet
    deepseek = {u.requirement: u.cause for u in by_id["deepseek"].unmet}
    assert deepseek == {
        "soc2_or_iso27001": "unknown",
        "gdpr": "not_met",
        "no_prompt_training": "not_met",
        "no_prompt_logging": "not_met",
    }
    assert by_id["groq"].unmet[0].label == "GDPR"
    # The evidence a value came from, and its date; nothing when nothing is published.
    gdpr = next(u for u in by_id["deepseek"].unmet if u.requirement == "gdpr")
    assert (gdpr.evidence, gdpr.checked_at) == ("sample: DeepSeek trust/data-policy page (illustrative)", "2026-11-01")
    soc2 = next(u for u in by_id["deepseek"].unmet if u.requirement == "soc2_or_iso27001")
    assert (soc2.evidence, soc2.checked_at) == ("", "")
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


LISTS = ("provider_allowlist", "provider_denylist", "model_allowlist", "model_denylist")


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize("entry", [" deepseek", "deepseek ", "deepseek\n", "\tdeepseek", "deep seek", "a,b", ""])
def test_list_entries_must_be_ids_whatever_force_says(name, entry):
    """validate() runs before `force` is looked at: " deepseek" would never match, and a deny
    list holding it would block nothing."""
    with pytest.raises(AdminError, match=f"{name}: .* is not an id"):
        validate(policy_pb2.CompliancePolicy(enabled=True, **{name: [entry]}))


@pytest.mark.parametrize(
    ("name", "typo", "meant"),
    [(n, "deepsek", "deepseek") for n in LISTS[:2]] + [(n, "deepseek-v3.3", "deepseek-v3.2") for n in LISTS[2:]],
)
def test_every_list_is_checked_against_the_catalog(name, typo, meant):
    """A typo in any list, deny lists included, is refused (unless forced) with the closest ids."""
    from authz.admin.validation import known_ids
    from authz.v1 import catalog_pb2

    with pytest.raises(AdminError, match=f"{name}: '{typo}' is not a .* did you mean '{meant}'"):
        known_ids(policy_pb2.CompliancePolicy(enabled=True, **{name: [typo]}), CATALOG, catalog_pb2.CustomProviders())
    known_ids(policy_pb2.CompliancePolicy(enabled=True, **{name: [meant]}), CATALOG, catalog_pb2.CustomProviders())


def test_hs256_tokens_check_the_configured_issuer():
    auth = Authenticator(hs256_secret=ADMIN_SECRET, issuer="https://idp.example")
    good = issue(ADMIN_SECRET, subject="a", org_id="acme", role="owner", issuer="https://idp.example")
    assert auth.principal("Bearer " + good).org_id == "acme"
    for issuer in ("https://evil.example", ""):
        forged = issue(ADMIN_SECRET, subject="a", org_id="acme", role="owner", issuer=issuer)
        with pytest.raises(AuthError, match="not valid|lacks the 'iss' claim"):
            auth.principal("Bearer " + forged)


def test_rs256_tokens(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    auth = Authenticator(rs256_public_key=public, issuer="https://idp.example", audience="authz")
    claims = {
        "sub": "bob",
        "org_id": "acme",
        "role": "admin",
        "exp": int(time.time()) + 60,
        "iss": "https://idp.example",
        "aud": "authz",
    }
    assert auth.principal("Bearer " + jwt.encode(claims, key, algorithm="RS256")).role == "admin"
    with pytest.raises(AuthError, match="not valid"):
        auth.principal("Bearer " + jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256"))
    for iss in ("https://other.example", None):  # another issuer, or none, with a configured issuer
        other = {k: v for k, v in claims.items() if k != "iss"} | ({"iss": iss} if iss else {})
        with pytest.raises(AuthError, match="not valid|lacks the 'iss' claim"):
            auth.principal("Bearer " + jwt.encode(other, key, algorithm="RS256"))
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


def test_every_admin_rpc_has_a_method_and_every_error_kind_both_codes():
    from authz.admin import service as admin_mod
    from authz.admin.transports import PolicyAdminServicer

    rpcs = {m.name for m in admin_pb2.DESCRIPTOR.services_by_name["PolicyAdmin"].methods}
    admin = admin_mod.PolicyAdmin(store=None, catalog=lambda: None, authenticator=Authenticator())
    assert set(admin.methods) == rpcs
    assert all(callable(getattr(PolicyAdminServicer, rpc)) for rpc in rpcs)
    kinds = [
        admin_mod.UNAUTHENTICATED,
        admin_mod.PERMISSION_DENIED,
        admin_mod.INVALID_ARGUMENT,
        admin_mod.ABORTED,
        admin_mod.UNAVAILABLE,
        admin_mod.NOT_FOUND,
    ]
    assert [(k.http_status, k.grpc_code) for k in kinds] == [
        (401, grpc.StatusCode.UNAUTHENTICATED),
        (403, grpc.StatusCode.PERMISSION_DENIED),
        (400, grpc.StatusCode.INVALID_ARGUMENT),
        (409, grpc.StatusCode.ABORTED),
        (503, grpc.StatusCode.UNAVAILABLE),
        (404, grpc.StatusCode.NOT_FOUND),
    ]


@pytest.mark.parametrize(
    ("name", "entry", "limit"),
    [(n, "x", 512) for n in LISTS] + [("allowed_countries", "US", 250), ("data_residency", "eu", 32)],
)
def test_every_policy_list_is_bounded(name, entry, limit):
    """validate() runs whatever `force` says: 50,000 deny-list entries must never be stored."""
    validate(policy_pb2.CompliancePolicy(enabled=True, **{name: [entry] * limit}))
    with pytest.raises(AdminError, match=f"{name}: {limit + 1} entries, at most {limit}"):
        validate(policy_pb2.CompliancePolicy(enabled=True, **{name: [entry] * (limit + 1)}))


def test_a_list_entry_is_bounded_in_length():
    with pytest.raises(AdminError, match="at most 200 characters"):
        validate(policy_pb2.CompliancePolicy(enabled=True, model_denylist=["m" * 201]))


def test_a_custom_provider_is_bounded_in_models():
    from authz.admin.validation import validate_custom_provider
    from authz.v1 import catalog_pb2

    validate_custom_provider(catalog_pb2.CustomProvider(id="own", models=[f"m{i}" for i in range(200)]), CATALOG)
    with pytest.raises(AdminError, match="models: 201 entries, at most 200"):
        validate_custom_provider(catalog_pb2.CustomProvider(id="own", models=[f"m{i}" for i in range(201)]), CATALOG)


@pytest.mark.parametrize("bad", ["own\n", "own\r", "own ", "Own", "o" * 64])
def test_custom_provider_ids_are_matched_whole(bad):
    """`$` matches before a final newline: ids are checked with fullmatch everywhere."""
    from authz.admin.validation import validate_custom_provider
    from authz.v1 import catalog_pb2

    with pytest.raises(AdminError, match="use lower-case letters"):
        validate_custom_provider(catalog_pb2.CustomProvider(id=bad, models=["m"]), CATALOG)
    with pytest.raises(AdminError, match="model id"):
        validate_custom_provider(catalog_pb2.CustomProvider(id="own", models=["m\n"]), CATALOG)
