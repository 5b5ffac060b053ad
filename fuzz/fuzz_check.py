"""Fuzz the whole decision path: arbitrary CheckRequests (headers, spoofed headers, bodies
from valid JSON with tricky "model" values to random bytes) against random catalogs and
policies, through request.read -> decision.decide -> response.build.

Invariants checked on every input:
- nothing raises;
- allowed and enforced => every provider in the allow-list is compliant under the org's
  policy (tests/oracle.py, written independently) and the model passes the model lists;
- an OK response never lets a client-sent x-compliance-* header through unchanged;
- a denial carries a JSON error whose code is the reason.

    python fuzz/fuzz_check.py --examples 1000000     # the documented run
    (tests/test_fuzz.py runs a small one in `make test`)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from envoy.service.auth.v3 import external_auth_pb2  # noqa: E402

from authz.check import endpoints  # noqa: E402
from authz.check.decision import HEADER, STRICT, Gateway, decide  # noqa: E402
from authz.check.request import OWNED_PREFIX, ReadConfig, read  # noqa: E402
from authz.check.response import build  # noqa: E402
from authz.policy import requirements  # noqa: E402
from authz.policy.gateways import litellm as litellm_gateway  # noqa: E402
from authz.policy.orgs import OrgPolicy  # noqa: E402
from authz.policy.rules import rules_of  # noqa: E402
from authz.reasons import OUTCOMES, Reason  # noqa: E402
from authz.v1 import policy_pb2  # noqa: E402
from support import generated  # noqa: E402
from support.oracle import oracle_compliant, oracle_model_allowed  # noqa: E402

PROVIDERS = [f"p{i}" for i in range(5)]
MODELS = ["a", "b", "org/c"]
# The shipped endpoint table, with one Azure deployment mapped (dep-b) and one not (dep-x).
TABLE = endpoints.EndpointTable.of(list(endpoints.default_table().endpoints), {"dep-b": "b"})
NAMES = ReadConfig(model="x-model", provider="x-provider", max_request_bytes=4096, endpoints=TABLE)
BATCH_PATHS = ("/v1/files", "/v1/messages/batches")


def routing_extras(model: str) -> list[dict]:
    """Body fields that route under LiteLLM's contract (judged, or refused), and one that does not."""
    return [
        {"fallbacks": [model]},
        {"fallbacks": [{"model": model}]},
        {"context_window_fallbacks": [{"a": [model]}]},
        {"fallbacks": [{"model": model, "api_base": "http://x"}]},
        {"custom_llm_provider": "p1"},
        {"router_settings_override": {"fallbacks": [{"a": [model]}]}},
        {"fallbacks": model},
        {"tags": ["team-a"]},
    ]


def _fallback_models(value: object) -> list[str]:
    """The models of the fallback shapes routing_extras makes (the oracle's own reading)."""
    found: list[str] = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, str):
            found.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("model"), str):
            found.append(entry["model"])
        elif isinstance(entry, dict):
            found.extend(m for ms in entry.values() for m in ms)
    return found


data_policies = generated.data_policies()
policies = generated.policies(PROVIDERS, MODELS)


@st.composite
def catalogs(draw):
    # p0 and p1 are always there, so a request can pin one and name the other in x-provider.
    providers = {"p0": draw(data_policies), "p1": draw(data_policies)}
    providers.update(draw(st.dictionaries(st.sampled_from(PROVIDERS[2:]), data_policies, max_size=3)))
    ids = sorted(providers)
    models = draw(
        st.dictionaries(
            st.sampled_from(MODELS),
            st.lists(st.sampled_from(ids), min_size=1, max_size=4, unique=True),
            min_size=2,
            max_size=3,
        )
    )
    return providers, models


def model_values():
    known = [f"{p}/{m}" for p in PROVIDERS for m in MODELS] + MODELS
    return st.one_of(
        st.sampled_from(known),
        st.text(max_size=30),
        st.sampled_from(known).map(lambda m: m.upper()),
        st.sampled_from(known).map(lambda m: f" {m}"),
        st.sampled_from(known).map(lambda m: m.replace("/", "%2F")),
    )


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["json", "json", "dup", "bytes", "empty", "nested"]))
    if kind == "empty":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    model = draw(st.one_of(model_values(), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)))
    document = {"messages": [{"role": "user", "content": draw(st.text(max_size=40))}], "model": model}
    if kind == "nested":
        document["metadata"] = {"model": draw(model_values())}
    text = json.dumps(document, ensure_ascii=draw(st.booleans()))
    if kind == "dup":
        text = text[:-1] + ', "model": ' + json.dumps(draw(model_values())) + "}"
    raw = text.encode()
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]  # possibly cut
    return raw


