"""The provider catalog: parsing and validating it, and the read-only index the hot path uses.

A catalog file is the JSON form of `authz.v1.Catalog` (see proto/authz/v1/catalog.proto and
catalog/sample-catalog.json). Validation names the bad entry, so an operator can fix the
file instead of guessing.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from authz.policy import naming
from authz.policy import rules as policy_rules
from authz.v1 import catalog_pb2

# Provider ids become the prefix of "provider/model" and an HTTP header value: keep them plain.
PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# Model ids may contain "/" (e.g. "meta-llama/llama-3"), never whitespace, ',' or control chars.
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")


class CatalogError(ValueError):
    """The catalog is invalid; the message names the entry and what to fix."""


def parse(text: str | bytes) -> catalog_pb2.Catalog:
    """Parse and validate catalog JSON. Raises CatalogError naming the bad entry."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise CatalogError(f"catalog is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError("catalog must be a JSON object with 'providers' and 'models'")
    try:
        catalog = catalog_pb2.Catalog()
        json_format.ParseDict(raw, catalog)
    except json_format.ParseError as exc:
        raise CatalogError(f"catalog entry is invalid: {exc}") from exc
    validate(catalog)
    return catalog


def validate(catalog: catalog_pb2.Catalog) -> None:
    if not catalog.providers:
        raise CatalogError("catalog has no providers")
    if not catalog.models:
        raise CatalogError("catalog has no models")
    if catalog.published_at:
        try:
            published_epoch(catalog.published_at)
        except ValueError:
            raise CatalogError(
                f"published_at {catalog.published_at!r} is not an ISO 8601 date or date-time (e.g. '2026-11-26')"
            ) from None
    for key, provider in catalog.providers.items():
        if not PROVIDER_ID.fullmatch(key):
            raise CatalogError(f"provider id {key!r}: use lower-case letters, digits, '.', '_' or '-' (max 63)")
        if provider.id and provider.id != key:
            raise CatalogError(f"provider {key!r}: its 'id' field says {provider.id!r}; they must match")
        provider.id = key
        if provider.HasField("data_policy"):
            validate_data_policy(provider.data_policy, f"provider {key!r}")
        if provider.region_of:
            parent = catalog.providers.get(provider.region_of)
            if provider.region_of == key or parent is None or parent.region_of:
                raise CatalogError(
                    f"provider {key!r}: region_of {provider.region_of!r} must name another catalog provider "
                    "that is not itself a region entry"
                )
    for model, serving in catalog.models.items():
        if not MODEL_ID.fullmatch(model):
            raise CatalogError(f"model id {model!r}: no spaces, commas or control characters (max 200)")
        if model.partition("/")[0] in catalog.providers:
            raise CatalogError(
                f"model id {model!r} starts with provider id {model.partition('/')[0]!r}/; "
                "it would read as a pinned request. List the model without the provider prefix"
            )
        if not serving.providers and not serving.deactivated:
            raise CatalogError(f"model {model!r}: lists no providers")
        for provider_id in [*serving.providers, *(d.provider for d in serving.deactivated)]:
            if provider_id not in catalog.providers:
                raise CatalogError(f"model {model!r}: lists unknown provider {provider_id!r}")
        if len(set(serving.providers)) != len(serving.providers):
            raise CatalogError(f"model {model!r}: lists a provider twice")
        for ended in serving.deactivated:
            if deactivation_epoch(ended.at) is None:
                raise CatalogError(
                    f"model {model!r}: deactivation of {ended.provider!r} at {ended.at!r} is not an ISO 8601 date-time"
                )
    for route in catalog.routes:
        if "*" not in route.pattern or len(route.pattern) > 200 or not route.providers:
            raise CatalogError(f"route {route.pattern!r}: a pattern with '*' (max 200 characters) and its providers")
        for provider_id in route.providers:
            if provider_id not in catalog.providers:
                raise CatalogError(f"route {route.pattern!r}: lists unknown provider {provider_id!r}")
    for alias, target in catalog.provider_aliases.items():
        if alias in catalog.providers or not PROVIDER_ID.fullmatch(alias):
            raise CatalogError(f"provider alias {alias!r}: must be a plain provider name that is not a provider id")
        if target not in catalog.providers:
            raise CatalogError(f"provider alias {alias!r} names unknown provider {target!r}")
    for alias, target in catalog.model_aliases.items():
        if alias in catalog.models or not MODEL_ID.fullmatch(alias):
            raise CatalogError(f"model alias {alias!r}: must be a model name (no spaces) that is not a model id")
        if alias.partition("/")[0] in catalog.providers or alias.partition("/")[0] in catalog.provider_aliases:
            raise CatalogError(f"model alias {alias!r} starts with a provider name: it would read as a pinned request")
        if target not in catalog.models:
            raise CatalogError(f"model alias {alias!r} names unknown model {target!r}")


