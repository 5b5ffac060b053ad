"""Verdict -> CheckResponse. Pure, no I/O.

Allowed: overwrite our `x-compliance-*` headers and strip every other one the client sent,
so nobody can hand the gateway an allow-list. Denied: the status from reasons.OUTCOMES and
an OpenAI-style JSON error body, so SDKs raise a clear error naming provider, model and the
failed requirements. Every response carries the decision id in Envoy's dynamic metadata.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from google.protobuf import struct_pb2
from google.rpc import code_pb2, status_pb2

from authz.check import assertion
from authz.check.verdict import Verdict
from authz.clip import MODEL, PROVIDER, REQUEST_ID, clip
from authz.policy import gateways, requirements
from authz.policy import rules as policy_rules
from authz.reasons import OUTCOMES, Reason
from authz.v1 import catalog_pb2

# Catalog providers by id, so a deny body can say where each failing fact was published.
Providers = Mapping[str, catalog_pb2.Provider]
_NO_PROVIDERS: Providers = {}
_EVIDENCE_CHARS = 300

ALLOWED_PROVIDERS_HEADER = "x-compliance-allowed-providers"
ORG_HEADER = "x-compliance-org"
POLICY_VERSION_HEADER = "x-compliance-policy-version"
DECISION_ID_HEADER = "x-compliance-decision-id"

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_OK_STATUS = status_pb2.Status(code=code_pb2.OK)


def build(
    verdict: Verdict,
    decision_id: str,
    request_id: str,
    owned_headers: tuple[str, ...],
    providers: Providers = _NO_PROVIDERS,
    catalog_version: int = 0,
    gateway_headers: tuple[tuple[str, str], ...] = (),
    org_assertion: str = "",
) -> external_auth_pb2.CheckResponse:
    """`gateway_headers` are set (overwriting a client's) on every request forwarded: the
    controls the gateway's routing contract needs (LLMGateway's x-no-fallback);
    `org_assertion`, when given, tells the egress checkpoint the org (authz.check.assertion)."""
    response = external_auth_pb2.CheckResponse()
    if verdict.allowed:
        # Everything but the decision id repeats across requests of one org and model: copy a
        # template (a C-level copy) instead of building a dozen messages each time.
        response.CopyFrom(_allowed_template(verdict, owned_headers, gateway_headers))
        ok = response.ok_response
        if verdict.restricts_routing:
            _add_decision_id(ok.headers, decision_id)
        # To the client as well, on every allowed response: a user can quote it, as with a 403.
        _add_decision_id(ok.response_headers_to_add, decision_id)
        if org_assertion:
            header = ok.headers.add()
            header.header.key, header.header.value = assertion.HEADER, org_assertion
            header.append_action = _OVERWRITE
            if assertion.HEADER in ok.headers_to_remove:  # a client's own: replaced, not removed
                kept = [h for h in ok.headers_to_remove if h != assertion.HEADER]
                del ok.headers_to_remove[:]
                ok.headers_to_remove.extend(kept)
    else:
        # The same for every request of one verdict but for the two ids: a template again.
        response.CopyFrom(_denied_template(verdict))
        denied = response.denied_response
        _add_decision_id(denied.headers, decision_id)
        denied.body = deny_body(verdict, decision_id, request_id, providers, catalog_version)
    response.dynamic_metadata.fields["decision_id"].string_value = decision_id
    return response


HttpAnswer = tuple[int, list[tuple[str, str]], bytes]
JSON_CONTENT_TYPE = ("content-type", "application/json")
HEADERS_TO_REMOVE = "x-envoy-auth-headers-to-remove"  # Envoy's HTTP ext_authz: strip these upstream


def build_http(
    verdict: Verdict,
    decision_id: str,
    request_id: str,
    owned_headers: tuple[str, ...],
    providers: Providers = _NO_PROVIDERS,
    catalog_version: int = 0,
    gateway_headers: tuple[tuple[str, str], ...] = (),
    org_assertion: str = "",
) -> HttpAnswer:
    """`build`'s answer as Envoy's HTTP ext_authz reads it (authz.server.http_transport): the
    same headers and body, from the same templates, without a CheckResponse per request.
    Allowed: 200, the headers for the gateway (Envoy's allowed_upstream_headers picks ours),
    the client's own x-compliance-* in x-envoy-auth-headers-to-remove; the decision id is one
    header for the gateway and the client (allowed_client_headers_on_success)."""
    if verdict.allowed:
        headers, removed = _allowed_http(verdict, owned_headers, gateway_headers)
        out = [*headers, (DECISION_ID_HEADER, decision_id)]
        if org_assertion:
            out.append((assertion.HEADER, org_assertion))
            removed = tuple(h for h in removed if h != assertion.HEADER)  # a client's own: replaced
        if removed:
            out.append((HEADERS_TO_REMOVE, ",".join(removed)))
        return 200, out, b""
    body = deny_body(verdict, decision_id, request_id, providers, catalog_version)
    return OUTCOMES[verdict.reason].http_status, [JSON_CONTENT_TYPE, (DECISION_ID_HEADER, decision_id)], body.encode()


@functools.lru_cache(maxsize=16_384)
def _allowed_http(
    verdict: Verdict, owned_headers: tuple[str, ...], gateway_headers: tuple[tuple[str, str], ...]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The allowed template's headers and removals, read once per template."""
    ok = _allowed_template(verdict, owned_headers, gateway_headers).ok_response
    return tuple((h.header.key, h.header.value) for h in ok.headers), tuple(ok.headers_to_remove)


@functools.lru_cache(maxsize=4096)
def _denied_template(verdict: Verdict) -> external_auth_pb2.CheckResponse:
    outcome = OUTCOMES[verdict.reason]
    template = external_auth_pb2.CheckResponse()
    template.status.code = outcome.grpc_code
    template.status.message = verdict.reason.value
    denied = template.denied_response
    denied.status.code = outcome.http_status
    denied.headers.append(_header(*JSON_CONTENT_TYPE))
    _describe(template.dynamic_metadata, verdict)
    return template


@functools.lru_cache(maxsize=16_384)
def _allowed_template(
    verdict: Verdict, owned_headers: tuple[str, ...], gateway_headers: tuple[tuple[str, str], ...] = ()
) -> external_auth_pb2.CheckResponse:
    template = external_auth_pb2.CheckResponse(status=_OK_STATUS)
    ok = template.ok_response
    ok.headers.extend(_header(k, v) for k, v in gateway_headers)
    if not verdict.restricts_routing:
        # Nothing to tell the gateway: strip whatever the client sent under our prefix.
        ok.headers_to_remove.extend(owned_headers)
    else:
        ours = {
            ALLOWED_PROVIDERS_HEADER: ",".join(verdict.allowed_providers),
            ORG_HEADER: verdict.org_id,
            POLICY_VERSION_HEADER: str(verdict.policy_version),
        }
        ok.headers.extend(_header(k, v) for k, v in ours.items())
        ok.headers_to_remove.extend(h for h in owned_headers if h not in ours and h != DECISION_ID_HEADER)
    _describe(template.dynamic_metadata, verdict)
    return template


def _describe(metadata: struct_pb2.Struct, verdict: Verdict) -> None:
    """Envoy dynamic metadata (namespace envoy.filters.http.ext_authz), for access logs."""
    fields = metadata.fields
    fields["reason"].string_value = verdict.reason.value
    fields["org_id"].string_value = verdict.org_id
    fields["policy_version"].number_value = verdict.policy_version
    fields["enforced"].bool_value = verdict.enforced


def _add_decision_id(headers: Any, decision_id: str) -> None:
    """Append the decision-id header to a repeated HeaderValueOption field, in place."""
    header = headers.add()
    header.header.key = DECISION_ID_HEADER
    header.header.value = decision_id
    header.append_action = _OVERWRITE


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE)


