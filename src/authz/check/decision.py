"""Facts + the org's policy + the catalog -> a Verdict. Pure, no I/O.

The order a reader can follow: no enabled policy -> allow; find the endpoint row (none ->
block) and read every model the request names where that row says (fail closed on any doubt;
model-free endpoints -> allow); then for each model: resolve pinned vs automatic routing
against the catalog and the org's own custom providers (unknown -> block); apply the model
allow/deny lists; look the providers up in the precompiled compliance table. A batch is
allowed only when every model in it is. The outcomes are rows of reasons.OUTCOMES; the
contracts (fail closed, routing modes) are in docs/design.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authz.check import parsing
from authz.check.request import RequestFacts
from authz.check.verdict import Verdict
from authz.policy import gateways, naming
from authz.policy import rules as policy_rules
from authz.policy.catalog import TEXT, CatalogIndex
from authz.policy.gateways.description import NOTHING, Allowed, Contract
from authz.policy.orgs import OrgPolicy
from authz.reasons import OUTCOMES, Reason

PINNED = "pinned"
AUTOMATIC = "automatic"
# How the gateway behind us routes an automatic request (setting routing_enforcement):
STRICT = "strict"  # it may pick any provider serving the model: allow only if all comply
HEADER = "header"  # it routes only among x-compliance-allowed-providers
MAX_ALTERNATIVES = 5
clock = time.time  # when deactivations take effect (tests move it)
UPLOADED_FILE = "(uploaded file)"  # the "model" of a verdict on where a file upload is stored
RETIRED = "*"  # Verdict.deactivated's provider when every mapping of the model is deactivated
# Blocks for which a client can be told what would succeed instead.
_SUGGEST = frozenset(
    {
        Reason.PROVIDER_NOT_COMPLIANT,
        Reason.NO_COMPLIANT_PROVIDER,
        Reason.ROUTING_NOT_ENFORCEABLE,
        Reason.PROVIDER_DOES_NOT_SERVE_MODEL,
        Reason.UNKNOWN_MODEL,
        Reason.UNKNOWN_PROVIDER,
        Reason.MODEL_NOT_ALLOWED,
    }
)


@dataclass(frozen=True, slots=True)
class Gateway:
    """The gateway authz fronts as the operator set it up: its routing mode (setting
    routing_enforcement), its description by name (naming_profile: authz.policy.gateways), the
    body fields the operator declares inert (extra_body_fields) and what a request may name
    (custom hosts, Azure resources and deployments); the routing contract that follows."""

    routing: str = STRICT
    naming: str = "native"
    extra_body_fields: frozenset[str] = frozenset()
    keeps_pins: bool = True  # False on a path where the gateway may move a pinned request
    allowed: Allowed = NOTHING
    contract: Contract = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "contract", gateways.contract_for(self.naming, self.extra_body_fields, self.allowed))


_DEFAULT_GATEWAY = Gateway()


# decide's closure that fills in the org's part of every verdict
MakeVerdict = Callable[..., Verdict]


def decide(
    facts: RequestFacts,
    org: OrgPolicy,
    catalog: CatalogIndex | None,
    gateway: Gateway = _DEFAULT_GATEWAY,
    parsed: parsing.Requested | None = None,
) -> Verdict:
    """`parsed`: what parsing.requested(facts, parse_contract(gateway)) found, when the caller
    parsed the body elsewhere (authz.server.parse_pool: a large body, in a helper process)."""
    extra: frozenset[str] = frozenset()
    if facts.require_header is not None:
        asked = policy_rules.client_requirements(facts.require_header)
        if isinstance(asked, str):
            return Verdict(Reason.UNKNOWN_REQUIREMENT, org_id=org.org_id, policy_version=org.version, detail=asked)
        extra = asked
        org = _tightened(org, extra)
    if not org.enabled:
        return Verdict(Reason.NO_POLICY, org_id=org.org_id, policy_version=org.version)
    requested = tuple(sorted(extra, key=policy_rules.ORDER.__getitem__))

    def verdict(reason: Reason, **details: Any) -> Verdict:
        return Verdict(
            reason,
            org_id=org.org_id,
            enforced=org.enforced,
            policy_version=org.version,
            client_requirements=requested,
            **details,
        )

    if facts.upgrade is not None and (facts.endpoint is None or not facts.endpoint.endpoint.upgrade):
        # Envoy passes an upgraded stream on without its body: judged by a row that is not a
        # websocket endpoint, it would open a session nobody judged (a realtime session, say).
        return verdict(Reason.UPGRADE_NOT_ALLOWED, detail=f"{facts.method} {facts.path}")
    if facts.endpoint is None:
        return verdict(Reason.ENDPOINT_NOT_COVERED, detail=f"{facts.method} {facts.path}")
    contract = gateway.contract
    route_provider = contract.provider_route(facts.path) if contract.provider_routes else None
    if route_provider is not None:
        # A pass-through route: the gateway sends to this provider whatever the model names.
        if facts.provider_header is not None and facts.provider_header != route_provider:
            return verdict(Reason.PROVIDER_CONFLICT, model=facts.model_header or "", provider=facts.provider_header)
        facts = dataclasses.replace(facts, provider_header=route_provider)
    named = parsed if parsed is not None else parsing.requested(facts, parse_contract(gateway))
    if contract.unpinned_paths and facts.path in contract.unpinned_paths:
        gateway = dataclasses.replace(gateway, keeps_pins=False)
    if isinstance(named, parsing.Refusal):
        detail = _size(facts.body_limit) if named.reason is Reason.BODY_TRUNCATED else named.detail
        return verdict(named.reason, model=named.model or facts.model_header or "", item=named.item, detail=detail)
    if not named:
        return verdict(Reason.MODEL_FREE)
    if catalog is None:
        return Verdict(Reason.CATALOG_NOT_LOADED, org_id=org.org_id, model=named[0][0])
    if len(named) == 1 and not isinstance(named[0], parsing.Destination):
        return _judge_remembered(named[0][0], facts, org, catalog, gateway, verdict)
    judged: dict[str, Verdict] = {}
    for entry in named:
        model, item = entry
        key = f"\0{model}" if isinstance(entry, parsing.Destination) else model
        if key not in judged:
            if isinstance(entry, parsing.Destination):
                judged[key] = found = _judge_destination(model, org, catalog, gateway, verdict)
            else:
                judged[key] = found = _judge_remembered(model, facts, org, catalog, gateway, verdict)
            if OUTCOMES[found.reason].http_status != 200:
                return dataclasses.replace(found, item=item)
    first, *rest = judged.values()
    if not rest:
        return first
    allowed = dict.fromkeys(p for v in judged.values() for p in v.allowed_providers)
    return dataclasses.replace(first, routing=AUTOMATIC, provider="", allowed_providers=tuple(allowed))


def parse_contract(gateway: Gateway) -> Contract | None:
    """The contract the body is parsed under (None: the gateway routes by no field)."""
    return gateway.contract if gateway.contract.reads_fields else None


def _judge_destination(
    name: str, org: OrgPolicy, catalog: CatalogIndex, gateway: Gateway, verdict: MakeVerdict
) -> Verdict:
    """A provider the request sends data to whatever model it names (an uploaded file)."""
    provider = catalog.names.provider(name, gateway.naming)
    what = UPLOADED_FILE
    if provider is None:
        return verdict(Reason.UNKNOWN_PROVIDER, model=what, routing=PINNED, provider=name)
    unmet = catalog.table(org.rules).unmet[provider]
    if unmet:
        return verdict(
            Reason.PROVIDER_NOT_COMPLIANT, model=what, routing=PINNED, provider=provider, blocked=((provider, unmet),)
        )
    return verdict(Reason.COMPLIANT, model=what, routing=PINNED, provider=provider, allowed_providers=(provider,))


def _size(limit: int) -> str:
    """A body limit as an operator sets it."""
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"


def _tightened(org: OrgPolicy, extra: frozenset[str]) -> OrgPolicy:
    """The org's policy with a client's own requirements added. A client asking for more is
    held to it even where the org enforces nothing (or only in dry run)."""
    rules = policy_rules.tightened(org.rules, extra)
    custom = {
        cid: dataclasses.replace(entry, unmet=policy_rules.custom_unmet(cid, entry.attestation, rules, enabled=True))
        if entry.attestation is not None
        else entry
        for cid, entry in org.custom.items()
    }
    return dataclasses.replace(org, rules=rules, custom=custom, enabled=True, enforced=True)


# Recent judgements, so a warm process judges each (org, model, provider header) once per
# policy and catalog: the same inputs give the same Verdict. They live in the catalog's own
# memo (CatalogIndex.judgements), so a new catalog starts with none; an entry holds the org it
# was made for and answers only for that very object (a policy change replaces it), which also
# keeps its id from being reused while the entry exists. Bounded, and only short names are
# kept, so a client varying its model cannot grow it. A catalog with deactivations to come
# makes a judgement last only until the next one.
_JUDGED_MAX = 16_384
_JUDGED_KEY_CHARS = 256


def _judge_remembered(
    model: str, facts: RequestFacts, org: OrgPolicy, catalog: CatalogIndex, gateway: Gateway, verdict: MakeVerdict
) -> Verdict:
    """`_judge_with_alternatives`, remembered for the org's own policy (not one a client
    tightened per request)."""
    provider = facts.provider_header
    if facts.require_header is not None or len(model) + len(provider or "") > _JUDGED_KEY_CHARS:
        return _judge_with_alternatives(model, facts, org, catalog, gateway, verdict)
    key = (id(org), model, provider, gateway, facts.endpoint.endpoint.path if facts.endpoint else "")
    judged = catalog.judgements
    hit = judged.get(key)
    now = clock() if catalog.deactivation_times else 0.0
    if hit is not None and hit[0] is org and now < hit[2]:
        remembered: Verdict = hit[1]
        return remembered
    found = _judge_with_alternatives(model, facts, org, catalog, gateway, verdict)
    if len(judged) >= _JUDGED_MAX:
        judged.clear()
    judged[key] = (org, found, catalog.next_deactivation(now) if now else math.inf)
    return found


def _judge_with_alternatives(
    model: str, facts: RequestFacts, org: OrgPolicy, catalog: CatalogIndex, gateway: Gateway, verdict: MakeVerdict
) -> Verdict:
    """One model against the catalog and the org's policy; a block says what would pass."""
    custom = org.custom
    pinned, model_id = naming.resolve(model, catalog.names, gateway.naming, custom.__contains__)
    # A name that is no model or alias goes where the gateway's wildcard routes send it (the
    # catalog carries them when it was imported from the gateway's config).
    route = catalog.route_of(model) if catalog.routes and facts.provider_header is None else None
    if route is not None and catalog.names.model(model) is None:
        found = _judge_routed(model, route.pattern, route.providers, model_id, org, catalog, gateway, verdict)
    elif catalog.gateway and catalog.names.model(model) is None and pinned not in custom:
        # The catalog's models are the gateway's own names (an imported config): a name it does
        # not route is not a pin to judge (a catalog id is no LiteLLM spelling); LiteLLM sends it
        # to its default fallbacks, or refuses it.
        found = verdict(Reason.UNKNOWN_MODEL, model=model, detail=catalog.gateway)
    else:
        found = _judge_resolved(model, pinned, model_id, facts, org, catalog, gateway, verdict)
    if found.reason in _SUGGEST:
        kind = endpoint_output(facts.endpoint.endpoint.path) if facts.endpoint else TEXT
        if catalog.gateway:  # the catalog's models are the gateway's own names
            alternatives = _gateway_alternatives(org, catalog, kind)
        else:
            alternatives = found.alternatives or _alternatives(model_id, org, catalog, kind)
            if alternatives and gateway.naming != naming.NATIVE:  # as the gateway's clients spell them
                alternatives = tuple(_spelled(a, catalog, gateway.naming) for a in alternatives)
        if alternatives:
            return dataclasses.replace(found, alternatives=alternatives)
    return found


