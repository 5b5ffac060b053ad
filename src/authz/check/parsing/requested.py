"""Where the request names its model: the endpoint row chooses the place and the body parser.

    facts + endpoint row -> ((model, custom_id), ...)  or  Refusal(reason, ...)

Each body kind has its own small module (jsonbody, multipart, jsonl), chosen by the row, as
opa-envoy-plugin dispatches its parsed body on the content type. A body is read only as the
type it declares, because the gateway parses it by that type: a JSON row reads
application/json or */*+json in UTF-8, a form row multipart/form-data; anything else is 415.
Every other place the same request names a model (the model header, a JSON body's or a form's
"model") must name the same one, else model_mismatch.

Its sibling modules are imported by their own names (`import authz.check.parsing.jsonbody`),
not through the package, whose __init__ re-exports this module.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl

from python_multipart.multipart import parse_options_header

import authz.check.parsing.fallbacks as fallbacks
import authz.check.parsing.jsonbody as jsonbody
import authz.check.parsing.jsonl as jsonl
import authz.check.parsing.multipart as multipart
from authz.check import endpoints as ep
from authz.check import portkey
from authz.check.request import RequestFacts
from authz.reasons import Reason

if TYPE_CHECKING:  # the contract is handed in by the decision; parsing never chooses one
    from authz.policy.gateways.description import Contract, Uploads

# A body as its row reads it: JSON pairs, or (multipart parts, whether the body ended).
ParsedBody = Any

Named = tuple[str, str]  # (model, custom_id); custom_id is "" outside batches


class Destination(tuple[str, str]):
    """(provider, where): a provider the request sends data to whatever model it names (a
    gateway storing an uploaded file there), in the gateway's spelling."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    model: str = ""  # the model named, when there is one to show
    item: str = ""  # the batch entry (custom_id, or "line N") it concerns
    detail: str = ""  # for unsupported_content_type: the type this endpoint is read as


# What requested() finds: every model the request names, or why none can be read.
Requested: TypeAlias = tuple[Named, ...] | Refusal


def requested(facts: RequestFacts, contract: Contract | None = None) -> Requested:
    """Every model the request names, in order; () for a model-free request. Under a gateway's
    contract, a body field it may route by is refused and its fallbacks are named too."""
    if not facts.body:
        return _requested(facts, contract)
    # A long conversation decodes to tens of thousands of containers, which the collector would
    # walk again and again while they are built and once more when it resumes (measured: 40 %
    # of a 32 MiB parse). Nothing else runs during this synchronous call, and the parsed tree is
    # freed (by reference counting) when _requested returns, before collection resumes.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _requested(facts, contract)
    finally:
        if collecting:
            gc.enable()


def _requested(facts: RequestFacts, contract: Contract | None) -> tuple[Named, ...] | Refusal:
    match = facts.endpoint
    assert match is not None, "decide() asks only for a covered endpoint"
    row = match.endpoint
    if row.model == ep.NONE:
        if contract is not None and (facts.method, facts.path) in contract.optional_model_paths:
            return _optional_model(facts, contract)
        return ()
    body = None
    if row.body != ep.NONE and not facts.body and facts.body_truncated:
        return Refusal(Reason.BODY_TRUNCATED)  # a body the gateway gets and authz did not see
    if row.body != ep.NONE and facts.body:
        if facts.content_encoding and facts.content_encoding.lower() != "identity":
            return Refusal(Reason.BODY_ENCODED)
        names: list[str] | None = [] if contract is not None else None
        body = _read_body(facts, row, contract, names)
        if isinstance(body, Refusal):
            return body
        refused = contract.refused_field(names) if contract is not None and names else None
        if refused is not None:
            return Refusal(Reason.FIELD_NOT_ALLOWED, detail=refused)
    header = facts.model_header
    uploads = contract.uploads if contract is not None else None
    if uploads is not None and facts.method == "POST" and facts.path in uploads.paths:
        return _upload(facts, row, body, header, uploads)
    if row.model in (ep.BATCH_FILE, ep.BATCH_REQUESTS):
        return _batch(row, body, header, facts.query)
    if row.model == ep.NO_BATCH:
        return _no_batch(body)
    found = _single(facts, row, match, body, header)
    if contract is not None and contract.header_prefix and not isinstance(found, Refusal):
        return _header_targets(found, facts, contract)
    if contract is None or not contract.fallback_fields or isinstance(found, Refusal) or body is None:
        return found
    return _with_fallbacks(found, row, body, contract)