def deny_body(
    verdict: Verdict,
    decision_id: str,
    request_id: str,
    providers: Providers = _NO_PROVIDERS,
    catalog_version: int = 0,
) -> str:
    """The JSON error: everything but the two ids is the same for every request of one verdict
    (and catalog), so it is rendered once and the ids are appended (the last two fields)."""
    key = (verdict, catalog_version)
    head = _DENY_HEADS.get(key)
    if head is None:
        if len(_DENY_HEADS) >= _DENY_HEADS_MAX:
            _DENY_HEADS.clear()
        head = _DENY_HEADS[key] = _deny_head(verdict, providers)
    request = json.dumps(clip(request_id, REQUEST_ID) or None)
    return f'{head},"decision_id":{json.dumps(decision_id)},"request_id":{request}}}}}'


_DENY_HEADS: dict[tuple[Verdict, int], str] = {}
_DENY_HEADS_MAX = 1024  # bodies of recent verdicts; a client varying its model cannot grow it


def _deny_head(verdict: Verdict, providers: Providers) -> str:
    outcome = OUTCOMES[verdict.reason]
    via = dict(verdict.via)
    error = {
        "type": outcome.error_type,
        "code": verdict.reason.value,
        "message": message(verdict),
        "provider": clip(verdict.provider, PROVIDER) or None,
        "model": clip(verdict.model, MODEL) or None,
        "failed_requirements": verdict.failed_requirements,
        "blocked_providers": [
            {
                "provider": provider,
                "failed_requirements": [u.requirement for u in unmet],
                "unknown": [u.requirement for u in unmet if u.cause == policy_rules.UNKNOWN],
                **_evidence(providers.get(provider), unmet),
                **({"reached_through": via[provider]} if provider in via else {}),
            }
            for provider, unmet in verdict.blocked
        ],
        "custom_id": clip(verdict.item, MODEL) or None,
        "alternatives": list(verdict.alternatives),
        "policy_version": verdict.policy_version,
    }
    return json.dumps({"error": error}, separators=(",", ":"))[:-2]  # reopened for the ids


