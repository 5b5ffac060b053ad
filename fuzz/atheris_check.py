"""Coverage-guided fuzzing (atheris / libFuzzer) of the decision path, for runs of millions
of inputs: every byte string becomes a catalog, a policy and a CheckRequest, checked with the
same invariants as fuzz/fuzz_check.py.

    pip install atheris
    python fuzz/atheris_check.py -runs=1000000 -max_len=2048
"""

from __future__ import annotations

import json
import re
import sys

import atheris

with atheris.instrument_imports(include=["authz"]):
    import fuzz_check
    from envoy.service.auth.v3 import external_auth_pb2
    from fuzz_check import MODELS, PROVIDERS, check_one

    from authz.check.request import OWNED_PREFIX
    from support.generated import ATTRIBUTE_CHOICES, FLAGS, VALUE_FIELD_CHOICES

_MODEL_VALUES = [f"{p}/{m}" for p in PROVIDERS for m in MODELS] + MODELS + ["ghost/a", "P0/a", " a", "p0%2Fa", ""]
_TRI = (True, False, None)
_TOKEN = re.compile(r"[^a-z0-9_-]")


def _subset(fdp, items: list[str]) -> list[str]:
    mask = fdp.ConsumeIntInRange(0, (1 << len(items)) - 1)
    return [x for i, x in enumerate(items) if mask >> i & 1]


def _sometimes(fdp, one_in: int) -> bool:
    # The provider answers 0 once the input is used up: 0 must mean the common case.
    return fdp.ConsumeIntInRange(0, one_in - 1) == one_in - 1


def _rare_subset(fdp, items: list[str]) -> list[str]:
    """Usually empty: a list rule on every input would leave few allowed decisions to check."""
    return _subset(fdp, items) if _sometimes(fdp, 3) else []