def _header_targets(found: tuple[Named, ...], facts: RequestFacts, contract: Contract) -> tuple[Named, ...] | Refusal:
    """Every provider/model the gateway's headers can send the request to (Portkey)."""
    try:
        return tuple(portkey.targets(facts.routing_headers, found[0][0], contract.allowed))
    except portkey.Refused as exc:
        return Refusal(Reason.FIELD_NOT_ALLOWED, detail=str(exc))


def _with_fallbacks(
    found: tuple[Named, ...], row: ep.Endpoint, body: ParsedBody, contract: Contract
) -> tuple[Named, ...] | Refusal:
    """The model, then every model the contract's fallback fields name."""
    if row.body != ep.JSON:
        parts, _ = body
        named = next((p.name for p in parts if p.name.removesuffix("[]") in contract.fallback_fields), None)
        # A form field is one string: the gateway would read it as something else than a list.
        return found if named is None else Refusal(Reason.FIELD_NOT_ALLOWED, detail=named)
    more: list[Named] = []
    for key, value in body:
        if key in contract.fallback_fields:
            try:
                more.extend(fallbacks.fallback_models(key, value))
            except fallbacks.FallbackError as exc:
                return Refusal(Reason.FIELD_NOT_ALLOWED, detail=str(exc))
    return found + tuple(more) if more else found


def _read_body(
    facts: RequestFacts, row: ep.Endpoint, contract: Contract | None, names: list[str] | None
) -> ParsedBody | Refusal:
    """The parsed body: JSON pairs, or (multipart parts, ended); a Refusal when unreadable.
    `names` receives the body's top-level field names (a form's without LiteLLM's "[]")."""
    media, options = parse_options_header(facts.content_type or "")
    if row.body == ep.JSON:
        charset = options.get(b"charset", b"utf-8").lower()
        if not _is_json(media) or charset not in (b"utf-8", b"utf8"):
            return Refusal(Reason.UNSUPPORTED_CONTENT_TYPE, detail="application/json (UTF-8)")
        if facts.body_truncated:
            return Refusal(Reason.BODY_TRUNCATED)
        if _reads_top_level_model_only(row):
            top = jsonbody.top_level(facts.body)
            if top is not None and (contract is None or not contract.routes_by(top[1])):
                return [("model", top[0])]  # all that is read of this body: as object_pairs gives it
        pairs = jsonbody.object_pairs(facts.body)
        if isinstance(pairs, Reason):
            return Refusal(pairs)
        if names is not None:
            names.extend(k for k, _ in pairs)
        return pairs
    boundary = options.get(b"boundary") if media == b"multipart/form-data" else None
    if not boundary:
        return Refusal(Reason.UNSUPPORTED_CONTENT_TYPE, detail="multipart/form-data with a boundary")
    wanted = frozenset({"model", "purpose", "file"} if row.model == ep.BATCH_FILE else {"model", row.field})
    if contract is not None and contract.fallback_fields:
        wanted |= {f for f in contract.fallback_fields} | {f + "[]" for f in contract.fallback_fields}
    form_names: list[str] | None = [] if names is not None else None
    found = multipart.parts(facts.body, boundary, wanted, form_names)
    if isinstance(found, Reason):
        return Refusal(found)
    if names is not None and form_names is not None:
        names.extend(n.removesuffix("[]") for n in form_names)  # get_form_data strips "[]"
    parts, ended = found
    return parts, ended and not facts.body_truncated