_ATTRIBUTES = frozenset(f.name for f in catalog_pb2.DataPolicy.DESCRIPTOR.fields if f.name != "evidence")
_EVIDENCED = _ATTRIBUTES | {"legal_entity"}  # Provider.legal_entity's evidence is kept with the others
COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2, upper case
REGION = re.compile(r"[a-z]{2,12}")  # a processing region code: "us", "eu", "apac", ...


def deactivation_epoch(text: str) -> float | None:
    """A deactivation's `at` as epoch seconds; None when it is not an ISO 8601 date or date-time."""
    try:
        return published_epoch(text) if text else None
    except ValueError:
        return None


def published_epoch(text: str) -> float | None:
    """`published_at` as epoch seconds (a date means its midnight UTC); None when empty."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def age_warning(index: CatalogIndex, max_age_days: int, now: float) -> str | None:
    """What /readyz and the log say about an old catalog (None: recent enough)."""
    if index.published_at is None:
        return f"catalog v{index.version} does not say when its facts were compiled (published_at): its age is unknown"
    # Whole days elapsed, for both the check and the message: a rounded age would say "201 days"
    # from noon on the day a catalog turns 200 days old.
    days = int((now - index.published_at) // 86400)
    if days <= max_age_days:
        return None
    return (
        f"catalog v{index.version} was compiled {days} days ago (catalog_max_age_days = {max_age_days}): "
        "review a current one and load it (authz catalog load FILE)"
    )


def validate_data_policy(dp: catalog_pb2.DataPolicy, where: str) -> None:
    """Shared by the catalog and custom-provider attestations."""
    for attribute in dp.evidence:
        if attribute not in _EVIDENCED:
            raise CatalogError(
                f"{where}: evidence for unknown attribute {attribute!r} (known: {', '.join(sorted(_EVIDENCED))})"
            )
    for region in dp.processing_regions:
        if not REGION.fullmatch(region):
            raise CatalogError(
                f"{where}: processing region {region!r} is not a lower-case region code (e.g. 'us', 'eu')"
            )
    if dp.headquarters_country and not COUNTRY.fullmatch(dp.headquarters_country):
        raise CatalogError(
            f"{where}: headquarters_country {dp.headquarters_country!r} is not an ISO 3166-1 "
            "alpha-2 code in upper case (e.g. 'US', 'FR')"
        )
    if dp.HasField("soc2") and dp.soc2_report != catalog_pb2.SOC2_REPORT_UNSPECIFIED:
        has_report = dp.soc2_report in (catalog_pb2.SOC2_REPORT_TYPE1, catalog_pb2.SOC2_REPORT_TYPE2)
        if dp.soc2 != has_report:
            raise CatalogError(
                f"{where}: soc2 is {str(dp.soc2).lower()} but soc2_report is "
                f"{catalog_pb2.Soc2Report.Name(dp.soc2_report)}; make them agree"
            )


def diff(old: catalog_pb2.Catalog | None, new: catalog_pb2.Catalog) -> dict[str, Any]:
    """What a catalog load changes, for the audit trail and compliance alerts."""
    old_providers = dict(old.providers) if old else {}
    old_models = dict(old.models) if old else {}

    def data_policy(p: catalog_pb2.Provider) -> dict[str, Any] | None:
        if not p.HasField("data_policy"):
            return None
        found: dict[str, Any] = json_format.MessageToDict(p.data_policy, preserving_proto_field_name=True)
        return found

    changed = {
        pid: {"before": data_policy(old_providers[pid]), "after": data_policy(p)}
        for pid, p in new.providers.items()
        if pid in old_providers and data_policy(old_providers[pid]) != data_policy(p)
    }
    return {
        "providers_added": sorted(set(new.providers) - set(old_providers)),
        "providers_removed": sorted(set(old_providers) - set(new.providers)),
        "providers_changed": changed,
        "models_added": sorted(set(new.models) - set(old_models)),
        "models_removed": sorted(set(old_models) - set(new.models)),
        "models_changed": sorted(
            m for m in new.models if m in old_models and list(old_models[m].providers) != list(new.models[m].providers)
        ),
        # Mappings the new catalog deactivates that the old one did not (the gateway stops sending
        # the model there on that date, and moves a request pinned there elsewhere).
        "mappings_deactivated": [
            {"model": m, "provider": d.provider, "at": d.at}
            for m in sorted(new.models)
            for d in new.models[m].deactivated
            if m not in old_models or d.provider not in {e.provider for e in old_models[m].deactivated}
        ],
    }


def to_json(catalog: catalog_pb2.Catalog) -> str:
    return str(json_format.MessageToJson(catalog, preserving_proto_field_name=True, indent=None))


TEXT = "text"  # what a model produces when its source does not say (ModelProviders.output)


@dataclass(frozen=True, slots=True)
class ModelVerdict:
    """Compliance of every provider serving one model under one set of requirements."""

    allowed: tuple[str, ...]
    blocked: policy_rules.Blocked


@dataclass(slots=True)
class ComplianceTable:
    """provider -> unmet rules, for one (catalog version, rules) pair.

    Built once per distinct set of rules (orgs with the same policy share it); per-model
    verdicts are memoized on first use, so a request is a couple of dict lookups whatever
    the catalog size.
    """

    index: CatalogIndex
    rules: policy_rules.Rules
    unmet: dict[str, policy_rules.Failures]
    _models: dict[str, ModelVerdict] = field(default_factory=dict)
    _examples: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per output kind
    _whole: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def for_model(self, model: str) -> ModelVerdict:
        verdict = self._models.get(model)
        if verdict is None:
            providers = self.index.models[model]
            verdict = ModelVerdict(
                allowed=tuple(p for p in providers if not self.unmet[p]),
                blocked=tuple((p, self.unmet[p]) for p in providers if self.unmet[p]),
            )
            self._models[model] = verdict
        return verdict

    def fully_compliant_models(self, limit: int, kind: str = TEXT) -> tuple[str, ...]:
        """Models producing `kind` every provider of which complies (and the model lists allow):
        names a gateway may route among freely. Computed once per table and kind."""
        whole = self._whole.get(kind)
        if whole is None:
            whole = self._whole[kind] = tuple(
                m
                for m in sorted(self.index.models)
                if self.index.produces(m, kind)
                and not self.for_model(m).blocked
                and self.for_model(m).allowed
                and not policy_rules.model_unmet(m, self.rules)
            )
        return whole[:limit]

    def compliant_examples(self, limit: int, kind: str = TEXT) -> tuple[str, ...]:
        """Pinned names of models producing `kind` that a compliant provider serves (and the
        model lists allow), to suggest when the requested model has none. Once per table and kind."""
        examples = self._examples.get(kind)
        if examples is None:
            found: list[str] = []
            for model in sorted(self.index.models):
                if len(found) == limit:
                    break
                allowed = self.for_model(model).allowed
                if allowed and self.index.produces(model, kind) and not policy_rules.model_unmet(model, self.rules):
                    found.append(f"{allowed[0]}/{model}")
            examples = self._examples[kind] = tuple(found)
        return examples


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    regex: re.Pattern[str]
    providers: tuple[str, ...]


def compile_routes(routes: Iterable[tuple[str, tuple[str, ...]]]) -> tuple[Route, ...]:
    """Routes in LiteLLM's order (router_utils/pattern_match_deployments.py: pattern_to_regex,
    PatternUtils.sorted_patterns): each "*" becomes "(.*)", matched with re.match (anchored at
    the start only); longest regex first, then the more "*"s, a stable sort; one regex merges
    the providers of every pattern spelling it."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for pattern, providers in routes:
        regex = re.escape(pattern).replace(r"\*", "(.*)")
        found = merged.setdefault(regex, (pattern, []))[1]
        found.extend(p for p in providers if p not in found)
    complexity = ("*", "+", "?", "\\", "^", "$", "|", "(", ")")
    order = sorted(merged, key=lambda r: (len(r), sum(r.count(c) for c in complexity)), reverse=True)
    return tuple(Route(merged[r][0], re.compile(r), tuple(merged[r][1])) for r in order)


