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
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import generated  # noqa: E402
from oracle import oracle_compliant, oracle_model_allowed  # noqa: E402

from authz.decision import OrgPolicy, decide  # noqa: E402
from authz.policy import rules_of  # noqa: E402
from authz.reasons import OUTCOMES, Reason  # noqa: E402
from authz.request import OWNED_PREFIX, ReadConfig, read  # noqa: E402
from authz.response import build  # noqa: E402
from authz.v1 import policy_pb2  # noqa: E402
from envoy.service.auth.v3 import external_auth_pb2  # noqa: E402

PROVIDERS = [f"p{i}" for i in range(5)]
MODELS = ["a", "b", "org/c"]
ATTRS = generated.ATTRS
NAMES = ReadConfig(model="x-model", provider="x-provider", max_request_bytes=4096)

data_policies = generated.data_policies()
policies = generated.policies(PROVIDERS, MODELS)


@st.composite
def catalogs(draw):
    providers = draw(st.dictionaries(st.sampled_from(PROVIDERS), data_policies, min_size=1, max_size=5))
    ids = sorted(providers)
    models = draw(st.dictionaries(st.sampled_from(MODELS), st.lists(st.sampled_from(ids), min_size=1, max_size=4,
                                                                     unique=True), min_size=1, max_size=3))
    return providers, models


def model_values():
    known = [f"{p}/{m}" for p in PROVIDERS for m in MODELS] + MODELS
    return st.one_of(st.sampled_from(known), st.text(max_size=30),
                     st.sampled_from(known).map(lambda m: m.upper()),
                     st.sampled_from(known).map(lambda m: f" {m}"),
                     st.sampled_from(known).map(lambda m: m.replace("/", "%2F")))


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


@st.composite
def check_requests(draw) -> external_auth_pb2.CheckRequest:
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    body = draw(bodies())
    http.raw_body = body
    http.size = draw(st.sampled_from([len(body), -1, len(body) + 1, 0]))
    headers = {"authorization": "Bearer k"}
    if draw(st.booleans()):
        headers["x-model"] = draw(model_values())
    if draw(st.integers(0, 4)) == 0:
        headers["x-provider"] = draw(st.sampled_from(PROVIDERS + ["ghost", ""]))
    if draw(st.booleans()):
        headers["content-length"] = draw(st.sampled_from([str(len(body)), str(len(body) + 5), "0", "x"]))
    if draw(st.booleans()):
        headers["x-envoy-auth-partial-body"] = draw(st.sampled_from(["true", "false"]))
    if draw(st.integers(0, 5)) == 0:
        headers["content-encoding"] = draw(st.sampled_from(["gzip", "identity", "br"]))
    for name in draw(st.lists(st.sampled_from(["allowed-providers", "org", "policy-version", "decision-id", "x"]),
                              max_size=3, unique=True)):
        headers[OWNED_PREFIX + name] = draw(st.sampled_from(PROVIDERS + ["*", ""]))
    for k, v in headers.items():
        http.headers[k] = v
    return req


def check_one(cat, p: dict, request: external_auth_pb2.CheckRequest) -> None:
    providers, models = cat
    index = generated.catalog_index(providers, models)
    policy = policy_pb2.CompliancePolicy(**p)
    org = OrgPolicy("org", "enterprise", 1, rules_of(policy), policy.enabled, policy.mode != 2)
    facts = read(request, NAMES)
    verdict = decide(facts, org, index)
    response = build(verdict, "decision", facts.request_id, facts.owned_headers)
    sent = {k for k in request.attributes.request.http.headers if k.startswith(OWNED_PREFIX)}

    if response.HasField("ok_response"):
        assert verdict.allowed
        set_by_us = {h.header.key: h.header.value for h in response.ok_response.headers}
        removed = set(response.ok_response.headers_to_remove)
        assert sent <= (set(set_by_us) | removed), "a client x-compliance-* header would reach the gateway"
        if verdict.restricts_routing:
            assert p["enabled"] and p["mode"] != 2
            model_id = verdict.model.partition("/")[2] if verdict.routing == "pinned" and "/" in verdict.model \
                and verdict.model.partition("/")[0] == verdict.provider else verdict.model
            assert oracle_model_allowed(model_id, p)
            allowed = set_by_us["x-compliance-allowed-providers"].split(",")
            assert allowed == list(verdict.allowed_providers) and allowed
            for provider in allowed:
                assert oracle_compliant(providers[provider], p, provider), (provider, p)
                assert provider in models[model_id]
    else:
        assert not verdict.allowed and OUTCOMES[verdict.reason].http_status != 200
        body = json.loads(response.denied_response.body)
        assert body["error"]["code"] == verdict.reason.value
    if not p["enabled"]:
        assert verdict.reason is Reason.NO_POLICY


def run(examples: int, seed: int | None = None) -> float:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
              suppress_health_check=list(HealthCheck))
    @given(cat=catalogs(), p=policies, request=check_requests())
    def fuzz(cat, p, request):
        check_one(cat, p, request)

    started = time.monotonic()
    fuzz()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=1, help="independent runs (hypothesis caps a run's size)")
    args = parser.parse_args()
    total_s = 0.0
    for batch in range(args.batches):
        total_s += run(args.examples)
        print(f"batch {batch + 1}/{args.batches}: {args.examples} inputs, no failure ({total_s:.0f} s so far)",
              flush=True)
    n = args.examples * args.batches
    print(f"ok: {n} generated inputs, every invariant held, {n / total_s:.0f} inputs/s")


if __name__ == "__main__":
    main()