def _judge_routed(
    model: str,
    pattern: str,
    providers: tuple[str, ...],
    model_id: str,
    org: OrgPolicy,
    catalog: CatalogIndex,
    gateway: Gateway,
    verdict: MakeVerdict,
) -> Verdict:
    """A name a wildcard route sends to `providers`: judged by those providers alone."""
    model_failures = policy_rules.model_unmet(model_id, org.rules)
    if model_failures:
        return verdict(Reason.MODEL_NOT_ALLOWED, model=model, routing=AUTOMATIC, model_unmet=model_failures)
    unmet = catalog.table(org.rules).unmet
    allowed = tuple(p for p in providers if not unmet[p])
    blocked = tuple((p, unmet[p]) for p in providers if unmet[p])
    via = _via(pattern, blocked, catalog)
    if via:
        verdict = functools.partial(verdict, via=via)
    if len(providers) == 1:
        (provider,) = providers
        if blocked:
            return verdict(
                Reason.PROVIDER_NOT_COMPLIANT, model=model, routing=PINNED, provider=provider, blocked=blocked
            )
        return verdict(Reason.COMPLIANT, model=model, routing=PINNED, provider=provider, allowed_providers=allowed)
    if not allowed:
        return verdict(Reason.NO_COMPLIANT_PROVIDER, model=model, routing=AUTOMATIC, blocked=blocked)
    if blocked and gateway.routing == STRICT:
        return verdict(Reason.ROUTING_NOT_ENFORCEABLE, model=model, routing=AUTOMATIC, blocked=blocked)
    return verdict(Reason.COMPLIANT, model=model, routing=AUTOMATIC, allowed_providers=allowed, blocked=blocked)


