"""Every outcome of a Check, named once.

One enum of reasons is shared by the deny body (`code`), the security event, the log line
and the `decisions_total` metric label, and one table maps each reason to what the client
gets. Reading this file tells you every way a request can end.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.rpc import code_pb2


class Reason(enum.StrEnum):
    # Allowed.
    NO_POLICY = "no_policy"
    COMPLIANT = "compliant"
    MODEL_FREE = "model_free"  # an endpoint that sends no prompt (listings, retrievals, cancels)
    # Blocked by the policy (403, security event).
    PROVIDER_NOT_COMPLIANT = "provider_not_compliant"
    NO_COMPLIANT_PROVIDER = "no_compliant_provider"
    ROUTING_NOT_ENFORCEABLE = "routing_not_enforceable"  # strict routing: some candidate is not compliant
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_PROVIDER = "unknown_provider"
    PROVIDER_DOES_NOT_SERVE_MODEL = "provider_does_not_serve_model"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    ENDPOINT_NOT_COVERED = "endpoint_not_covered"
    UPGRADE_NOT_ALLOWED = "upgrade_not_allowed"  # Upgrade / CONNECT on a row that is no websocket
    UNKNOWN_DEPLOYMENT = "unknown_deployment"
    # The request cannot be read safely while a policy is enabled (400/413/415, security event).
    MODEL_MISSING = "model_missing"
    MODEL_INVALID = "model_invalid"
    MODEL_MISMATCH = "model_mismatch"
    DUPLICATE_MODEL = "duplicate_model"
    PROVIDER_CONFLICT = "provider_conflict"
    FIELD_NOT_ALLOWED = "field_not_allowed"  # a body field the gateway may route by (its contract)
    UNKNOWN_REQUIREMENT = "unknown_requirement"  # x-compliance-require names no requirement
    BODY_NOT_JSON = "body_not_json"
    BODY_MALFORMED = "body_malformed"
    BATCH_NOT_INSPECTABLE = "batch_not_inspectable"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    BODY_ENCODED = "body_encoded"
    BODY_TRUNCATED = "body_truncated"
    # No organization, or no single credential to find it by (401).
    ORG_MISSING = "org_missing"
    ORG_MALFORMED = "org_malformed"  # not one well-formed org id: a list, a number, a repeated header
    API_KEY_UNKNOWN = "api_key_unknown"
    CREDENTIAL_CONFLICT = "credential_conflict"
    # Too many unknown API keys from one client address (429).
    TOO_MANY_UNKNOWN_KEYS = "too_many_unknown_api_keys"
    INSPECTION_BUDGET_EXCEEDED = "inspection_budget_exceeded"  # an org's large bodies, too many at once
    # We do not know the policy state, so we cannot allow (503).
    STATE_UNAVAILABLE = "state_unavailable"
    STATE_STALE = "state_stale"
    CATALOG_NOT_LOADED = "catalog_not_loaded"


@dataclass(frozen=True, slots=True)
class Outcome:
    http_status: int  # 200 for allowed
    grpc_code: int  # google.rpc.Code carried in CheckResponse.status
    error_type: str  # OpenAI-style error.type in the deny body
    policy_block: bool  # a block by an org's enabled policy (or an ambiguous org): a security event


_COMPLIANCE = "provider_compliance_violation"
_INVALID = "invalid_request_error"
_DENIED = code_pb2.PERMISSION_DENIED
_ALLOWED = Outcome(200, code_pb2.OK, "", policy_block=False)


def _blocked(status: int, error_type: str) -> Outcome:
    return Outcome(status, _DENIED, error_type, policy_block=True)


OUTCOMES: dict[Reason, Outcome] = {
    Reason.NO_POLICY: _ALLOWED,
    Reason.COMPLIANT: _ALLOWED,
    Reason.MODEL_FREE: _ALLOWED,
    Reason.PROVIDER_NOT_COMPLIANT: _blocked(403, _COMPLIANCE),
    Reason.NO_COMPLIANT_PROVIDER: _blocked(403, _COMPLIANCE),
    Reason.ROUTING_NOT_ENFORCEABLE: _blocked(403, _COMPLIANCE),
    Reason.UNKNOWN_MODEL: _blocked(403, _COMPLIANCE),
    Reason.UNKNOWN_PROVIDER: _blocked(403, _COMPLIANCE),
    Reason.PROVIDER_DOES_NOT_SERVE_MODEL: _blocked(403, _COMPLIANCE),
    Reason.MODEL_NOT_ALLOWED: _blocked(403, _COMPLIANCE),
    Reason.ENDPOINT_NOT_COVERED: _blocked(403, _COMPLIANCE),
    Reason.UPGRADE_NOT_ALLOWED: _blocked(400, _INVALID),
    Reason.UNKNOWN_DEPLOYMENT: _blocked(403, _COMPLIANCE),
    # A client error, not a block by the policy: counted in authz_decisions_total, no event.
    Reason.MODEL_MISSING: Outcome(400, _DENIED, _INVALID, policy_block=False),
    Reason.MODEL_INVALID: _blocked(400, _INVALID),
    Reason.MODEL_MISMATCH: _blocked(400, _INVALID),
    Reason.DUPLICATE_MODEL: _blocked(400, _INVALID),
    Reason.PROVIDER_CONFLICT: _blocked(400, _INVALID),
    Reason.FIELD_NOT_ALLOWED: _blocked(400, _INVALID),
    Reason.UNKNOWN_REQUIREMENT: Outcome(400, _DENIED, _INVALID, policy_block=False),
    Reason.BODY_NOT_JSON: _blocked(400, _INVALID),
    Reason.BODY_MALFORMED: _blocked(400, _INVALID),
    Reason.BATCH_NOT_INSPECTABLE: _blocked(400, _INVALID),
    Reason.UNSUPPORTED_CONTENT_TYPE: _blocked(415, _INVALID),
    Reason.BODY_ENCODED: _blocked(415, _INVALID),
    Reason.BODY_TRUNCATED: _blocked(413, _INVALID),
    Reason.ORG_MISSING: Outcome(401, code_pb2.UNAUTHENTICATED, "authentication_error", False),
    # Someone named an org in a form that could mean another one: recorded, as a block is.
    Reason.ORG_MALFORMED: Outcome(401, code_pb2.UNAUTHENTICATED, "authentication_error", True),
    Reason.API_KEY_UNKNOWN: Outcome(401, code_pb2.UNAUTHENTICATED, "authentication_error", False),
    Reason.CREDENTIAL_CONFLICT: Outcome(401, code_pb2.UNAUTHENTICATED, "authentication_error", False),
    Reason.TOO_MANY_UNKNOWN_KEYS: Outcome(429, code_pb2.RESOURCE_EXHAUSTED, "rate_limit_error", False),
    Reason.INSPECTION_BUDGET_EXCEEDED: Outcome(429, code_pb2.RESOURCE_EXHAUSTED, "rate_limit_error", False),
    Reason.STATE_UNAVAILABLE: Outcome(503, code_pb2.UNAVAILABLE, "service_unavailable", False),
    Reason.STATE_STALE: Outcome(503, code_pb2.UNAVAILABLE, "service_unavailable", False),
    Reason.CATALOG_NOT_LOADED: Outcome(503, code_pb2.UNAVAILABLE, "service_unavailable", False),
}
