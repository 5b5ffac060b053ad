"""Coverage-guided fuzzing (atheris / libFuzzer) of the decision path, for runs of millions
of inputs: every byte string becomes a catalog, a policy and a CheckRequest, checked with the
same invariants as fuzz/fuzz_check.py.

    pip install atheris
    python fuzz/atheris_check.py -runs=1000000 -max_len=2048
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["authz"]):
    from authz.request import OWNED_PREFIX
    from envoy.service.auth.v3 import external_auth_pb2

    import fuzz_check
    from fuzz_check import ATTRS, MODELS, PROVIDERS, check_one

_MODEL_VALUES = [f"{p}/{m}" for p in PROVIDERS for m in MODELS] + MODELS + ["ghost/a", "P0/a", " a", "p0%2Fa", ""]
_TRI = (True, False, None)


def _subset(fdp, items: list[str]) -> list[str]:
    mask = fdp.ConsumeIntInRange(0, (1 << len(items)) - 1)
    return [x for i, x in enumerate(items) if mask >> i & 1]


def inputs(data: bytes):
    fdp = atheris.FuzzedDataProvider(data)
    providers = {}
    for pid in PROVIDERS:
        kind = fdp.ConsumeIntInRange(0, 2)
        if kind == 1:
            providers[pid] = None
        elif kind == 2:
            attrs = {a: _TRI[fdp.ConsumeIntInRange(0, 2)] for a in ATTRS}
            attrs["soc2_report"] = fdp.ConsumeIntInRange(0, 3)
            attrs["prompt_retention_days"] = (None, 0, 7)[fdp.ConsumeIntInRange(0, 2)]
            attrs["headquarters_country"] = ("", "US", "FR")[fdp.ConsumeIntInRange(0, 2)]
            providers[pid] = attrs
    if not providers:
        providers["p0"] = None
    ids = sorted(providers)
    models = {m: _subset(fdp, ids) for m in MODELS}
    models = {m: ps for m, ps in models.items() if ps} or {"a": ids[:1]}
    p = {
        "enabled": fdp.ConsumeBool(), "mode": fdp.ConsumeIntInRange(0, 2),
        "require_soc2": fdp.ConsumeBool(), "require_iso27001": fdp.ConsumeBool(),
        "certifications": fdp.ConsumeIntInRange(0, 2), "require_gdpr": fdp.ConsumeBool(),
        "require_no_prompt_training": fdp.ConsumeBool(), "require_no_prompt_logging": fdp.ConsumeBool(),
        "require_soc2_type2": fdp.ConsumeBool(), "require_zero_data_retention": fdp.ConsumeBool(),
        "allowed_countries": _subset(fdp, ["US", "DE"]),
        "provider_allowlist": _subset(fdp, PROVIDERS), "provider_denylist": _subset(fdp, PROVIDERS),
        "model_allowlist": _subset(fdp, MODELS), "model_denylist": _subset(fdp, MODELS),
    }
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    headers = {"authorization": "Bearer k"}
    if fdp.ConsumeBool():
        headers["x-model"] = fdp.PickValueInList(_MODEL_VALUES)
    if fdp.ConsumeIntInRange(0, 3) == 0:
        headers["x-provider"] = fdp.PickValueInList(PROVIDERS + ["ghost"])
    if fdp.ConsumeBool():
        headers["x-envoy-auth-partial-body"] = fdp.PickValueInList(["true", "false"])
    for name in _subset(fdp, ["allowed-providers", "org", "decision-id"]):
        headers[OWNED_PREFIX + name] = "p0"
    style = fdp.ConsumeIntInRange(0, 3)
    if style == 0:
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512))
    else:
        document = {"model": fdp.PickValueInList(_MODEL_VALUES), "messages": []}
        text = json.dumps(document)
        if style == 2:
            text = text[:-1] + ', "model": ' + json.dumps(fdp.PickValueInList(_MODEL_VALUES)) + "}"
        body = text.encode()
        if style == 3:
            body = body[: fdp.ConsumeIntInRange(0, len(body))]
    http.raw_body = body
    http.size = len(body) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(-1, 600)
    if fdp.ConsumeBool():
        headers["content-length"] = str(fdp.ConsumeIntInRange(0, 600))
    for k, v in headers.items():
        http.headers[k] = v
    return (providers, models), p, req


def test_one_input(data: bytes) -> None:
    check_one(*inputs(data))


if __name__ == "__main__":
    sys.path.insert(0, fuzz_check.__file__.rsplit("/", 1)[0])
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