def _evidence(provider: catalog_pb2.Provider | None, unmet: policy_rules.Failures) -> dict[str, object]:
    """Where each fact a failed requirement reads was published ("not published" when the
    catalog has no value), and the provider's own privacy policy: a developer can check them."""
    if provider is None:  # an org's custom provider: its attestation is the org's own
        return {}
    dp = provider.data_policy
    sources: dict[str, str] = {}
    for failure in unmet:
        row = requirements.BY_NAME.get(failure.requirement)
        for attribute in row.attributes if row else ():
            if attribute in dp.evidence:
                found = dp.evidence[attribute]
                sources[attribute] = clip(
                    f"{found.source} (checked {found.checked_at or 'date unknown'})", _EVIDENCE_CHARS
                )
            else:
                sources[attribute] = "not published"
    return {"evidence": sources, "privacy_policy_url": provider.privacy_policy_url or None}


_POLICY = "your organization's provider compliance policy"
_CANNOT_VERIFY = "so compliance cannot be verified and the request was not forwarded"
_RETRY = "the request was not forwarded. Retry shortly."

# One sentence a developer can act on, per reason; {failures} names every failed requirement.
_MESSAGES: dict[Reason, str] = {
    Reason.NO_POLICY: "Allowed: no provider compliance policy is enabled.",
    Reason.COMPLIANT: "Allowed by " + _POLICY + ".",
    Reason.MODEL_FREE: "Allowed: this endpoint sends no prompt to a provider.",
    Reason.PROVIDER_NOT_COMPLIANT: "Provider '{provider}' is blocked by "
    + _POLICY
    + " for model '{model}': it {failures}.",
    Reason.NO_COMPLIANT_PROVIDER: "No provider serving model '{model}' meets " + _POLICY + ": {failures}.",
    Reason.ROUTING_NOT_ENFORCEABLE: (
        "Model '{model}' is served by providers that do not meet " + _POLICY + " ({failures}), and the gateway "
        "may route an unpinned request to any of them, so it was not forwarded. Pin a compliant provider."
    ),
    Reason.MODEL_NOT_ALLOWED: "Model '{model}' is blocked by " + _POLICY + ": it {failures}.",
    Reason.UNKNOWN_MODEL: "Model '{model}' is not in the provider catalog, " + _CANNOT_VERIFY + ".",
    Reason.UNKNOWN_PROVIDER: "Provider '{provider}' is not in the provider catalog, " + _CANNOT_VERIFY + ".",
    Reason.PROVIDER_DOES_NOT_SERVE_MODEL: (
        "Provider '{provider}' does not serve model '{model}' according to the provider catalog."
    ),
    Reason.PROVIDER_CONFLICT: (
        "The provider header names '{provider}' but model '{model}' is pinned to another provider."
    ),
    Reason.MODEL_MISSING: (
        "The request names no model (not in the model header, nor where this endpoint carries it: "
        "the JSON body, the form, the path, the query or each batch entry), " + _CANNOT_VERIFY + "."
    ),
    Reason.MODEL_INVALID: "The model must be a non-empty string.",
    Reason.FIELD_NOT_ALLOWED: (
        "'{detail}' (a body field or header) can make the gateway send the prompt somewhere other than the model "
        "it names (a provider override, router settings, a host, or something the compliance check does not know), "
        + _CANNOT_VERIFY
        + ". Remove it; fallback models listed by name (LiteLLM's 'fallbacks', OpenRouter's 'models') are "
        "each checked."
    ),
    Reason.MODEL_MISMATCH: (
        "The request names model '{model}' in one place and another model elsewhere (header, path, query, "
        "body or form), " + _CANNOT_VERIFY + "."
    ),
    Reason.DUPLICATE_MODEL: (
        'The request names its model ambiguously ("model" given twice, or spelled in another letter case), '
        + _CANNOT_VERIFY
        + "."
    ),
    Reason.BODY_NOT_JSON: "The request body is not a JSON object, " + _CANNOT_VERIFY + ".",
    Reason.UNKNOWN_REQUIREMENT: (
        "x-compliance-require names '{detail}', which is not a requirement; use a comma-separated list of: "
        + ", ".join(policy_rules.CLIENT_REQUIREMENTS)
        + "."
    ),
    Reason.BODY_MALFORMED: "The request body cannot be parsed unambiguously, " + _CANNOT_VERIFY + ".",
    Reason.UNSUPPORTED_CONTENT_TYPE: (
        "This endpoint's body is read as {detail}; a body declared as another type (or with another charset) "
        "would be parsed differently by the gateway, " + _CANNOT_VERIFY + ". Send Content-Type: {detail}."
    ),
    Reason.BATCH_NOT_INSPECTABLE: (
        'A batch input file uploaded in parts (POST /v1/uploads with purpose "batch") cannot be checked '
        "line by line, so it was not accepted. Upload it with POST /v1/files instead."
    ),
    Reason.ENDPOINT_NOT_COVERED: (
        "{detail} is not in the compliance check's endpoint table, so the model it would call is unknown and "
        "the request was not forwarded. Ask your platform team to add the endpoint (or declare it model-free)."
    ),
    Reason.UPGRADE_NOT_ALLOWED: (
        "{detail} is not a websocket endpoint: a protocol upgrade (Upgrade or CONNECT) is accepted only on "
        "realtime endpoints. Send the request without the Upgrade header."
    ),
    Reason.UNKNOWN_DEPLOYMENT: (
        "Deployment '{model}' is not mapped to a model in the compliance check's endpoint table, "
        + _CANNOT_VERIFY
        + ". Ask your platform team to add it under [deployments]."
    ),
    Reason.BODY_ENCODED: (
        "Compressed request bodies cannot be inspected (" + _CANNOT_VERIFY + "); "
        "send the body without content-encoding."
    ),
    Reason.BODY_TRUNCATED: (
        "The request body is larger than the compliance check's inspection limit ({detail}), or it was cut "
        "there, and a part after the cut could change what the gateway does, "
        + _CANNOT_VERIFY
        + ". Send a smaller request or ask your platform team to raise the limit (max_request_bytes)."
    ),
    Reason.ORG_MISSING: (
        "No organization could be identified: send your API key as 'Authorization: Bearer <key>' "
        "(or in x-api-key, api-key or x-goog-api-key)."
    ),
    Reason.ORG_MALFORMED: (
        "The organization is not named by exactly one organization id (a list, a number, an object, "
        "or the header or token sent twice); send one token whose org claim is a single id."
    ),
    Reason.CREDENTIAL_CONFLICT: (
        "The request carries two different API keys (for example in Authorization and x-api-key); send one."
    ),
    Reason.API_KEY_UNKNOWN: "The API key is not recognized.",
    Reason.INSPECTION_BUDGET_EXCEEDED: (
        "Your organization sent more large request bodies than the compliance check inspects per second; "
        "the request was not forwarded. Retry shortly, or send smaller requests."
    ),
    Reason.TOO_MANY_UNKNOWN_KEYS: (
        "Too many requests with unrecognized API keys from this address; slow down and check the key."
    ),
    Reason.STATE_UNAVAILABLE: "Provider compliance policy state is temporarily unavailable; " + _RETRY,
    Reason.STATE_STALE: "Provider compliance policy state is temporarily unavailable; " + _RETRY,
    Reason.CATALOG_NOT_LOADED: "The provider catalog is not loaded yet; " + _RETRY,
}


