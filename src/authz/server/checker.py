"""One Check, whichever transport read it: the org, the verdict, what it records.

    facts -> the org (an OrgSource) -> decide (or, at egress, judge the call) -> Checked

Both transports call it: the gRPC servicer (grpc_transport) and Envoy's HTTP ext_authz
(http_transport) read a request into RequestFacts, call `Checker.check`, and answer the
Checked outcome in their own protocol (authz.check.response.build / build_http). Once the org
and its key are cached this awaits nothing: no Redis, no I/O. Security events are queued for
the background writer. docs/design.md, "The Check pipeline", has the whole path.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import structlog
from opentelemetry.trace import Span

from authz.check import egress
from authz.check import request as request_mod
from authz.check.decision import Gateway, decide, parse_contract
from authz.check.security_event import blocked
from authz.check.verdict import Verdict
from authz.clip import ORG, clip
from authz.events.writer import EventWriter
from authz.metrics import TALLY
from authz.policy.orgs import OrgPolicy
from authz.policy.rules import NO_BLOCK_ALERTS
from authz.reasons import OUTCOMES, Reason
from authz.server import tracing
from authz.server.inspection_budget import InspectionBudget
from authz.server.org_sources import Claim, OrgSource
from authz.server.org_sources.assertion import AssertionSigner
from authz.server.parse_pool import ParsePool
from authz.state.cache import StateCache, StateUnavailable
from authz.state.gateway_keys import GatewayUnavailable
from authz.v1 import catalog_pb2

log = structlog.get_logger("authz.server.checker")
_NO_PROVIDERS: Mapping[str, catalog_pb2.Provider] = {}
Answer = TypeVar("Answer")


# Not frozen, for the cost of a frozen __init__ on every Check (as Verdict); never changed.
@dataclass(slots=True)
class Checked:
    """A Check's outcome: what either transport answers (the arguments of response.build and
    build_http, by name) and what the Check records once answered."""

    verdict: Verdict
    decision_id: str
    request_id: str
    owned_headers: tuple[str, ...]  # the client's own x-compliance-* headers, removed upstream
    providers: Mapping[str, catalog_pb2.Provider]  # the catalog's, named in a deny body
    catalog_version: int
    gateway_headers: tuple[tuple[str, str], ...]  # the routing contract's controls (ingress only)
    org_assertion: str  # the signed org for the egress checkpoint ("" when none)
    status: int  # the outcome's HTTP status

    def answer(self, build: Callable[..., Answer]) -> Answer:
        """This outcome answered by a transport's builder: response.build (a CheckResponse) or
        response.build_http (Envoy's HTTP ext_authz answer), which take the same fields."""
        return build(
            self.verdict,
            self.decision_id,
            self.request_id,
            self.owned_headers,
            self.providers,
            self.catalog_version,
            self.gateway_headers,
            self.org_assertion,
        )


class Checker:
    def __init__(
        self,
        cache: StateCache,
        events: EventWriter,
        names: request_mod.ReadConfig,
        ingress: OrgSource,
        egress_org: OrgSource,
        gateway: Gateway | None = None,
        signer: AssertionSigner | None = None,
        inspection: InspectionBudget | None = None,
        parse_pool: ParsePool | None = None,
    ):
        self.cache = cache
        self.events = events
        self.names = names
        self.ingress = ingress
        self.egress_org = egress_org
        self.gateway = gateway or Gateway()
        self.signer = signer or AssertionSigner(b"", 0)
        self.inspection = inspection or InspectionBudget(0, 0)
        self.parse_pool = parse_pool or ParsePool(0, 0)
        self._contract = parse_contract(self.gateway)  # what a helper process parses by
        self.tracer = tracing.tracer()
        self._extra_credentials: tuple[str, ...] = ()
        self._names_with_catalog = names
        # At egress the call's credential is the provider's own key, which names nothing here
        # (the org is the assertion's or the static one): it is not looked for.
        self._egress_names = dataclasses.replace(names, credentials=(), litellm_schemes=False)

    def read_config(self, egress: bool = False) -> request_mod.ReadConfig:
        """The settings' request reading, plus the headers the loaded catalog says the gateway
        reads a key from (LiteLLM's litellm_key_header_name): a key there is a credential too."""
        if egress:
            return self._egress_names
        catalog = self.cache.catalog
        extra = catalog.credential_headers if catalog is not None else ()
        if extra is not self._extra_credentials:
            added = tuple(h for h in extra if h not in self.names.credentials)
            self._names_with_catalog = dataclasses.replace(self.names, credentials=(*self.names.credentials, *added))
            self._extra_credentials = extra
        return self._names_with_catalog

    async def check(self, facts: request_mod.RequestFacts, egress_provider: str | None) -> Checked:
        """The Check of one request: at ingress (egress_provider None) the client's request to
        the gateway; at egress the gateway's call to `egress_provider` (the route's)."""
        decision_id = _decision_ids.next()
        ingress = egress_provider is None
        if ingress:
            claim, found = await self._org(self.ingress, facts, "")
        else:
            claim, found = await self._org(self.egress_org, facts, egress.EGRESS)
        org: OrgPolicy | None = None
        if isinstance(found, Verdict):
            verdict = found
        elif egress_provider is not None:  # the gateway's call, judged by the route's provider
            org = found
            verdict = egress.decide(facts, egress_provider, org, self.cache.catalog, self.names.endpoints)
        else:
            org = found
            ingress_verdict = self._ingress_verdict(facts, org)
            if ingress_verdict is None:  # off the event loop: other orgs' Checks go on meanwhile
                parsed = await self.parse_pool.requested(facts, self._contract)
                ingress_verdict = decide(facts, org, self.cache.catalog, self.gateway, parsed)
            verdict = ingress_verdict
        outcome = OUTCOMES[verdict.reason]
        catalog = self.cache.catalog
        providers = catalog.providers if catalog else _NO_PROVIDERS
        if outcome.policy_block:
            self.events.emit(
                blocked(verdict, facts, decision_id, claim.key_id if claim is not None else ""),
                org.block_alerts if org else NO_BLOCK_ALERTS,
            )
            _count_blocks(verdict, providers)
        elif outcome.http_status == 503:
            log.warning("check_unavailable", reason=verdict.reason.value, org_id=clip(verdict.org_id, ORG))
        return Checked(
            verdict,
            decision_id,
            facts.request_id,
            facts.owned_headers,
            providers,
            catalog.version if catalog else 0,
            self.gateway.contract.request_headers if ingress else (),
            self.signer(verdict) if ingress else "",
            outcome.http_status,
        )

    def answered(self, checked: Checked, span: Span | None, started: float) -> None:
        """Record an answered Check: its span's attributes and the Check metrics."""
        verdict = checked.verdict
        result = "allowed" if checked.status == 200 else ("denied" if verdict.enforced else "dry_run")
        if span is not None:
            tracing.describe(span, verdict, checked.decision_id, result, checked.status)
        TALLY.check(result, verdict.reason, time.perf_counter() - started)

    async def _org(
        self, source: OrgSource, facts: request_mod.RequestFacts, checkpoint: str
    ) -> tuple[Claim | None, OrgPolicy | Verdict]:
        """The request's org from `source`: refused as the request claims it, then while the
        state is stale, then as the state answers."""
        claim = source.claimed(facts)
        if isinstance(claim, Verdict):
            return None, claim
        if self.cache.is_stale():
            return claim, Verdict(Reason.STATE_STALE, org_id=claim.org_id, checkpoint=checkpoint)
        try:
            org_id = claim.org_id or claim.known_org or await source.org_id(claim, facts)
            if isinstance(org_id, Verdict):
                return claim, org_id
            return claim, await self.cache.org(org_id)
        except (StateUnavailable, GatewayUnavailable):
            return claim, Verdict(Reason.STATE_UNAVAILABLE, checkpoint=checkpoint)

    def _ingress_verdict(self, facts: request_mod.RequestFacts, org: OrgPolicy) -> Verdict | None:
        """The client's request judged for its org; None when its body is to be parsed in a
        helper process first (then decided)."""
        # A body Envoy cut is refused before it is read (413): only whole bodies are charged.
        judged = org.enabled or facts.require_header is not None
        if judged and not facts.body_truncated and not self.inspection.allow(org.org_id, len(facts.body)):
            return Verdict(Reason.INSPECTION_BUDGET_EXCEEDED, org_id=org.org_id)
        if judged and facts.endpoint is not None and not facts.body_truncated and self.parse_pool.wants(facts):
            return None
        return decide(facts, org, self.cache.catalog, self.gateway)


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