# Header names under our prefix: the ones authz sets, and any other a client may invent.
OWNED_NAMES = st.one_of(
    st.sampled_from(["allowed-providers", "org", "policy-version", "decision-id"]),
    st.from_regex(r"[a-z0-9_-]{0,12}", fullmatch=True),
)


BOUNDARY = "fuzzbound"


def multipart(fields: list[tuple[str, bytes, str]], cut: int | None = None) -> bytes:
    """A multipart/form-data body; each field (name, value, extra header lines)."""
    out = b""
    for name, value, extra in fields:
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n').encode()
        out += value + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return out if cut is None else out[:cut]


@st.composite
def form_bodies(draw, batch: bool) -> bytes:
    fields: list[tuple[str, bytes, str]] = []
    if batch:
        fields.append(("purpose", draw(st.sampled_from([b"batch", b"batch", b"fine-tune", b"assistants"])), ""))
        lines = [
            json.dumps(
                {
                    "custom_id": f"r{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {"model": draw(model_values())},
                }
            )
            for i in range(draw(st.integers(1, 3)))
        ]
        if draw(st.booleans()):
            lines.insert(
                0,
                draw(
                    st.sampled_from(
                        [
                            "{not json",
                            '{"custom_id": "r9", "body": {}}',
                            "[1]",
                            '{"custom_id": "r8", "body": {"model": "a", "MODEL": "b"}}',
                        ]
                    )
                ),
            )
        fields.append(("file", "\n".join(lines).encode(), '; filename="in.jsonl"'))
    else:
        fields.append(("file", draw(st.binary(max_size=30)), '; filename="a.wav"'))
        for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2]))):
            value = draw(model_values())
            extra = draw(
                st.sampled_from(["", "", "", '; filename="m.txt"', "\r\nContent-Transfer-Encoding: quoted-printable"])
            )
            fields.append(("model", value.encode("utf-8", "surrogatepass"), extra))
    fields = draw(st.permutations(fields))
    raw = multipart(fields)
    if draw(st.sampled_from([False, False, False, True])):
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    return raw


ENDPOINT_SHAPES = [
    "chat",
    "chat",
    "chat",
    "form",
    "batch_file",
    "anthropic_batch",
    "azure",
    "path",
    "query",
    "uploads",
    "model_free",
    "uncovered",
]