def _body_field(row: ep.Endpoint) -> str:
    """The body field naming the model: the row's own where the body is where the model is,
    else "model" (a body may name the model the path or query names, and must agree)."""
    return row.field if row.model in (ep.BODY, ep.FORM) else "model"


def _reads_top_level_model_only(row: ep.Endpoint) -> bool:
    """Whether the only thing read of this row's JSON body is its top-level "model"."""
    if row.model in (ep.BATCH_FILE, ep.BATCH_REQUESTS, ep.NO_BATCH):
        return False
    return _body_field(row) == "model"


def _is_json(media: bytes) -> bool:
    kind, slash, subtype = media.partition(b"/")
    return media == b"application/json" or bool(slash and kind and subtype.endswith(b"+json") and len(subtype) > 5)


def _single(
    facts: RequestFacts, row: ep.Endpoint, match: ep.Match, body: ParsedBody | None, header: str | None
) -> tuple[Named, ...] | Refusal:
    places: list[str] = []  # every model the request names, the gateway's own place first
    deployment = None
    if row.model == ep.QUERY:
        found = _query_model(facts.query, row.field)
        if isinstance(found, Refusal):
            return found
        if found is not None:
            places.append(found)
    elif row.model == ep.PATH:
        places.append(match.variable("model") or "")  # the row has {model}: checked at load
    elif row.model == ep.DEPLOYMENT:
        deployment = match.variable("deployment") or ""
        model = match.deployments.get(deployment)
        if model is None:
            return Refusal(Reason.UNKNOWN_DEPLOYMENT, model=deployment)
        places.append(model)
    if body is not None:
        field = _body_field(row)
        if row.body == ep.JSON:
            found = jsonbody.model_at(body, field)
            extra = jsonbody.model_value(jsonbody.lookup(body, "model")) if field != "model" else None
        else:
            parts, ended = body
            if not ended:
                return Refusal(Reason.BODY_TRUNCATED)
            found = multipart.text_field(parts, field)
            extra = multipart.text_field(parts, "model") if field != "model" else None
        for value in (found, extra):
            if isinstance(value, Reason):
                return Refusal(value)
            if value is not None:
                # An Azure client names the deployment in the body as well as in the path.
                places.append(places[0] if deployment is not None and value == deployment else value)
    elif facts.body_truncated and row.body != ep.NONE:
        return Refusal(Reason.BODY_TRUNCATED)  # a body Envoy did not send may name a model
    if header is not None:
        places.append(header)
    if row.model != ep.QUERY and facts.query:
        found = _query_model(facts.query)
        if isinstance(found, Refusal):
            return found
        if found is not None:
            places.append(found)
    if not places:
        return Refusal(Reason.MODEL_MISSING)
    model = places[0]
    if not model:
        return Refusal(Reason.MODEL_INVALID)
    if any(other != model for other in places[1:]):
        return Refusal(Reason.MODEL_MISMATCH, model=header or model)
    return ((model, ""),)


def _optional_model(facts: RequestFacts, contract: Contract) -> tuple[Named, ...] | Refusal:
    """The model a model-free row may still be routed by (LiteLLM's batches): the body's, the
    query's or the contract's header; all that are given must agree."""
    places: list[str] = []
    if facts.body:
        if facts.body_truncated:
            return Refusal(Reason.BODY_TRUNCATED)
        pairs = jsonbody.object_pairs(facts.body)
        if isinstance(pairs, Reason):
            return Refusal(pairs)
        found = jsonbody.model_at(pairs, "model")
        if isinstance(found, Reason):
            return Refusal(found)
        if found is not None:
            places.append(found)
    query = _query_model(facts.query) if facts.query else None
    if isinstance(query, Refusal):
        return query
    header = facts.routing_headers.get(contract.optional_model_header)
    places += [p for p in (query, header) if p is not None]
    if not places:
        return ()
    if any(p != places[0] for p in places[1:]) or not places[0]:
        return Refusal(Reason.MODEL_MISMATCH, model=places[0])
    return ((places[0], ""),)