# A name an imported gateway config does not route (detail: the gateway).
_NOT_ROUTED = (
    "Model '{model}' is not a model name the {detail} gateway routes (a model group, an alias or a wildcard "
    "route of its config): it would send the request to its default fallbacks or refuse it, "
    + _CANNOT_VERIFY
    + ". Send one of the gateway's model names."
)


def message(verdict: Verdict) -> str:
    """The reason's sentence, naming provider, model and every failed requirement, and where
    the gateway's fallbacks reach a blocked provider."""
    via = dict(verdict.via)

    def named(provider: str) -> str:
        return f"'{provider}'" + (f" (reached through {via[provider]})" if provider in via else "")

    if verdict.reason in (Reason.NO_COMPLIANT_PROVIDER, Reason.ROUTING_NOT_ENFORCEABLE):
        failures = "; ".join(f"{named(p)} {policy_rules.describe(u)}" for p, u in verdict.blocked)
    elif verdict.reason is Reason.MODEL_NOT_ALLOWED:
        failures = policy_rules.describe(verdict.model_unmet)
    else:
        failures = policy_rules.describe(next((u for p, u in verdict.blocked if p == verdict.provider), ()))
    template = _MESSAGES[verdict.reason]
    if verdict.reason is Reason.UNKNOWN_MODEL and verdict.detail:
        template = _NOT_ROUTED
    elif verdict.reason is Reason.PROVIDER_NOT_COMPLIANT and verdict.provider in via:
        template = template.replace("for model '{model}'", "for model '{model}' (reached through " + "{via})")
    text = template.format(
        via=clip(via.get(verdict.provider, ""), MODEL),
        provider=clip(verdict.provider, PROVIDER),
        model=clip(verdict.model, MODEL),
        failures=failures,
        detail=clip(verdict.detail, MODEL),
    )
    if verdict.item:
        where = "named in" if gateways.names_a_route(verdict.item) else "batch entry"
        text += f" ({where} '{clip(verdict.item, MODEL)}')"
    if verdict.deactivated:
        provider, _, when = verdict.deactivated.partition(" ")
        if verdict.reason is Reason.UNKNOWN_MODEL:  # every mapping deactivated: retired
            text = (
                f"Model '{clip(verdict.model, MODEL)}' was retired: the provider catalog deactivated every "
                f"provider's mapping of it, the last at {when}, so no provider serves it."
            )
        elif verdict.reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL:
            text += f" Its mapping of this model was deactivated at {when}."
        else:
            text += (
                f" The pin to '{clip(provider, PROVIDER)}' does not hold: its mapping of this model was deactivated at "
                f"{when}, so the gateway sends the request to another provider of the model; judged unpinned."
            )
    if verdict.alternatives:
        text += " Compliant alternatives: " + ", ".join(verdict.alternatives) + "."
    return text