@st.composite
def check_requests(draw) -> external_auth_pb2.CheckRequest:
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path = "POST", "/v1/chat/completions"
    headers = {"authorization": "Bearer k", "content-type": "application/json"}
    known = MODELS * 3 + [f"{p}/{m}" for p in PROVIDERS for m in MODELS]
    # Hypothesis leans towards the first choice of a sampled_from and towards the low end of a
    # range: the common case comes first, and each rare variant gets its share explicitly.
    shape = draw(st.sampled_from(ENDPOINT_SHAPES))
    if shape == "chat" and draw(st.sampled_from(["clean", "clean", "odd"])) == "clean":
        # Well-formed, as most clients send: a JSON body naming a known model, sizes that agree;
        # some carry fields a gateway routes by (judged under the litellm profile).
        extra = draw(st.sampled_from([{}] * 4 + routing_extras(draw(st.sampled_from(known)))))
        body = json.dumps({"model": draw(st.sampled_from(known)), "messages": []} | extra).encode()
    elif shape == "chat":
        body = draw(bodies())
    elif shape in ("form", "batch_file"):
        http.path = "/v1/audio/transcriptions" if shape == "form" else "/v1/files"
        headers["content-type"] = f"multipart/form-data; boundary={BOUNDARY}"
        body = draw(form_bodies(shape == "batch_file"))
    elif shape == "anthropic_batch":
        http.path = "/v1/messages/batches"
        requests = [
            {"custom_id": f"q{i}", "params": {"model": draw(st.one_of(st.sampled_from(known), model_values()))}}
            for i in range(draw(st.integers(0, 3)))
        ]
        body = json.dumps({"requests": requests}).encode()
    elif shape == "azure":
        http.path = f"/openai/deployments/{draw(st.sampled_from(['dep-x', 'dep-b']))}/chat/completions"
        model = draw(st.sampled_from([None, "dep-b", "b", "a"]))
        body = json.dumps({"messages": []} | ({"model": model} if model else {})).encode()
    elif shape == "path":
        http.path = f"/v1beta/models/{draw(st.sampled_from(known + ['a%2Fb', 'p0%2Fa']))}:generateContent"
        body = draw(st.sampled_from([b"", b'{"contents": []}', b'{"model": "a"}']))
    elif shape == "query":
        http.method = "GET"
        http.path = "/v1/realtime" + draw(
            st.sampled_from(["", "?model=a", "?model=p0/b", "?model=a&model=b", "?model=", "?model=p9/a"])
        )
        body = b""
    elif shape == "uploads":
        http.path = "/v1/uploads"
        body = json.dumps({"purpose": draw(st.sampled_from(["batch", "fine-tune", "Batch"])), "bytes": 1}).encode()
    elif shape == "model_free":
        http.method, http.path = draw(
            st.sampled_from([("GET", "/v1/models"), ("GET", "/v1/files/f1"), ("POST", "/v1/batches/b1/cancel")])
        )
        body = b""
    else:
        http.method = draw(st.sampled_from(["GET", "POST", "PUT"]))
        http.path = draw(
            st.sampled_from(
                [
                    "/v1/chat%2Fcompletions",
                    "/v1//chat/completions",
                    "/v2/chat",
                    "/v1/chat/completions/",
                    "/v1/./chat/completions",
                    "/v1/models",
                ]
            )
        )
        body = b'{"model": "a"}'
    http.size = len(body)
    if draw(st.sampled_from([True, True, False])):
        if draw(st.sampled_from([False] * 6 + [True])):
            headers["content-type"] = draw(
                st.sampled_from(
                    [
                        "text/plain",
                        "application/x-www-form-urlencoded",
                        "application/json; charset=latin-1",
                        "application/vnd.api+json",
                        "multipart/form-data",
                        "",
                    ]
                )
            )
    else:
        http.size = draw(st.sampled_from([len(body), -1, len(body) + 1, 0]))
        header_model = draw(st.sampled_from(["none", "conflict", "none", "any"]))
        if header_model == "any":
            headers["x-model"] = draw(model_values())
        elif header_model == "conflict":  # pinned by the model to one provider, by the header to another
            first, second = draw(st.permutations(["p0", "p1"]))
            headers["x-model"] = f"{first}/a"
            headers["x-provider"] = second
        provider = draw(st.sampled_from([None, None, None, *PROVIDERS, "ghost", ""]))
        if provider is not None and "x-provider" not in headers:
            headers["x-provider"] = provider
        if draw(st.booleans()):
            headers["content-length"] = draw(st.sampled_from([str(len(body)), str(len(body) + 5), "0", "x"]))
        partial = draw(st.sampled_from([None, None, None, "true", "false"]))
        if partial is not None:
            headers["x-envoy-auth-partial-body"] = partial
        require = draw(st.sampled_from([None] * 4 + ["no_prompt_training", "gdpr,zero_data_retention", "bogus"]))
        if require is not None:
            headers["x-compliance-require"] = require
        if draw(st.sampled_from([False] * 9 + [True])):
            headers["upgrade"] = "websocket"  # on these rows (no websocket endpoint): refused
        encoding = draw(st.sampled_from([None] * 6 + ["gzip", "identity", "br"]))
        if encoding is not None:
            headers["content-encoding"] = encoding
    http.raw_body = body
    for name in draw(st.lists(OWNED_NAMES, max_size=3, unique=True)):
        headers[OWNED_PREFIX + name] = draw(st.sampled_from(PROVIDERS + ["*", ""]))
    for k, v in headers.items():
        http.headers[k] = v
    return req


# What a run must reach: every reason a CheckRequest can produce once the org and the state are
# known (the org, key and state reasons belong to the Check handler, not to this pipeline).
REACHABLE = tuple(
    r.value
    for r in Reason
    if r
    not in (
        Reason.ORG_MISSING,
        Reason.ORG_MALFORMED,
        Reason.API_KEY_UNKNOWN,
        Reason.TOO_MANY_UNKNOWN_KEYS,
        Reason.INSPECTION_BUDGET_EXCEEDED,
        Reason.STATE_UNAVAILABLE,
        Reason.STATE_STALE,
        Reason.CATALOG_NOT_LOADED,
        Reason.CREDENTIAL_CONFLICT,
    )
)