@dataclass(slots=True)
class CatalogIndex:
    """A loaded catalog, indexed for the hot path. Immutable once built, except for memos."""

    version: int
    providers: dict[str, catalog_pb2.Provider]
    models: dict[str, tuple[str, ...]]
    published_at: float | None = None  # epoch seconds; None when the catalog does not say
    names: naming.Names = None  # type: ignore[assignment]  # set by __post_init__
    routes: tuple[Route, ...] = ()  # in the order they are tried
    gateway: str = ""  # the gateway whose config the models come from ("litellm"), if any
    credential_headers: tuple[str, ...] = ()  # where that gateway also reads an API key
    # (model or route pattern, provider) -> the fallback setting that makes it a candidate
    reached_through: dict[tuple[str, str], str] = field(default_factory=dict)
    outputs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # model -> what it produces, when published
    # (model, provider) -> (epoch seconds, the catalog's text) of each deactivated mapping, and
    # every such instant in order (a remembered judgement that read one lasts until the next).
    deactivations: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    deactivation_times: tuple[float, ...] = ()
    _tables: dict[policy_rules.Rules, ComplianceTable] = field(default_factory=dict)
    # The Check's remembered judgements under this catalog (authz.check.decision): a new catalog
    # starts with none, and the old ones go with the old catalog.
    judgements: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.names is None:
            self.names = naming.Names(frozenset(self.providers), frozenset(self.models), {}, {})

    @classmethod
    def build(cls, catalog: catalog_pb2.Catalog) -> CatalogIndex:
        providers = dict(catalog.providers)
        models = {m: tuple(s.providers) for m, s in catalog.models.items()}
        deactivations = {
            (m, d.provider): (deactivation_epoch(d.at) or 0.0, d.at)
            for m, s in catalog.models.items()
            for d in s.deactivated
        }
        return cls(
            version=catalog.version,
            providers=providers,
            models=models,
            published_at=published_epoch(catalog.published_at),
            names=naming.Names(
                frozenset(providers), frozenset(models), dict(catalog.provider_aliases), dict(catalog.model_aliases)
            ),
            routes=compile_routes((r.pattern, tuple(r.providers)) for r in catalog.routes),
            gateway=catalog.gateway,
            credential_headers=tuple(catalog.credential_headers),
            reached_through={
                **{(m, p): via for m, s in catalog.models.items() for p, via in s.reached_through.items()},
                **{(r.pattern, p): via for r in catalog.routes for p, via in r.reached_through.items()},
            },
            outputs={m: tuple(s.output) for m, s in catalog.models.items() if s.output},
            deactivations=deactivations,
            deactivation_times=tuple(sorted({at for at, _ in deactivations.values()})),
        )

    def deactivated(self, model: str, provider: str, now: float) -> str | None:
        """When the source deactivated the provider's mapping of the model, if that is not after `now`."""
        found = self.deactivations.get((model, provider))
        return found[1] if found is not None and found[0] <= now else None

    def next_deactivation(self, now: float) -> float:
        """The first deactivation after `now` (infinity when none is to come)."""
        i = bisect.bisect_right(self.deactivation_times, now)
        return self.deactivation_times[i] if i < len(self.deactivation_times) else math.inf

    def produces(self, model: str, kind: str) -> bool:
        """Whether the model produces `kind` (a model whose source says nothing produces text)."""
        return kind in self.outputs.get(model, (TEXT,))

    def route(self, name: str) -> tuple[str, ...] | None:
        """The providers a wildcard route sends `name` to, or None when no route matches."""
        found = self.route_of(name)
        return found.providers if found is not None else None

    def route_of(self, name: str) -> Route | None:
        """The wildcard route LiteLLM picks for `name` (the first that matches), if any."""
        for route in self.routes:
            if route.regex.match(name):
                return route
        return None

    def serves(self, name: str) -> bool:
        """Whether a gateway whose own names these are (an imported config) routes `name`: a
        model group, an alias of one, or a name a wildcard route matches."""
        return self.names.model(name) is not None or self.route_of(name) is not None

    def table(self, rules: policy_rules.Rules) -> ComplianceTable:
        table = self._tables.get(rules)
        if table is None:
            table = ComplianceTable(
                index=self,
                rules=rules,
                unmet={
                    pid: policy_rules.unmet(
                        pid, p.data_policy if p.HasField("data_policy") else None, rules, p.region_of
                    )
                    for pid, p in self.providers.items()
                },
            )
            self._tables[rules] = table
        return table