def inputs(data: bytes):
    fdp = atheris.FuzzedDataProvider(data)
    providers = {}
    for pid in PROVIDERS:
        kind = fdp.ConsumeIntInRange(0, 4)
        if kind == 1:
            providers[pid] = None
        elif kind >= 2:
            # values weighted towards what satisfies a requirement (shared with the property
            # tests), so allowed decisions, the ones the safety invariant is about, are common
            attrs = {a: fdp.PickValueInList(choices) for a, choices in ATTRIBUTE_CHOICES.items()}
            providers[pid] = attrs
    if not providers:
        providers["p0"] = None
    ids = sorted(providers)
    models = {m: _subset(fdp, ids) for m in MODELS}
    models = {m: ps for m, ps in models.items() if ps} or {"a": ids[:1]}
    p = {
        "enabled": not _sometimes(fdp, 5),
        "mode": fdp.ConsumeIntInRange(0, 2),
        "certifications": fdp.ConsumeIntInRange(0, 2),
        **{flag: _sometimes(fdp, 4) for flag in FLAGS},
        **{name: _rare_subset(fdp, choices) for name, choices in VALUE_FIELD_CHOICES.items()},
        "provider_allowlist": _rare_subset(fdp, PROVIDERS),
        "provider_denylist": _rare_subset(fdp, PROVIDERS),
        "model_allowlist": _rare_subset(fdp, MODELS),
        "model_denylist": _rare_subset(fdp, MODELS),
    }
    req = external_auth_pb2.CheckRequest()
    http = req.attributes.request.http
    headers = {"authorization": "Bearer k"}
    if _sometimes(fdp, 4):
        headers["x-model"] = fdp.PickValueInList(_MODEL_VALUES)
    if _sometimes(fdp, 4):
        headers["x-provider"] = fdp.PickValueInList(PROVIDERS + ["ghost"])
    if _sometimes(fdp, 6):
        headers["x-envoy-auth-partial-body"] = fdp.PickValueInList(["true", "false"])
    if _sometimes(fdp, 8):
        headers["x-compliance-require"] = fdp.PickValueInList(["no_prompt_training", "zero_data_retention,gdpr", "x"])
    if _sometimes(fdp, 10):
        headers["content-encoding"] = fdp.PickValueInList(["gzip", "identity", "br"])
    if _sometimes(fdp, 12):
        headers["upgrade"] = "websocket"  # none of these rows is a websocket endpoint: refused
    for name in _subset(fdp, ["allowed-providers", "org", "decision-id"]):
        headers[OWNED_PREFIX + name] = "p0"
    for _ in range(fdp.ConsumeIntInRange(0, 2)):  # names authz never sets: they must be stripped too
        headers[OWNED_PREFIX + _TOKEN.sub("", fdp.ConsumeUnicodeNoSurrogates(10).lower())] = "p0"
    style = fdp.ConsumeIntInRange(0, 5)  # 3: raw bytes, 4: duplicate key, 5: cut, else clean JSON
    if style == 3:
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512))
    else:
        document = {"model": fdp.PickValueInList(_MODEL_VALUES), "messages": []}
        if _sometimes(fdp, 3):
            document |= fdp.PickValueInList(fuzz_check.routing_extras(fdp.PickValueInList(_MODEL_VALUES)))
        text = json.dumps(document)
        if style == 4:
            text = text[:-1] + ', "model": ' + json.dumps(fdp.PickValueInList(_MODEL_VALUES)) + "}"
        body = text.encode()
        if style == 5:
            body = body[: fdp.ConsumeIntInRange(0, len(body))]
    headers["content-type"] = "application/json"
    http.method, http.path = "POST", "/v1/chat/completions"
    shape = fdp.ConsumeIntInRange(0, 12)  # 0-4: chat; the rest: the other endpoint kinds
    model = fdp.PickValueInList(_MODEL_VALUES)
    if shape == 5:
        http.path = "/v1/audio/transcriptions"
        extra = fdp.PickValueInList(["", "", "\r\nContent-Transfer-Encoding: base64"])
        fields = [("file", b"RIFF", '; filename="a.wav"')] + [("model", model.encode(), extra)] * fdp.ConsumeIntInRange(
            0, 2
        )
        body = fuzz_check.multipart(fields, cut=fdp.ConsumeIntInRange(0, 400) if _sometimes(fdp, 4) else None)
    elif shape == 6:
        http.path = "/v1/files"
        line = json.dumps({"custom_id": "r1", "body": {"model": model}})
        purpose = fdp.PickValueInList([b"batch", b"fine-tune"])
        body = fuzz_check.multipart([("purpose", purpose, ""), ("file", line.encode(), '; filename="b.jsonl"')])
    elif shape == 7:
        http.path = "/v1/messages/batches"
        body = json.dumps({"requests": [{"custom_id": "q1", "params": {"model": model}}]}).encode()
    elif shape == 8:
        http.path = f"/openai/deployments/{fdp.PickValueInList(['dep-b', 'dep-x'])}/chat/completions"
    elif shape == 9:
        http.method, body = "GET", b""
        http.path = fdp.PickValueInList(
            [
                "/v1/models",
                "/v1/realtime?model=a",
                "/v1/realtime?model=p0/b",
                "/v1/realtime",
                "/v1/realtime?model=a&model=b",
            ]
        )
    elif shape == 10:
        http.path = f"/v1beta/models/{fdp.PickValueInList(['a', 'p0/b', 'p1%2Fa', 'c'])}:generateContent"
    elif shape == 11:
        http.path = fdp.PickValueInList(["/v1/uploads", "/v1/chat%2Fcompletions", "/v9/x"])
        body = json.dumps({"purpose": fdp.PickValueInList(["batch", "vision"])}).encode()
    elif shape == 12:
        headers["content-type"] = fdp.PickValueInList(
            ["text/plain", "application/json; charset=latin-1", "", "application/x-www-form-urlencoded"]
        )
    if shape in (5, 6):
        headers["content-type"] = f"multipart/form-data; boundary={fuzz_check.BOUNDARY}"
    http.raw_body = body
    http.size = fdp.ConsumeIntInRange(-1, 600) if _sometimes(fdp, 5) else len(body)
    if _sometimes(fdp, 5):
        headers["content-length"] = str(fdp.ConsumeIntInRange(0, 600))
    for k, v in headers.items():
        http.headers[k] = v
    return (
        (providers, models),
        p,
        req,
        fdp.PickValueInList(["header", "strict"]),
        fdp.PickValueInList(["native", "litellm"]),
    )


def test_one_input(data: bytes) -> None:
    check_one(*inputs(data))


if __name__ == "__main__":
    sys.path.insert(0, fuzz_check.__file__.rsplit("/", 1)[0])
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
