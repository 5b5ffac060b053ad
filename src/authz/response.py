"""Verdict -> CheckResponse. Pure, no I/O.

Allowed: overwrite our `x-compliance-*` headers and strip every other one the client sent,
so nobody can hand the gateway an allow-list. Denied: the status from reasons.OUTCOMES and
an OpenAI-style JSON error body, so SDKs raise a clear error naming provider, model and the
failed requirements. Every response carries the decision id in Envoy's dynamic metadata.
"""

from __future__ import annotations

import json

from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from authz import policy
from authz.decision import Verdict
from authz.reasons import OUTCOMES, Reason

ALLOWED_PROVIDERS_HEADER = "x-compliance-allowed-providers"
ORG_HEADER = "x-compliance-org"
POLICY_VERSION_HEADER = "x-compliance-policy-version"
DECISION_ID_HEADER = "x-compliance-decision-id"

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_OK_STATUS = status_pb2.Status(code=code_pb2.OK)


def build(verdict: Verdict, decision_id: str, request_id: str, owned_headers: tuple[str, ...]) -> external_auth_pb2.CheckResponse:
    metadata = struct_pb2.Struct()
    metadata.update(
        {
            "decision_id": decision_id,
            "reason": verdict.reason.value,
            "org_id": verdict.org_id,
            "policy_version": verdict.policy_version,
            "enforced": verdict.enforced,
        }
    )
    if verdict.allowed:
        return external_auth_pb2.CheckResponse(
            status=_OK_STATUS,
            ok_response=_ok(verdict, decision_id, owned_headers),
            dynamic_metadata=metadata,
        )
    outcome = OUTCOMES[verdict.reason]
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=outcome.grpc_code, message=verdict.reason.value),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status={"code": outcome.http_status},
            headers=[
                _header("content-type", "application/json"),
                _header(DECISION_ID_HEADER, decision_id),
            ],
            body=deny_body(verdict, decision_id, request_id),
        ),
        dynamic_metadata=metadata,
    )


def _ok(verdict: Verdict, decision_id: str, owned_headers: tuple[str, ...]) -> external_auth_pb2.OkHttpResponse:
    if verdict.reason is Reason.NO_POLICY or not verdict.enforced:
        # Nothing to tell the gateway: strip whatever the client sent under our prefix.
        return external_auth_pb2.OkHttpResponse(headers_to_remove=owned_headers)
    ours = {
        ALLOWED_PROVIDERS_HEADER: ",".join(verdict.allowed_providers),
        ORG_HEADER: verdict.org_id,
        POLICY_VERSION_HEADER: str(verdict.policy_version),
        DECISION_ID_HEADER: decision_id,
    }
    return external_auth_pb2.OkHttpResponse(
        headers=[_header(k, v) for k, v in ours.items()],
        headers_to_remove=[h for h in owned_headers if h not in ours],
    )


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE)


def deny_body(verdict: Verdict, decision_id: str, request_id: str) -> str:
    outcome = OUTCOMES[verdict.reason]
    failed = sorted(
        {u.requirement for _, unmet in verdict.blocked for u in unmet},
        key=list(policy.LABELS).index,
    )
    error = {
        "type": outcome.error_type,
        "code": verdict.reason.value,
        "message": message(verdict),
        "provider": verdict.provider or None,
        "model": verdict.model or None,
        "failed_requirements": failed,
        "blocked_providers": [
            {
                "provider": provider,
                "failed_requirements": [u.requirement for u in unmet],
                "unknown": [u.requirement for u in unmet if u.cause == policy.UNKNOWN],
            }
            for provider, unmet in verdict.blocked
        ],
        "policy_version": verdict.policy_version,
        "decision_id": decision_id,
        "request_id": request_id or None,
    }
    return json.dumps({"error": error}, separators=(",", ":"))


_POLICY = "your organization's provider compliance policy"
_CANNOT_VERIFY = "so compliance cannot be verified and the request was not forwarded"


def message(verdict: Verdict) -> str:
    """One sentence a developer can act on, naming provider, model and failed requirements."""
    r, model, provider = verdict.reason, verdict.model, verdict.provider
    if r is Reason.PROVIDER_NOT_COMPLIANT:
        failures = next((unmet for p, unmet in verdict.blocked if p == provider), ())
        return (
            f"Provider '{provider}' is blocked by {_POLICY} for model '{model}': "
            f"it does not meet {policy.describe(failures)}."
        )
    if r is Reason.NO_COMPLIANT_PROVIDER:
        reasons = "; ".join(f"'{p}' fails {policy.describe(u)}" for p, u in verdict.blocked)
        return f"No provider serving model '{model}' meets {_POLICY}: {reasons}."
    if r is Reason.UNKNOWN_MODEL:
        return f"Model '{model}' is not in the provider catalog, {_CANNOT_VERIFY}."
    if r is Reason.UNKNOWN_PROVIDER:
        return f"Provider '{provider}' is not in the provider catalog, {_CANNOT_VERIFY}."
    if r is Reason.PROVIDER_DOES_NOT_SERVE_MODEL:
        return f"Provider '{provider}' does not serve model '{model}' according to the provider catalog."
    if r is Reason.PROVIDER_CONFLICT:
        return f"The provider header names '{provider}' but model '{model}' is pinned to another provider."
    if r is Reason.MODEL_MISSING:
        return f"The request names no model (no model header and no top-level \"model\" in the JSON body), {_CANNOT_VERIFY}."
    if r is Reason.MODEL_INVALID:
        return "The model must be a non-empty string."
    if r is Reason.MODEL_MISMATCH:
        return f"The model header ('{model}') and the body's \"model\" disagree, {_CANNOT_VERIFY}."
    if r is Reason.DUPLICATE_MODEL:
        return f"The JSON body has more than one top-level \"model\" key, {_CANNOT_VERIFY}."
    if r is Reason.BODY_NOT_JSON:
        return f"The request body is not a JSON object, {_CANNOT_VERIFY}."
    if r is Reason.BODY_ENCODED:
        return f"Compressed request bodies cannot be inspected ({_CANNOT_VERIFY}); send the body without content-encoding."
    if r is Reason.BODY_TRUNCATED:
        return (
            "The request body is larger than the compliance check's inspection limit, "
            f"{_CANNOT_VERIFY}. Send a smaller request or ask your platform team to raise the limit."
        )
    if r is Reason.ORG_MISSING:
        return "No organization could be identified: send 'Authorization: Bearer <API key>'."
    if r is Reason.API_KEY_UNKNOWN:
        return "The API key is not recognized."
    if r is Reason.CATALOG_NOT_LOADED:
        return "The provider catalog is not loaded yet; the request was not forwarded. Retry shortly."
    if r in (Reason.STATE_UNAVAILABLE, Reason.STATE_STALE):
        return "Provider compliance policy state is temporarily unavailable; the request was not forwarded. Retry shortly."
    return f"Allowed ({r.value})."
