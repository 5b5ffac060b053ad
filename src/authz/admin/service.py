"""PolicyAdmin: managing an org's compliance policy. One implementation behind both the gRPC
service and the JSON API (admin_api.py).

Who may do what, in one place:
- every method needs a valid token (auth.py); methods naming an org need the caller to be an
  `owner` or `admin` of that very org;
- previewing, enabling or changing a policy needs the `enterprise` plan; disabling one, and
  reading what is enforced or what was blocked, stays possible after a downgrade (a downgrade
  must never leave an org unable to see or switch off what is enforced);
- enforcement itself never looks at the plan: it follows the stored policy.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from redis.exceptions import RedisError

from authz.admin.tokens import MANAGER_ROLES, Authenticator, AuthError, Principal
from authz.admin.validation import (
    ABORTED,
    ENTERPRISE,
    INVALID_ARGUMENT,
    MAX_CUSTOM_PROVIDERS,
    NOT_FOUND,
    PERMISSION_DENIED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    AdminError,
    known_ids,
    validate,
    validate_alerts,
    validate_custom_provider,
    with_default_window,
)
from authz.alerts.webhook_guard import WebhookGuard, WebhookRefused
from authz.policy import gateway_names, requirements
from authz.policy import rules as policy_rules
from authz.policy.catalog import CatalogIndex
from authz.state.layout import alert_settings, custom_providers_of, policy_from_json
from authz.state.store import Store
from authz.state.writes import LimitReached, StateLost, VersionConflict
from authz.v1 import admin_pb2, catalog_pb2, events_pb2, policy_pb2

Message = Any  # a generated request or response message
Method = Callable[[Principal, Message], Awaitable[Message]]

_DEFAULT_LIMIT, _MAX_LIMIT = 50, 1000


def _evidence(requirement: str, dp: catalog_pb2.DataPolicy | None) -> tuple[str, str]:
    """The source (and date) of the first attribute the requirement reads that has evidence."""
    row = requirements.BY_NAME[requirement]
    for attribute in row.attributes:
        if dp is not None and attribute in dp.evidence:
            found = dp.evidence[attribute]
            return found.source, found.checked_at
    return "", ""


def effective(policy: policy_pb2.CompliancePolicy) -> policy_pb2.CompliancePolicy:
    """The policy as it is enforced: an unset mode is shown as what it means (enforce), so every
    answer (get, set, enable, disable) says the same."""
    if policy.mode == policy_pb2.POLICY_MODE_UNSPECIFIED:
        shown = policy_pb2.CompliancePolicy()
        shown.CopyFrom(policy)
        shown.mode = policy_pb2.POLICY_MODE_ENFORCE
        return shown
    return policy


def advice(catalog: CatalogIndex, rules: policy_rules.Rules) -> list[str]:
    """What a policy's author should know before relying on it. Now: data_residency on a catalog
    whose providers mostly publish no processing region (LLMGateway's package gives regions for
    few) leaves most models without a provider: say so, and what to do."""
    if not rules.regions or not catalog.models:
        return []
    table = catalog.table(rules)
    unknown = {
        p
        for p, unmet in table.unmet.items()
        for u in unmet
        if u.requirement == "data_residency" and u.cause == policy_rules.UNKNOWN
    }
    served = [m for m, providers in catalog.models.items() if providers]
    orphaned = [m for m in served if not table.for_model(m).allowed]
    if not served or len(orphaned) * 2 < len(served):
        return []
    return [
        f"data_residency leaves {len(orphaned)} of {len(served)} models without a provider: {len(unknown)} of "
        f"{len(catalog.providers)} providers in this catalog publish no processing region, and unknown never "
        "counts. Import your gateway's config with its deployments' regions (authz catalog import --from litellm: "
        "Azure region_name, Bedrock aws_region_name, Vertex vertex_location), or attest a custom provider with "
        "its processing region (docs/policy.md)."
    ]


def preview(
    catalog: CatalogIndex, p: policy_pb2.CompliancePolicy, custom: catalog_pb2.CustomProviders | None = None
) -> admin_pb2.PreviewPolicyResponse:
    """Every provider allowed or blocked under `p` (the org's custom providers included), with
    the reasons, and the models left with no compliant provider. Pure: nothing is saved."""
    rules = policy_rules.rules_of(p)
    table = catalog.table(rules)
    out = admin_pb2.PreviewPolicyResponse(catalog_version=catalog.version)

    def add(
        provider_id: str,
        name: str,
        unmet: policy_rules.Failures,
        data_policy: catalog_pb2.DataPolicy | None,
        attested: str = "",
        region_of: str = "",
    ) -> None:
        rows = []
        for u in unmet:
            source, checked_at = _evidence(u.requirement, data_policy)
            rows.append(
                admin_pb2.UnmetRequirement(
                    requirement=u.requirement,
                    label=policy_rules.LABELS[u.requirement],
                    cause=u.cause,
                    evidence=source or attested,
                    checked_at=checked_at,
                )
            )
        out.providers.add(provider=provider_id, name=name, allowed=not unmet, unmet=rows, region_of=region_of)

    for provider_id in sorted(catalog.providers):
        provider = catalog.providers[provider_id]
        dp = provider.data_policy if provider.HasField("data_policy") else None
        add(provider_id, provider.name, table.unmet[provider_id], dp, region_of=provider.region_of)
    for provider_id, cp in sorted((custom.providers if custom else {}).items()):
        if provider_id in catalog.providers:
            continue  # the catalog's provider of that id is the one requests reach (see decide)
        unmet = policy_rules.custom_unmet(provider_id, cp, rules, enabled=True)  # previewed as if enabled
        attested = f"attested by {cp.attested_by} at {cp.attested_at}" if cp.HasField("attestation") else ""
        add(
            provider_id,
            f"{cp.name or provider_id} (custom)",
            unmet,
            cp.attestation if cp.HasField("attestation") else None,
            attested,
        )
    for name in ("provider_allowlist", "provider_denylist"):
        for entry in getattr(p, name):
            covers = [pid for pid, pr in sorted(catalog.providers.items()) if entry in (pid, pr.region_of)]
            out.list_coverage.add(list=name, entry=entry, covers=covers or [entry])
    for found in gateway_names.judge(catalog, rules):
        out.gateway_names.add(
            name=found.name,
            wildcard=found.wildcard,
            allowed=found.allowed,
            reason=found.reason,
            model_unmet=found.model_unmet,
            blocked=[
                admin_pb2.BlockedCandidate(provider=c.provider, failed_requirements=c.failed, reached_through=c.via)
                for c in found.blocked
            ],
        )
    out.advice.extend(advice(catalog, rules))
    out.allowed_count = sum(1 for x in out.providers if x.allowed)
    out.blocked_count = len(out.providers) - out.allowed_count
    by_list = {m for m in catalog.models if policy_rules.model_unmet(m, rules)}
    out.models_blocked_by_lists.extend(sorted(by_list))
    out.models_without_compliant_provider.extend(
        sorted(m for m in catalog.models if m not in by_list and not table.for_model(m).allowed)
    )
    out.models_needing_a_pin_in_strict_routing.extend(
        sorted(
            m for m in catalog.models if m not in by_list and table.for_model(m).allowed and table.for_model(m).blocked
        )
    )
    return out


class PolicyAdmin:
    def __init__(
        self,
        store: Store,
        catalog: Callable[[], CatalogIndex | None],
        authenticator: Authenticator,
        webhook_guard: WebhookGuard | None = None,
        require_enterprise_plan: bool = True,
    ):
        self.store = store
        self.require_enterprise_plan = require_enterprise_plan
        self._catalog = catalog  # returns the process's current CatalogIndex (or None)
        self.authenticator = authenticator
        self.webhook_guard = webhook_guard or WebhookGuard()
        # Every PolicyAdmin RPC, by its name in admin.proto (a test checks none is missing).
        self.methods: dict[str, Method] = {
            "GetPolicy": self._get_policy,
            "PreviewPolicy": self._preview_policy,
            "SetPolicy": self._set_policy,
            "SetPolicyEnabled": self._set_policy_enabled,
            "ListProviders": self._list_providers,
            "ListSecurityEvents": self._list_security_events,
            "ListAuditEvents": self._list_audit_events,
            "SetCustomProvider": self._set_custom_provider,
            "DeleteCustomProvider": self._delete_custom_provider,
            "SetAlerts": self._set_alerts,
            "ListRequirements": self._list_requirements,
        }

    async def call(self, method: str, authorization: str | None, request: Message) -> Message:
        handler = self.methods[method]
        try:
            principal = self.authenticator.principal(authorization)
        except AuthError as exc:
            raise AdminError(UNAUTHENTICATED, str(exc)) from None
        try:
            return await handler(principal, request)
        except RedisError as exc:
            raise AdminError(UNAVAILABLE, f"policy store unavailable ({exc.__class__.__name__}); retry") from None
        except StateLost as exc:
            raise AdminError(UNAVAILABLE, str(exc)) from None

    # --- authorization ------------------------------------------------------------------

    async def _manager_of(self, principal: Principal, org_id: str) -> str:
        """Check the caller may manage `org_id`; returns the org's plan."""
        if not org_id:
            raise AdminError(INVALID_ARGUMENT, "org_id is required")
        if principal.org_id != org_id:
            raise AdminError(PERMISSION_DENIED, f"your token is for org '{principal.org_id}', not '{org_id}'")
        if principal.role not in MANAGER_ROLES:
            raise AdminError(
                PERMISSION_DENIED,
                f"role '{principal.role}' may not manage the compliance policy: owner or admin required",
            )
        return await self.store.plan(org_id)

    def _require_enterprise(self, plan: str, what: str) -> None:
        if self.require_enterprise_plan and plan != ENTERPRISE:
            raise AdminError(
                PERMISSION_DENIED,
                f"Enterprise plan required to {what} (this org's plan: '{plan or 'none'}'). "
                "Disabling an existing policy stays possible. The platform team sets plans "
                "(authz org set-plan ORG enterprise).",
            )

    def _catalog_or_unavailable(self) -> CatalogIndex:
        catalog = self._catalog()
        if catalog is None:
            raise AdminError(UNAVAILABLE, "the provider catalog is not loaded yet; retry shortly")
        return catalog

    # --- methods ------------------------------------------------------------------------

    async def _get_policy(self, principal: Principal, req: admin_pb2.GetPolicyRequest) -> admin_pb2.GetPolicyResponse:
        plan = await self._manager_of(principal, req.org_id)
        fields = await self.store.org_fields(req.org_id)  # one read for policy, providers and alerts
        out = admin_pb2.GetPolicyResponse(plan=plan)
        if fields.get(b"policy"):
            out.policy.CopyFrom(effective(policy_from_json(fields[b"policy"])))
        for cid, cp in custom_providers_of(fields).providers.items():
            out.custom_providers[cid].CopyFrom(cp)
        out.alerts.CopyFrom(alert_settings(fields))
        return out

    async def _preview_policy(
        self, principal: Principal, req: admin_pb2.PreviewPolicyRequest
    ) -> admin_pb2.PreviewPolicyResponse:
        plan = await self._manager_of(principal, req.org_id)
        self._require_enterprise(plan, "configure a Provider Compliance Policy")
        validate(req.policy, saving=False)
        catalog = self._catalog_or_unavailable()
        fields = await self.store.org_fields(req.org_id)  # one read: custom providers and alerts
        known_ids(req.policy, catalog, custom_providers_of(fields), forceable=False)  # a typo, as saving refuses it
        out = preview(catalog, req.policy, custom_providers_of(fields))
        table = catalog.table(policy_rules.rules_of(req.policy))
        for model in alert_settings(fields).watched_models:
            served = len(table.for_model(model).allowed) if model in catalog.models else 0
            out.watched_models.add(model=model, compliant_providers=served)
        return out

    async def _set_policy(self, principal: Principal, req: admin_pb2.SetPolicyRequest) -> admin_pb2.SetPolicyResponse:
        plan = await self._manager_of(principal, req.org_id)
        if req.policy.enabled:
            self._require_enterprise(plan, "enable or change a Provider Compliance Policy")
        validate(req.policy)
        if not req.force:
            known_ids(req.policy, self._catalog_or_unavailable(), await self.store.custom_providers(req.org_id))
        expected = req.expected_version if req.HasField("expected_version") else None
        return await self._store_policy(principal, req.org_id, req.policy, expected)

    async def _set_policy_enabled(
        self, principal: Principal, req: admin_pb2.SetPolicyEnabledRequest
    ) -> admin_pb2.SetPolicyResponse:
        plan = await self._manager_of(principal, req.org_id)
        if req.enabled:
            self._require_enterprise(plan, "enable a Provider Compliance Policy")
        stored = await self.store.policy(req.org_id)
        if stored is None:
            raise AdminError(
                NOT_FOUND,
                f"org '{req.org_id}' has no policy to {'enable' if req.enabled else 'disable'}: "
                f"set one first (PUT /v1/orgs/{req.org_id}/policy)",
            )
        toggled = policy_pb2.CompliancePolicy()
        toggled.CopyFrom(stored)
        toggled.enabled = req.enabled
        validate(toggled)
        expected = req.expected_version if req.HasField("expected_version") else stored.version
        return await self._store_policy(principal, req.org_id, toggled, expected)

    async def _store_policy(
        self, principal: Principal, org_id: str, policy: policy_pb2.CompliancePolicy, expected: int | None
    ) -> admin_pb2.SetPolicyResponse:
        """Save a validated policy as the next version (the store sets version, actor, time)."""
        new = policy_pb2.CompliancePolicy()
        new.CopyFrom(policy)
        for server_owned in ("version", "updated_by", "updated_at"):
            new.ClearField(server_owned)
        try:
            stored = await self.store.set_policy(org_id, new, principal.subject, expected_version=expected)
        except VersionConflict as exc:
            raise AdminError(ABORTED, str(exc)) from None
        catalog = self._catalog()
        notes = advice(catalog, policy_rules.rules_of(stored)) if catalog is not None and stored.enabled else []
        return admin_pb2.SetPolicyResponse(policy=effective(stored), advice=notes)

    async def _set_custom_provider(
        self, principal: Principal, req: admin_pb2.SetCustomProviderRequest
    ) -> admin_pb2.SetCustomProviderResponse:
        plan = await self._manager_of(principal, req.org_id)
        self._require_enterprise(plan, "declare custom providers")
        provider = catalog_pb2.CustomProvider()
        provider.CopyFrom(req.provider)
        validate_custom_provider(provider, self._catalog_or_unavailable())
        provider.ClearField("attested_by")
        provider.ClearField("attested_at")
        if provider.HasField("attestation"):
            provider.attested_by = principal.subject
            provider.attested_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            await self.store.set_custom_provider(
                req.org_id, provider, principal.subject, max_providers=MAX_CUSTOM_PROVIDERS
            )
        except LimitReached as exc:
            raise AdminError(INVALID_ARGUMENT, f"{exc} (a limit that force does not lift)") from None
        return admin_pb2.SetCustomProviderResponse(provider=provider)

    async def _delete_custom_provider(
        self, principal: Principal, req: admin_pb2.DeleteCustomProviderRequest
    ) -> admin_pb2.DeleteCustomProviderResponse:
        await self._manager_of(principal, req.org_id)  # removing one only ever blocks more
        if await self.store.set_custom_provider(req.org_id, None, principal.subject, req.provider_id) is None:
            raise AdminError(NOT_FOUND, f"org '{req.org_id}' has no custom provider '{req.provider_id}'")
        return admin_pb2.DeleteCustomProviderResponse()

    async def _set_alerts(self, principal: Principal, req: admin_pb2.SetAlertsRequest) -> admin_pb2.SetAlertsResponse:
        plan = await self._manager_of(principal, req.org_id)
        self._require_enterprise(plan, "configure compliance alerts")
        alerts = policy_pb2.AlertSettings()
        alerts.CopyFrom(req.alerts)
        if alerts.webhook_url:
            try:
                await self.webhook_guard.check_url(alerts.webhook_url)
            except WebhookRefused as exc:
                raise AdminError(INVALID_ARGUMENT, str(exc)) from None
        validate_alerts(with_default_window(alerts), self._catalog_or_unavailable())
        await self.store.set_alerts(req.org_id, alerts, principal.subject)
        return admin_pb2.SetAlertsResponse(alerts=alerts)

    async def _list_providers(
        self, principal: Principal, req: admin_pb2.ListProvidersRequest
    ) -> admin_pb2.ListProvidersResponse:
        if principal.role not in MANAGER_ROLES:
            raise AdminError(
                PERMISSION_DENIED, f"role '{principal.role}' may not list providers: owner or admin required"
            )
        catalog = self._catalog_or_unavailable()
        out = admin_pb2.ListProvidersResponse(catalog_version=catalog.version)
        out.providers.extend(catalog.providers[p] for p in sorted(catalog.providers))
        for model, providers in catalog.models.items():
            out.models[model].providers.extend(providers)
        return out

    async def _list_security_events(
        self, principal: Principal, req: admin_pb2.ListSecurityEventsRequest
    ) -> admin_pb2.ListSecurityEventsResponse:
        await self._manager_of(principal, req.org_id)
        found = await self.store.recent(self.store.keys.security_events, req.org_id, _limit(req.limit))
        return admin_pb2.ListSecurityEventsResponse(
            events=[json_format.ParseDict(e, events_pb2.SecurityEvent(), ignore_unknown_fields=True) for e in found]
        )

    async def _list_audit_events(
        self, principal: Principal, req: admin_pb2.ListAuditEventsRequest
    ) -> admin_pb2.ListAuditEventsResponse:
        await self._manager_of(principal, req.org_id)
        found = await self.store.recent(self.store.keys.audit_events, req.org_id, _limit(req.limit))
        return admin_pb2.ListAuditEventsResponse(
            events=[json_format.ParseDict(e, events_pb2.AuditEvent(), ignore_unknown_fields=True) for e in found]
        )

    async def _list_requirements(
        self, _principal: Principal, _req: admin_pb2.ListRequirementsRequest
    ) -> admin_pb2.ListRequirementsResponse:
        return admin_pb2.ListRequirementsResponse(
            requirements=[
                admin_pb2.Requirement(
                    name=r.name,
                    label=r.label,
                    group=r.group,
                    policy_field=r.policy_field,
                    client_settable=r.client_settable,
                    hint=r.hint,
                    flag=r in requirements.FLAGGED,
                )
                for r in requirements.REQUIREMENTS
            ]
        )


def _limit(requested: int) -> int:
    return min(requested or _DEFAULT_LIMIT, _MAX_LIMIT)