def compliance_changes(
    old: catalog_pb2.Catalog | None, new: catalog_pb2.Catalog, rules: policy_rules.Rules
) -> dict[str, Any]:
    """How one policy's view changes from `old` to `new`: providers newly blocked or allowed,
    models that lose (or gain) every compliant provider, models whose compliant set changes."""
    before = CatalogIndex.build(old) if old is not None else None
    after = CatalogIndex.build(new)
    new_table = after.table(rules)
    old_table = before.table(rules) if before else None

    def allowed(table: ComplianceTable | None, index: CatalogIndex | None, model: str) -> tuple[str, ...]:
        if table is None or index is None or model not in index.models:
            return ()
        return table.for_model(model).allowed

    old_ok = {p for p, u in old_table.unmet.items() if not u} if old_table else set()
    new_ok = {p for p, u in new_table.unmet.items() if not u}
    models = sorted(set(after.models) | (set(before.models) if before else set()))
    changed = {
        m: {"before": list(allowed(old_table, before, m)), "after": list(allowed(new_table, after, m))}
        for m in models
        if allowed(old_table, before, m) != allowed(new_table, after, m)
    }
    return {
        "providers_now_blocked": sorted(p for p in old_ok - new_ok if p in after.providers),
        "providers_now_allowed": sorted(new_ok - old_ok),
        "models_losing_every_compliant_provider": sorted(
            m for m, c in changed.items() if c["before"] and not c["after"]
        ),
        "models_gaining_a_compliant_provider": sorted(m for m, c in changed.items() if not c["before"] and c["after"]),
        "models_changed": changed,
    }