def _upload(
    facts: RequestFacts, row: ep.Endpoint, body: ParsedBody | None, header: str | None, uploads: Uploads
) -> tuple[Named, ...] | Refusal:
    """A file upload to a gateway that stores it at a provider: the batch lines, if any, and
    where the file goes (the form's model, else the provider header or query, else the default)."""
    lines = _batch(row, body, header, facts.query) if row.model == ep.BATCH_FILE else ()
    if isinstance(lines, Refusal):
        return lines
    model = multipart.text_field(body[0], "model") if row.body == ep.MULTIPART and body is not None else None
    if isinstance(model, Reason):
        return Refusal(model)
    if model is not None:
        return (*lines, (model, ""))
    by_header = facts.routing_headers.get(uploads.provider_header)
    by_query = [v for k, v in parse_qsl(facts.query, keep_blank_values=True) if k == uploads.provider_query]
    named = {v for v in [by_header, *by_query] if v is not None}
    if len(named) > 1 or by_header == "" or "" in by_query:
        return Refusal(Reason.FIELD_NOT_ALLOWED, detail=uploads.provider_header)
    provider = named.pop() if named else uploads.default_provider
    return (*lines, Destination((provider, "")))


def _batch(
    row: ep.Endpoint, body: ParsedBody | None, header: str | None, query_string: str
) -> tuple[Named, ...] | Refusal:
    if body is None:
        return Refusal(Reason.MODEL_MISSING)
    if row.model == ep.BATCH_REQUESTS:
        found = jsonl.request_models(body)
    else:
        parts, ended = body
        if not ended:
            # A purpose after the cut would be the one the gateway reads (the last): nothing
            # about a cut upload can be decided.
            return Refusal(Reason.BODY_TRUNCATED)
        purpose = multipart.text_field(parts, "purpose")
        if isinstance(purpose, str) and _normalized(purpose) != "batch":
            return ()  # not a batch input: no model is named and no prompt is sent now
        if isinstance(purpose, Reason):
            return Refusal(purpose)
        if purpose is None:
            return Refusal(Reason.BODY_MALFORMED)
        files = [p for p in parts if p.name == "file"]
        if len(files) != 1:
            return Refusal(Reason.BODY_MALFORMED)
        found = jsonl.file_models(files[0].value())
    if isinstance(found, tuple):
        reason, item = found
        return Refusal(reason, item=item)
    query = _query_model(query_string) if query_string else None
    if isinstance(query, Refusal):
        return query
    for other in (header, query):  # every entry must be the model named elsewhere
        if other is None:
            continue
        for model, item in found:
            if model != other:
                return Refusal(Reason.MODEL_MISMATCH, model=other, item=item)
    return tuple(found)


def _query_model(query: str, name: str = "model") -> str | None | Refusal:
    """The one query parameter `name` (on any endpoint a gateway may read `model` there, so it
    must agree too); None when absent."""
    values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == name]
    if len(values) > 1:
        return Refusal(Reason.DUPLICATE_MODEL)
    return values[0] if values else None


def _no_batch(body: ParsedBody | None) -> tuple[Named, ...] | Refusal:
    if body is None:
        return ()
    purpose = jsonbody.lookup(body, "purpose")
    if purpose is jsonbody.AMBIGUOUS or isinstance(purpose, str) and _normalized(purpose) == "batch":
        return Refusal(Reason.BATCH_NOT_INSPECTABLE)
    return ()


def _normalized(purpose: str) -> str:
    """A purpose as a gateway compares it: any case, surrounding whitespace ignored."""
    return purpose.strip().lower()
