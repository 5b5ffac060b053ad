"""The envoy.service.auth.v3.Authorization/Check handler: a thin shell around the pipeline

    identify the org -> read the request -> decide from the compiled table -> respond

Once the org and its API key are cached this awaits nothing: no Redis, no I/O. Security
events are queued for the background writer. docs/design.md, "The Check pipeline", has the
whole path and the contracts it keeps.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import grpc
import structlog
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from opentelemetry.trace import Span, SpanKind

from authz import ids
from authz.check import assertion, egress
from authz.check import request as request_mod
from authz.check import response as response_mod
from authz.check.decision import Gateway, decide, parse_contract
from authz.check.security_event import security_event
from authz.check.verdict import Verdict
from authz.clip import MODEL, ORG, clip
from authz.events.writer import EventWriter
from authz.metrics import TALLY
from authz.policy.orgs import OrgPolicy
from authz.policy.rules import NO_BLOCK_ALERTS
from authz.reasons import OUTCOMES, Reason
from authz.server import tracing
from authz.server.inspection_budget import InspectionBudget
from authz.server.parse_pool import ParsePool
from authz.server.unknown_keys import UnknownKeyLimiter
from authz.state.cache import StateCache, StateUnavailable
from authz.state.gateway_keys import GatewayUnavailable, LiteLLMKeyResolver

log = structlog.get_logger("authz.server.check_handler")
_VERIFIED_MAX = 4096  # verified egress assertions remembered (a new one per org and second)

Answer = TypeVar("Answer")


class CheckService(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]  # generated, untyped
    def __init__(
        self,
        cache: StateCache,
        events: EventWriter,
        names: request_mod.ReadConfig,
        org_source: str,
        unknown_keys: UnknownKeyLimiter | None = None,
        gateway: Gateway | None = None,
        static_org: str = "",
        static_requires_credential: bool = True,
        gateway_keys: LiteLLMKeyResolver | None = None,
        assertion_key: bytes = b"",
        assertion_ttl_s: int = 600,
        inspection: InspectionBudget | None = None,
        parse_pool: ParsePool | None = None,
    ):
        self.cache = cache
        self.events = events
        self.names = names
        self.org_from_header = org_source in ("header", "jwt")  # named by Envoy: a header or a claim
        # org_source = "static": one org for every request (a single-company deployment), so
        # no API key has to be registered; a request with no credential at all may still be refused.
        self.static_org = static_org if org_source == "static" else ""
        self.static_requires_credential = static_requires_credential
        self.gateway_keys = gateway_keys  # org_source = "gateway": a gateway_keys.LiteLLMKeyResolver
        self.unknown_keys = unknown_keys or UnknownKeyLimiter(per_s=0, burst=0)
        self.gateway = gateway or Gateway()
        # The egress checkpoint's org: signed by the ingress checkpoint (authz.check.assertion).
        self.assertion_key = assertion_key
        self.assertion_ttl_s = assertion_ttl_s
        # org -> (the second it was signed in, the assertion): one HMAC per org and second.
        self._assertions: dict[str, tuple[int, str]] = {}
        # At egress: assertion -> (org, expiry) once verified (bounded).
        self._verified_assertions: dict[str, tuple[str, int]] = {}
        self.inspection = inspection or InspectionBudget(0, 0)
        self.parse_pool = parse_pool or ParsePool(0, 0)
        self.tracer = tracing.tracer()
        self._extra_credentials: tuple[str, ...] = ()
        self._names_with_catalog = names

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        try:
            if self.tracer is None:  # no tracer provider configured: no tracing work at all
                return await self._check(request, None)
            parent = tracing.parent_context(context.invocation_metadata(), request.attributes.request.http.headers)
            with self.tracer.start_as_current_span(tracing.SPAN_NAME, context=parent, kind=SpanKind.SERVER) as span:
                return await self._check(request, span)
        except Exception:
            # Still a gRPC error, so Envoy answers 503 (status_on_error) and never passes the
            # request; the log line says why, in the same shape as every other line.
            path = request.attributes.request.http.path.partition("?")[0]  # a query may hold a key
            log.exception("check_failed", path=clip(path, MODEL))
            raise

    async def _check(
        self, request: external_auth_pb2.CheckRequest, span: Span | None
    ) -> external_auth_pb2.CheckResponse:
        started = time.perf_counter()
        facts = request_mod.read(request, self.read_config())
        return await self.judge(facts, egress.route_provider(request.attributes.context_extensions), span, started)

    def read_config(self) -> request_mod.ReadConfig:
        """The settings' request reading, plus the headers the loaded catalog says the gateway
        reads a key from (LiteLLM's litellm_key_header_name): a key there is a credential too."""
        catalog = self.cache.catalog
        extra = catalog.credential_headers if catalog is not None else ()
        if extra is not self._extra_credentials:
            added = tuple(h for h in extra if h not in self.names.credentials)
            self._names_with_catalog = dataclasses.replace(self.names, credentials=(*self.names.credentials, *added))
            self._extra_credentials = extra
        return self._names_with_catalog

    async def judge(
        self,
        facts: request_mod.RequestFacts,
        egress_provider: str | None,
        span: Span | None,
        started: float,
        respond: Callable[..., Answer] = response_mod.build,
    ) -> Answer:
        """The Check from the request's facts on, whichever transport read them: gRPC, or
        Envoy's HTTP ext_authz (authz.server.http_transport, with `respond` =
        response.build_http: the same answer, as HTTP)."""
        decision_id = _decision_ids.next()
        if egress_provider is None:
            verdict, key_id, org = await self._verdict(facts)
        else:
            verdict, key_id, org = await self._egress_verdict(facts, egress_provider)
        outcome = OUTCOMES[verdict.reason]
        catalog = self.cache.catalog
        providers = catalog.providers if catalog else {}
        if outcome.policy_block:
            self.events.emit(
                security_event(verdict, facts, decision_id, key_id), org.block_alerts if org else NO_BLOCK_ALERTS
            )
            _count_blocks(verdict, providers)
        elif outcome.http_status == 503:
            log.warning("check_unavailable", reason=verdict.reason.value, org_id=clip(verdict.org_id, ORG))
        response = respond(
            verdict,
            decision_id,
            facts.request_id,
            facts.owned_headers,
            providers,
            catalog.version if catalog else 0,
            self.gateway.contract.request_headers if egress_provider is None else (),
            self._assertion(verdict) if egress_provider is None else "",
        )
        result = "allowed" if outcome.http_status == 200 else ("denied" if verdict.enforced else "dry_run")
        if span is not None:
            tracing.describe(span, verdict, decision_id, result, outcome.http_status)
        TALLY.check(result, verdict.reason, time.perf_counter() - started)
        return response

    def _assertion(self, verdict: Verdict) -> str:
        """The signed org for the egress checkpoint, on a request forwarded for a known org.
        Its expiry counts in whole seconds, so the requests of one org within one second share
        one assertion (the egress check keeps no nonces: a shared one is worth no more to a
        thief than any other), and signing costs one HMAC per org and second, not per request."""
        if not self.assertion_key or not verdict.org_id or not verdict.allowed:
            return ""
        now = time.time()
        second = int(now)
        signed = self._assertions.get(verdict.org_id)
        if signed is not None and signed[0] == second:
            return signed[1]
        token = assertion.sign(verdict.org_id, self.assertion_key, now, self.assertion_ttl_s)
        if len(self._assertions) >= 10_000:  # bounded: orgs come and go
            self._assertions.clear()
        self._assertions[verdict.org_id] = (second, token)
        return token

    async def _egress_verdict(
        self, facts: request_mod.RequestFacts, provider: str
    ) -> tuple[Verdict, str, OrgPolicy | None]:
        """The gateway's call to `provider` (the egress route's): the org from the static
        setting, else from the ingress checkpoint's signed assertion, which must be valid."""
        missing = Verdict(Reason.ORG_MISSING, checkpoint=egress.EGRESS)
        if self.static_org:
            org_id = self.static_org
        else:
            token = facts.routing_headers.get(assertion.HEADER)
            if token is None or not self.assertion_key:
                return missing, "", None
            now = time.time()
            known = self._verified_assertions.get(token)
            if known is None or known[1] <= now:
                # One HMAC per assertion, not per call (an org's calls within a second share one).
                known = assertion.verified(token, self.assertion_key, now)
                if known is None:  # forged, expired or malformed: someone tried, recorded
                    return Verdict(Reason.ORG_MALFORMED, checkpoint=egress.EGRESS), "", None
                if len(self._verified_assertions) >= _VERIFIED_MAX:
                    self._verified_assertions.clear()
                self._verified_assertions[token] = known
            org_id = known[0]
        if self.cache.is_stale():
            return Verdict(Reason.STATE_STALE, org_id=org_id, checkpoint=egress.EGRESS), "", None
        try:
            org = await self.cache.org(org_id)
        except StateUnavailable:
            return Verdict(Reason.STATE_UNAVAILABLE, checkpoint=egress.EGRESS), "", None
        return egress.decide(facts, provider, org, self.cache.catalog, self.names.endpoints), "", org

    async def _verdict(self, facts: request_mod.RequestFacts) -> tuple[Verdict, str, OrgPolicy | None]:
        key_id = ""
        org_id: str | None
        if self.static_org:
            if self.static_requires_credential and facts.api_key is None:
                return Verdict(Reason.ORG_MISSING), key_id, None
            if facts.api_key is not None:
                key_id = ids.api_key_id(ids.api_key_hash(facts.api_key))
            org_id = self.static_org
        elif self.org_from_header:
            org_id = facts.org_header
            if not org_id:
                return Verdict(Reason.ORG_MISSING), key_id, None
            if not ids.ORG_ID.fullmatch(org_id):
                return Verdict(Reason.ORG_MALFORMED), key_id, None
        elif facts.api_key is None:
            return Verdict(Reason.ORG_MISSING), key_id, None
        elif facts.credential_conflict:
            return Verdict(Reason.CREDENTIAL_CONFLICT), key_id, None
        if self.cache.is_stale():
            return Verdict(Reason.STATE_STALE, org_id=self.static_org or facts.org_header or ""), key_id, None
        try:
            if not (self.org_from_header or self.static_org):
                api_key = facts.api_key
                assert api_key is not None  # refused above when missing
                key_hash = ids.api_key_hash(api_key)
                key_id = ids.api_key_id(key_hash)
                keys = self.gateway_keys  # org_source = "gateway": the gateway's key API, else Redis
                cached, org_id = keys.cached(key_hash) if keys else self.cache.cached_org_for_key(key_hash)
                if not cached:
                    if self.unknown_keys.exhausted(facts.client_address):
                        return Verdict(Reason.TOO_MANY_UNKNOWN_KEYS), key_id, None
                    org_id = await (keys.resolve(api_key, key_hash) if keys else self.cache.org_for_key_hash(key_hash))
                    if org_id is None:
                        self.unknown_keys.charge(facts.client_address)
                if org_id is None:
                    return Verdict(Reason.API_KEY_UNKNOWN), key_id, None
            org = await self.cache.org(org_id or "")
        except (StateUnavailable, GatewayUnavailable):
            return Verdict(Reason.STATE_UNAVAILABLE), key_id, None
        # A body Envoy cut is refused before it is read (413): only whole bodies are charged.
        judged = org.enabled or facts.require_header is not None
        if judged and not facts.body_truncated and not self.inspection.allow(org.org_id, len(facts.body)):
            return Verdict(Reason.INSPECTION_BUDGET_EXCEEDED, org_id=org.org_id), key_id, org
        parsed = None
        if judged and facts.endpoint is not None and not facts.body_truncated and self.parse_pool.wants(facts):
            # Off the event loop: every other org's Checks go on while this body is parsed.
            parsed = await self.parse_pool.requested(facts, parse_contract(self.gateway))
        return decide(facts, org, self.cache.catalog, self.gateway, parsed), key_id, org


def _count_blocks(verdict: Verdict, providers: Mapping[str, object]) -> None:
    """Blocks by provider and by requirement. An org's own provider counts as "custom": its id
    is the tenant's to choose, so it must not become a label value."""
    for provider, unmet in verdict.blocked:
        TALLY.blocked_providers[provider if provider in providers else "custom"] += 1
        for failure in unmet:
            TALLY.failed_requirements[(failure.requirement, failure.cause)] += 1


class _DecisionIds:
    """Unique decision ids without a system call per Check: a random per-process prefix
    (drawn again in a forked child) and a counter. They name a decision; they guard nothing."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(3), "big"))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


_decision_ids = _DecisionIds()