def check_one(
    cat, p: dict, request: external_auth_pb2.CheckRequest, routing: str = HEADER, naming: str = "native"
) -> str:
    """Check every invariant on one input; returns the outcome class (the reason)."""
    providers, models = cat
    index = generated.catalog_index(providers, models)
    policy = policy_pb2.CompliancePolicy(**p)
    org = OrgPolicy("org", 1, rules_of(policy), policy.enabled, policy.mode != 2)
    # A client's own requirements (x-compliance-require) tighten the org's policy, and are
    # enforced even without one: the oracle judges against the policy they make.
    require = request.attributes.request.http.headers.get("x-compliance-require")
    flags = {r.name: r.policy_field for r in requirements.FLAGGED}
    if require is not None and all(n in flags for n in require.split(",")):
        if not p["enabled"]:  # a disabled policy contributes nothing: only the client's own
            p = {k: type(v)() for k, v in p.items()}
        p = {**p, "enabled": True, "mode": 1, **{flags[n]: True for n in require.split(",")}}
    facts = read(request, NAMES)
    gateway = Gateway(routing=routing, naming=naming)
    verdict = decide(facts, org, index, gateway)
    try:
        document = json.loads(request.attributes.request.http.raw_body)
    except ValueError:
        document = None
    document = document if isinstance(document, dict) else {}
    fallbacks = [m for f in litellm_gateway.FALLBACKS for m in _fallback_models(document.get(f))]
    fallbacks = fallbacks if naming == "litellm" else []
    response = build(verdict, "decision", facts.request_id, facts.owned_headers)
    sent = {k for k in request.attributes.request.http.headers if k.startswith(OWNED_PREFIX)}

    if response.HasField("ok_response"):
        assert verdict.allowed
        set_by_us = {h.header.key: h.header.value for h in response.ok_response.headers}
        removed = set(response.ok_response.headers_to_remove)
        assert sent <= (set(set_by_us) | removed), "a client x-compliance-* header would reach the gateway"
        if verdict.restricts_routing:
            assert p["enabled"] and p["mode"] != 2
            model_id = (
                verdict.model.partition("/")[2]
                if verdict.routing == "pinned"
                and "/" in verdict.model
                and verdict.model.partition("/")[0] == verdict.provider
                else verdict.model
            )
            assert oracle_model_allowed(model_id, p)
            allowed = set_by_us["x-compliance-allowed-providers"].split(",")
            assert allowed == list(verdict.allowed_providers) and allowed
            batch = request.attributes.request.http.path in BATCH_PATHS or bool(fallbacks)
            if naming == "litellm" and verdict.reason is Reason.COMPLIANT and document:
                # Under LiteLLM's contract nothing that routes passes unjudged...
                inert = gateway.contract.inert_fields or frozenset()
                assert set(document) <= inert | set(litellm_gateway.FALLBACKS), document
                for named in fallbacks:  # ...and every fallback is a model whose providers comply
                    provider, slash, model = named.partition("/")
                    serving = [provider] if slash and provider in providers else models.get(named, [])
                    assert serving, named
                    if routing == STRICT or slash:
                        assert all(oracle_compliant(providers[q], p, q) for q in serving), (named, p)
            for provider in allowed:
                assert oracle_compliant(providers[provider], p, provider), (provider, p)
                assert provider in (set().union(*models.values()) if batch else models[model_id])
            if routing == STRICT and verdict.routing == "automatic" and not batch:
                # Strict: the gateway may pick any provider serving the model, so all must comply.
                assert all(oracle_compliant(providers[q], p, q) for q in models[model_id]), (model_id, p)

    else:
        assert not verdict.allowed and OUTCOMES[verdict.reason].http_status != 200
        body = json.loads(response.denied_response.body)
        assert body["error"]["code"] == verdict.reason.value
    for name in verdict.alternatives:  # every suggestion is a compliant, served, allowed pin
        provider, _, suggested = name.partition("/")
        assert provider in models.get(suggested, ()) and oracle_compliant(providers[provider], p, provider), name
        assert oracle_model_allowed(suggested, p)
    if not p["enabled"]:
        assert verdict.reason in (Reason.NO_POLICY, Reason.UNKNOWN_REQUIREMENT)
    return verdict.reason.value


def run(examples: int, seed: int | None = None, seen: Counter | None = None) -> float:
    """`seed` set: a reproducible run (as in `make test`). `seen` collects outcome classes."""
    seen = Counter() if seen is None else seen

    # No deadline: a fuzz run measures correctness, and a loaded CI machine must not fail it.
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        cat=catalogs(),
        p=policies,
        request=check_requests(),
        routing=st.sampled_from([HEADER, STRICT]),
        naming=st.sampled_from(["native", "litellm"]),
    )
    def fuzz(cat, p, request, routing, naming):
        seen[check_one(cat, p, request, routing, naming)] += 1

    if seed is not None:
        fuzz = hypothesis_seed(seed)(fuzz)
    started = time.monotonic()
    fuzz()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=1, help="independent runs (hypothesis caps a run's size)")
    args = parser.parse_args()
    total_s = 0.0
    seen: Counter = Counter()
    for batch in range(args.batches):
        total_s += run(args.examples, seen=seen)
        print(
            f"batch {batch + 1}/{args.batches}: {args.examples} inputs, no failure ({total_s:.0f} s so far)", flush=True
        )
    n = args.examples * args.batches
    print(f"ok: {n} generated inputs, every invariant held, {n / total_s:.0f} inputs/s")
    print("outcomes: " + ", ".join(f"{k} {v / n:.1%}" for k, v in seen.most_common()))
    missing = [r for r in REACHABLE if not seen[r]]
    if missing:
        sys.exit(f"never reached: {missing}")


if __name__ == "__main__":
    main()