def _via(name: str, blocked: policy_rules.Blocked, catalog: CatalogIndex) -> tuple[tuple[str, str], ...]:
    """Which blocked providers only the gateway's fallbacks reach, and through what."""
    if not catalog.reached_through:
        return ()
    found = ((p, catalog.reached_through.get((name, p), "")) for p, _ in blocked)
    return tuple((p, where) for p, where in found if where)


# What an endpoint asks a model to produce (catalog_pb2.ModelProviders.output); suggestions
# are limited to models that produce it.
_ENDPOINT_OUTPUTS = (
    ("embed", "embedding"),
    ("audio/transcriptions", "transcription"),
    ("audio/translations", "transcription"),
    ("audio/speech", "audio"),
    ("images/", "image"),
    ("rerank", "rerank"),
    ("moderations", "moderation"),
)


def endpoint_output(path: str) -> str:
    """What the endpoint row `path` (a template) produces: text unless it says otherwise."""
    return next((kind for marker, kind in _ENDPOINT_OUTPUTS if marker in path), TEXT)


def _gateway_alternatives(org: OrgPolicy, catalog: CatalogIndex, kind: str = TEXT) -> tuple[str, ...]:
    """The gateway's own model names (LiteLLM's model groups) for this kind of endpoint whose
    every candidate provider, fallbacks included, complies: sent as they are, the gateway serves
    them. A pinned spelling is never suggested: the gateway serves it only through a wildcard
    route, and the catalog does not know which model names the route's provider has."""
    return catalog.table(org.rules).fully_compliant_models(MAX_ALTERNATIVES, kind)


