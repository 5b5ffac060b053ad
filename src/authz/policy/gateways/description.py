"""What authz knows of one gateway it can front: how its clients spell models and providers,
and its routing contract (what in a request, besides its model, decides where the prompt
goes). One `Description` per gateway, in a module of its own beside this one; the registry
(authz.policy.gateways) lists them, and naming, parsing, the decision and the responses read
them. Pure data, no I/O; docs/gateways.md cites the gateway source each entry comes from.

A gateway reads more than the model a request names: LiteLLM's proxy passes every body field
on to its router and to the provider call, so a body can add fallback models or override the
provider; some routes forward to one provider whatever the model says. A contract lists the
fields known not to move the prompt (anything else is refused, 400 `field_not_allowed`, since
authz cannot know where it sends the prompt), the fields that name further models (each judged
like the model itself), and the path prefixes pinned to a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, eq=False)
class Spelling:
    """How the gateway's clients write a pinned "<provider>/<model>" (authz.policy.naming)."""

    # The gateway's provider ids -> the catalog's; the first id listed for a catalog provider
    # is the one a deny body suggests.
    providers: Mapping[str, str] = field(default_factory=dict)
    # "author/model" names a model and lets the router pick a provider (OpenRouter): never a pin.
    author_prefix: bool = False
    # "provider/model:region" names a regional entry of the catalog (LLMGateway).
    region_suffix: bool = False


@dataclass(frozen=True, slots=True)
class Uploads:
    """Where a gateway stores an uploaded file (its content is prompts: a batch's lines, a
    fine-tuning set): at a provider named by a header or query parameter, else a default."""

    paths: frozenset[str]
    provider_header: str
    provider_query: str
    default_provider: str


@dataclass(frozen=True, slots=True)
class Allowed:
    """What the operator lets a request name: custom hosts per provider (setting custom_hosts),
    Azure resources -> catalog entries (azure_resources), Azure deployments -> models
    (the endpoint table's [deployments])."""

    custom_hosts: frozenset[tuple[str, str]] = frozenset()
    azure_resources: frozenset[tuple[str, str]] = frozenset()
    deployments: frozenset[tuple[str, str]] = frozenset()


NOTHING = Allowed()


@dataclass(frozen=True, slots=True)
class Contract:
    profile: str
    # Body and form fields known not to move the prompt; None: the gateway reads only the fields
    # of the API itself, and any other is left alone.
    inert_fields: frozenset[str] | None = None
    # Fields the gateway routes by that authz cannot judge: always refused.
    routing_fields: frozenset[str] = frozenset()
    # Fields naming further models the gateway may call (a list of names): each judged.
    fallback_fields: tuple[str, ...] = ()
    # Path prefixes the gateway forwards to one provider whatever the model names.
    provider_routes: tuple[tuple[str, str], ...] = ()
    # Headers set on every forwarded request, overwriting the client's: the gateway's own
    # switches that keep it on the provider judged.
    request_headers: tuple[tuple[str, str], ...] = ()
    # Paths where the gateway may move a pinned request to another provider: judged unpinned.
    unpinned_paths: frozenset[str] = frozenset()
    uploads: Uploads | None = None
    # Headers with this prefix choose providers and targets (Portkey): authz.check.portkey.
    header_prefix: str = ""
    # What the operator lets a request name (Portkey): custom hosts, Azure resources and deployments.
    allowed: Allowed = NOTHING
    # Model-free rows where the gateway still routes by a model when one is given (a body
    # "model", the query's `model`, or this header), judged when present.
    optional_model_paths: frozenset[tuple[str, str]] = frozenset()
    optional_model_header: str = ""
    # The gateway moves a request pinned to a deactivated mapping (the catalog's `deactivated`)
    # to another provider of the model: judged unpinned.
    drops_deactivated_pins: bool = False

    @property
    def headers_read(self) -> tuple[str, ...]:
        """Request headers the contract reads (RequestFacts.routing_headers)."""
        found = (self.uploads.provider_header,) if self.uploads is not None else ()
        return found + ((self.optional_model_header,) if self.optional_model_header else ())

    @property
    def reads_fields(self) -> bool:
        """Whether the request's fields or headers matter under this contract."""
        return (
            self.inert_fields is not None
            or bool(self.routing_fields)
            or bool(self.fallback_fields)
            or bool(self.header_prefix)
        )

    def refused_field(self, names: list[str]) -> str | None:
        """The first field the gateway may route by that authz does not judge, or None."""
        for name in names:
            if name in self.routing_fields:
                return name
            if self.inert_fields is not None and name not in self.inert_fields and name not in self.fallback_fields:
                return name
        return None

    def routes_by(self, names: list[str]) -> bool:
        """Whether any of these top-level fields needs more than the model read."""
        if self.inert_fields is not None:
            return any(n not in self.inert_fields for n in names)
        return any(n in self.routing_fields or n in self.fallback_fields for n in names)

    def provider_route(self, path: str) -> str | None:
        """The provider a pass-through path sends to (in the profile's spelling), or None."""
        for prefix, provider in self.provider_routes:
            if path.startswith(prefix):
                return provider
        return None


@dataclass(frozen=True, slots=True, eq=False)
class Description:
    """One gateway, as the `naming_profile` setting names it."""

    name: str  # the naming_profile value (config.NamingProfile lists every one)
    title: str  # as docs/gateways.md heads its section
    spelling: Spelling
    contract: Contract
    # Authorization read as LiteLLM's get_bearer_token (any of its schemes, "Bearer " removed
    # wherever it appears), not only as "Bearer <key>".
    litellm_key_schemes: bool = False
    # Where a verdict's item (authz.check.verdict.Verdict.item) is a routing place, not a batch
    # entry, beside the contract's fallback fields: prefixes (Portkey's "config", its headers).
    routing_items: tuple[str, ...] = ()
