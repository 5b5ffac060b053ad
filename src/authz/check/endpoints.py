"""The endpoint table: which gateway endpoint a request calls, and where it names its model.

A gateway serves far more than chat completions, and each endpoint carries the model in its
own place (a JSON field, a form field, the path, the query, a batch file) or nowhere at all.
The table is data (endpoints.toml, shipped; an operator's file adds rows and the Azure
deployment map), loaded and checked once at start, so the Check path only matches.

Paths are matched as the gateway routes them: split on "/", each segment percent-decoded.
Empty, "." and ".." segments match nothing (a gateway or Envoy would normalize them into
another path), and so does a literal segment that only matches after decoding (%2F).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

BODY = "body"
FORM = "form"
QUERY = "query"
PATH = "path"
DEPLOYMENT = "deployment"
BATCH_FILE = "batch_file"
BATCH_REQUESTS = "batch_requests"
NO_BATCH = "no_batch"
NONE = "none"

JSON, MULTIPART = "json", "multipart"
_BODY_OF = {
    BODY: JSON,
    FORM: MULTIPART,
    QUERY: NONE,
    PATH: JSON,
    DEPLOYMENT: JSON,
    BATCH_FILE: MULTIPART,
    BATCH_REQUESTS: JSON,
    NO_BATCH: JSON,
    NONE: NONE,
}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
# A path template's segment: a literal, or a variable's name and the pattern of its segment.
Segment = str | tuple[str, re.Pattern[str]]
Variables = tuple[tuple[str, str], ...]  # a matched path's (variable, decoded value)
_VARIABLE = re.compile(r"\{([a-z_]+)\}")


class EndpointError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Endpoint:
    methods: frozenset[str]
    path: str  # the template, as written (names the row in errors and docs)
    model: str  # where the model is (BODY, FORM, ...)
    body: str  # how the body is read (JSON, MULTIPART, NONE)
    field: str = "model"
    segments: tuple[Segment, ...] = ()
    upgrade: bool = False  # a websocket endpoint: the only rows an Upgrade request may call

    @property
    def model_free(self) -> bool:
        return self.model == NONE


@dataclass(frozen=True, slots=True)
class Match:
    endpoint: Endpoint
    variables: Variables = ()
    deployments: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def variable(self, name: str) -> str | None:
        return next((v for k, v in self.variables if k == name), None)


@dataclass(frozen=True, slots=True)
class EndpointTable:
    endpoints: tuple[Endpoint, ...]
    deployments: dict[str, str] = field(default_factory=dict)
    _exact: dict[tuple[str, str], Endpoint] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, endpoints: list[Endpoint], deployments: dict[str, str]) -> EndpointTable:
        # Literal rows answer from a dict, unless an earlier templated row also matches them
        # (earlier rows win, and the dict must not change which row that is).
        exact: dict[tuple[str, str], Endpoint] = {}
        for i, endpoint in enumerate(endpoints):
            if not all(isinstance(s, str) for s in endpoint.segments):
                continue
            segments = split_path(endpoint.path) or []  # a shipped literal path always splits
            for method in endpoint.methods:
                shadowed = any(
                    method in earlier.methods
                    and len(earlier.segments) == len(segments)
                    and _match_segments(earlier.segments, segments) is not None
                    for earlier in endpoints[:i]
                )
                if not shadowed:
                    exact.setdefault((method, endpoint.path), endpoint)
        return cls(tuple(endpoints), dict(deployments), exact)

    def match(self, method: str, raw_path: str) -> Match | None:
        """The first row matching the request, or None. Literal paths are one dict lookup."""
        found = self._exact.get((method, raw_path))
        if found is not None and "%" not in raw_path:
            return Match(found, (), self.deployments)
        segments = split_path(raw_path)
        if segments is None:
            return None
        for endpoint in self.endpoints:
            if method not in endpoint.methods or len(endpoint.segments) != len(segments):
                continue
            variables = _match_segments(endpoint.segments, segments)
            if variables is not None:
                return Match(endpoint, variables, self.deployments)
        return None


def split_path(raw_path: str) -> list[tuple[str, str]] | None:
    """(raw, decoded) per segment; None for a path a gateway would not route as written."""
    if not raw_path.startswith("/"):
        return None
    parts = raw_path[1:].split("/")
    out = []
    for raw in parts:
        try:
            decoded = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return None
        if raw in ("", ".", "..") or decoded in ("", ".", ".."):
            return None
        out.append((raw, decoded))
    return out


def _match_segments(template: tuple[Segment, ...], segments: list[tuple[str, str]]) -> Variables | None:
    variables = []
    for want, (raw, decoded) in zip(template, segments, strict=False):
        if isinstance(want, str):
            if raw != want:  # "%2F" or "%76" spelling a literal: not what the row names
                return None
            continue
        name, pattern = want
        found = pattern.fullmatch(decoded)
        if found is None:
            return None
        variables.append((name, found.group(1)))
    return tuple(variables)


def _compile(path: str, where: str) -> tuple[Segment, ...]:
    if not path.startswith("/") or "//" in path or path.endswith("/") and path != "/":
        raise EndpointError(f"{where}: path {path!r} must start with '/' and have no empty segments")
    compiled: list[Segment] = []
    for segment in path[1:].split("/"):
        names = _VARIABLE.findall(segment)
        if not names:
            if "{" in segment or "}" in segment or unquote(segment) != segment:
                raise EndpointError(f"{where}: segment {segment!r} of {path!r} is neither literal nor {{name}}")
            compiled.append(segment)
            continue
        if len(names) > 1 or not segment.startswith("{"):
            raise EndpointError(f"{where}: segment {segment!r} of {path!r}: one variable, at its start")
        suffix = segment[len(names[0]) + 2 :]
        compiled.append((names[0], re.compile("(.+?)" + re.escape(suffix), re.DOTALL)))
    return tuple(compiled)


def _endpoint(row: dict[str, Any], where: str) -> Endpoint:
    unknown = set(row) - {"method", "path", "model", "body", "field", "upgrade"}
    if unknown:
        raise EndpointError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    methods = row.get("method")
    methods = [methods] if isinstance(methods, str) else methods
    if not methods or not all(isinstance(m, str) and m in _METHODS for m in methods):
        raise EndpointError(f"{where}: method must be one of {', '.join(sorted(_METHODS))} (or a list of them)")
    path, model = row.get("path"), row.get("model")
    if not isinstance(path, str):
        raise EndpointError(f"{where}: path is required")
    if model not in _BODY_OF:
        raise EndpointError(f"{where}: model = {model!r}: must be one of {', '.join(_BODY_OF)}")
    body = row.get("body", _BODY_OF[model])
    if body not in (JSON, MULTIPART, NONE):
        raise EndpointError(f"{where}: body = {body!r}: must be json, multipart or none")
    segments = _compile(path, where)
    variables = {s[0] for s in segments if not isinstance(s, str)}
    needs = {PATH: "model", DEPLOYMENT: "deployment"}.get(model)
    if needs and needs not in variables:
        raise EndpointError(f"{where}: model = {model!r} needs a {{{needs}}} variable in the path")
    name = row.get("field", "model")
    if not isinstance(name, str) or not name or model not in (BODY, FORM, QUERY) and "field" in row:
        raise EndpointError(f"{where}: field is a non-empty name, for body, form and query rows")
    upgrade = row.get("upgrade", False)
    if not isinstance(upgrade, bool) or upgrade and methods != ["GET"]:
        raise EndpointError(f"{where}: upgrade = true or false; a websocket upgrade is a GET")
    return Endpoint(frozenset(methods), path, model, body, name, segments, upgrade)


def _rows(data: dict[str, Any], origin: str) -> tuple[list[Endpoint], dict[str, str]]:
    unknown = set(data) - {"endpoint", "deployments", "include_defaults"}
    if unknown:
        raise EndpointError(
            f"{origin}: unknown key(s) {', '.join(sorted(unknown))} (known: endpoint, deployments, include_defaults)"
        )
    rows = [_endpoint(row, f"{origin}: endpoint {i + 1}") for i, row in enumerate(data.get("endpoint", []))]
    deployments = data.get("deployments", {})
    if not all(isinstance(k, str) and isinstance(v, str) and v for k, v in deployments.items()):
        raise EndpointError(f"{origin}: [deployments] maps deployment names to model names (strings)")
    return rows, deployments


def shipped_text() -> str:
    return resources.files("authz.check").joinpath("endpoints.toml").read_text()


@functools.cache
def default_table() -> EndpointTable:
    return load()


def load(path: str | Path | None = None) -> EndpointTable:
    """The shipped table, with an operator's file's rows (matched first) and deployments."""
    rows, deployments = _rows(tomllib.loads(shipped_text()), "endpoints.toml (shipped)")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise EndpointError(f"endpoints file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise EndpointError(f"endpoints file {path} is not valid TOML: {exc}") from None
        own, own_deployments = _rows(data, str(path))
        include = data.get("include_defaults", True)
        if not isinstance(include, bool):
            raise EndpointError(f"{path}: include_defaults must be true or false")
        rows = own + (rows if include else [])
        deployments = {**deployments, **own_deployments}
    return EndpointTable.of(rows, deployments)