def _spelled(name: str, catalog: CatalogIndex, profile: str) -> str:
    provider, model_id = _pinned(name)
    entry = catalog.providers.get(provider)
    return naming.spell(provider, model_id, profile, entry.region_of if entry is not None else "")


def _pinned(name: str) -> tuple[str, str]:
    provider, _, model_id = name.partition("/")
    return provider, model_id


def _alternatives(model_id: str, org: OrgPolicy, catalog: CatalogIndex, kind: str = TEXT) -> tuple[str, ...]:
    """Up to five pinned names that pass: the same model from a compliant provider, else
    other compliant models. Pinned, so they pass in either routing mode."""
    table = catalog.table(org.rules)
    if not policy_rules.model_unmet(model_id, org.rules):
        same = [f"{p}/{model_id}" for p in table.for_model(model_id).allowed] if model_id in catalog.models else []
        # The org's own attested providers of the model too.
        same += [
            f"{cid}/{model_id}" for cid in sorted(_custom_serving(model_id, org, catalog)) if not org.custom[cid].unmet
        ]
        if same:
            return tuple(same[:MAX_ALTERNATIVES])
    return table.compliant_examples(MAX_ALTERNATIVES, kind)


def _custom_serving(model_id: str, org: OrgPolicy, catalog: CatalogIndex) -> list[str]:
    """The org's own providers of the model. A custom id that the catalog also has (the catalog
    gained it later) names the catalog's provider: the gateway routes by id, so it would call
    the catalog's one."""
    return [cid for cid, entry in org.custom.items() if model_id in entry.models and cid not in catalog.providers]


def _judge_resolved(
    model: str,
    pinned: str,
    model_id: str,
    facts: RequestFacts,
    org: OrgPolicy,
    catalog: CatalogIndex,
    gateway: Gateway,
    verdict: MakeVerdict,
) -> Verdict:
    custom = org.custom
    if facts.provider_header is not None:
        named = catalog.names.provider(facts.provider_header, gateway.naming)
        if named is None and facts.provider_header in custom:
            named = facts.provider_header
        if named is None:
            return verdict(Reason.UNKNOWN_PROVIDER, model=model, provider=facts.provider_header)
        if pinned and pinned != named:
            return verdict(Reason.PROVIDER_CONFLICT, model=model, provider=facts.provider_header)
        pinned = named

    if not gateway.keeps_pins and pinned in catalog.providers:
        pinned = ""  # the gateway may send it to any provider of the model: judged as unpinned
    ended = catalog.deactivated(model_id, pinned, clock()) if pinned and catalog.deactivations else None
    if ended is None:
        return _judge_pin(model, pinned, model_id, org, catalog, gateway, verdict)
    note = f"{pinned} {ended}"
    if gateway.contract.drops_deactivated_pins:
        # The gateway sends a pin to a deactivated mapping to another provider of the model.
        return dataclasses.replace(_judge_pin(model, "", model_id, org, catalog, gateway, verdict), deactivated=note)
    found = _judge_pin(model, pinned, model_id, org, catalog, gateway, verdict)
    return (
        dataclasses.replace(found, deactivated=note) if found.reason is Reason.PROVIDER_DOES_NOT_SERVE_MODEL else found
    )


def _judge_pin(
    model: str,
    pinned: str,
    model_id: str,
    org: OrgPolicy,
    catalog: CatalogIndex,
    gateway: Gateway,
    verdict: MakeVerdict,
) -> Verdict:
    """A model pinned to a provider (or not pinned: `pinned` empty) against the catalog and policy_rules."""
    custom = org.custom
    routing = PINNED if pinned else AUTOMATIC
    serving = catalog.models.get(model_id, ())
    custom_serving = _custom_serving(model_id, org, catalog) if custom else []
    if not serving and not custom_serving:
        # A model the catalog knows with every mapping deactivated: retired, and said so.
        ends = (
            [at for (m, _), (_, at) in catalog.deactivations.items() if m == model_id]
            if model_id in catalog.models
            else []
        )
        retired = f"{RETIRED} {max(ends)}" if ends else ""
        return verdict(Reason.UNKNOWN_MODEL, model=model, routing=routing, provider=pinned, deactivated=retired)
    model_failures = policy_rules.model_unmet(model_id, org.rules)
    if model_failures:
        return verdict(
            Reason.MODEL_NOT_ALLOWED, model=model, routing=routing, provider=pinned, model_unmet=model_failures
        )
    table = catalog.table(org.rules)

    if pinned:
        if pinned in catalog.providers:  # a catalog id always wins over a custom one
            served, failures = pinned in serving, table.unmet[pinned]
        else:
            served, failures = pinned in custom_serving, custom[pinned].unmet
        if not served:
            # The org's own provider list says no, whatever the provider serves: named first.
            failures = tuple(u for u in failures if u.requirement in policy_rules.PROVIDER_LISTS)
            if not failures:
                return verdict(Reason.PROVIDER_DOES_NOT_SERVE_MODEL, model=model, routing=routing, provider=pinned)
        if failures:
            return verdict(
                Reason.PROVIDER_NOT_COMPLIANT,
                model=model,
                routing=routing,
                provider=pinned,
                blocked=((pinned, failures),),
            )
        return verdict(Reason.COMPLIANT, model=model, routing=routing, provider=pinned, allowed_providers=(pinned,))

    allowed: tuple[str, ...] = ()
    blocked: policy_rules.Blocked = ()
    if serving:
        candidates = table.for_model(model_id)
        allowed, blocked = candidates.allowed, candidates.blocked
    if custom_serving:
        allowed += tuple(c for c in custom_serving if not custom[c].unmet)
        blocked += tuple((c, custom[c].unmet) for c in custom_serving if custom[c].unmet)
    via = _via(model_id, blocked, catalog)
    if not allowed:
        return verdict(Reason.NO_COMPLIANT_PROVIDER, model=model, routing=routing, blocked=blocked, via=via)
    if blocked and gateway.routing == STRICT:
        # The gateway may pick a blocked provider whatever we tell it: the client must pin.
        return verdict(
            Reason.ROUTING_NOT_ENFORCEABLE,
            model=model,
            routing=routing,
            blocked=blocked,
            via=via,
            alternatives=tuple(f"{p}/{model_id}" for p in allowed[:MAX_ALTERNATIVES]),
        )
    return verdict(Reason.COMPLIANT, model=model, routing=routing, allowed_providers=allowed, blocked=blocked)
