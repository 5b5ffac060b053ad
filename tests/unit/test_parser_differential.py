"""Differential: our body readers against the parsers of the gateways behind us. Multipart:
Starlette's MultiPartParser over python-multipart (the versions LiteLLM's proxy installs);
JSON: Python's json (LiteLLM) and Node's JSON.parse (LLMGateway, through Hono). On adversarial
bodies our reader must either refuse, or read exactly what the gateway will: a body we accept
but read differently would let a request be judged on one model and served another."""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser

from authz.check.parsing import multipart
from authz.reasons import Reason
from support.generated import assert_reached

# Starlette leaves a file part's spooled temporary file to the collector when it refuses a body
# midway: its leak, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
BOUNDARY = "b0undary"
# Bounded in `make test`; `make fuzz` runs it with DIFFERENTIAL_EXAMPLES=20000.
EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "400"))
WANTED = frozenset({"model", "purpose", "file"})


def starlette_fields(body: bytes) -> dict[str, list[str]] | None:
    """The text fields as Starlette's request.form() reads them; None when it refuses the body."""

    async def stream():
        yield body

    async def read() -> dict[str, list[str]]:
        form = await MultiPartParser(headers, stream()).parse()
        try:
            found: dict[str, list[str]] = {}
            for key, value in form.multi_items():
                found.setdefault(key, []).append(value if isinstance(value, str) else "<file>")
            return found
        finally:
            await form.close()

    headers = Headers({"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    try:
        return asyncio.run(read())
    except (MultiPartException, ValueError, UnicodeDecodeError):
        return None


NAMES = st.sampled_from(["model", "purpose", "x", "Model", "model ", "mod\\el"])
VALUES = st.sampled_from(["gpt-4o", "deepseek/deepseek-v3.2", "batch", "", "a\r\nb", "é"])


@st.composite
def dispositions(draw) -> bytes:
    name = draw(NAMES)
    quoted = draw(st.sampled_from(["quoted", "bare", "open-quote", "star", "twice"]))
    if quoted == "quoted":
        text = f'form-data; name="{name}"'
    elif quoted == "bare":
        text = f"form-data; name={name}"
    elif quoted == "open-quote":
        text = f'form-data; name="{name}"; x="'
    elif quoted == "star":
        text = f"form-data; name*=UTF-8''{name}"
    else:
        text = f'form-data; name="{name}"; name="{draw(NAMES)}"'
    if draw(st.booleans()):
        text += '; filename="f.txt"'
    return text.encode()


@st.composite
def parts(draw) -> bytes:
    headers = [b"Content-Disposition: " + draw(dispositions())]
    extra = draw(st.sampled_from(["", "", "repeat", "type", "encoding", "lower"]))
    if extra == "repeat":
        headers.append(b"Content-Disposition: " + draw(dispositions()))
    elif extra == "type":
        headers.append(b"Content-Type: text/plain; charset=latin-1")
    elif extra == "encoding":
        headers.append(
            b"Content-Transfer-Encoding: " + draw(st.sampled_from([b"base64", b"quoted-printable", b"8bit"]))
        )
    elif extra == "lower":
        headers[0] = headers[0].replace(b"Content-Disposition", b"content-disposition")
    value = draw(VALUES).encode()
    return b"--" + BOUNDARY.encode() + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + value + b"\r\n"


@st.composite
def bodies(draw) -> bytes:
    body = b"".join(draw(st.lists(parts(), min_size=1, max_size=4)))
    ending = draw(st.sampled_from(["close", "close", "none", "garbage"]))
    if ending == "close":
        body += b"--" + BOUNDARY.encode() + b"--\r\n"
    elif ending == "garbage":
        body += b"--" + BOUNDARY.encode() + b"--\r\ntrailing"
    return body


SEEN: Counter[str] = Counter()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(bodies())
def test_property_our_reader_refuses_or_reads_the_fields_starlette_reads(body):
    ours = multipart.parts(body, BOUNDARY.encode(), WANTED)
    theirs = starlette_fields(body)
    if isinstance(ours, Reason):
        SEEN["refused"] += 1
        return
    found, ended = ours
    if not ended:
        SEEN["unended"] += 1  # decided on nothing: a row needing a field refuses a body that did not end
        return
    for name in ("model", "purpose"):
        value = multipart.text_field(found, name)
        if isinstance(value, Reason):
            SEEN["field refused"] += 1
            continue
        assert theirs is not None, f"Starlette refuses a body our reader accepts: {body!r}"
        expected = theirs.get(name, [])
        # The gateway reads the last value of a field; we accept only a single one, so there must be one.
        assert (expected == [value]) if value is not None else expected in ([], ["<file>"] * len(expected)), (
            body,
            value,
            theirs,
        )
        SEEN["agreed" if value is not None else "absent"] += 1


def test_the_differential_run_reached_every_outcome():
    assert_reached(SEEN, ["refused", "agreed", "absent", "field refused"], of="multipart differential")


# --- JSON: our reader against Python's json (LiteLLM's proxy decodes bodies with json/orjson) ----

KEYS = st.sampled_from(['"model"', '"MODEL"', '"Model"', '"mo\\u0064el"', '"model "', '"messages"'])
JSON_VALUES = st.sampled_from(['"gpt-4o"', '"deepseek/deepseek-v3.2"', '"\\u0067pt-4o"', "1", "null", "[]", '""'])


@st.composite
def json_bodies(draw) -> bytes:
    pairs = [f"{draw(KEYS)}: {draw(JSON_VALUES)}" for _ in range(draw(st.integers(1, 4)))]
    text = "{" + ", ".join(pairs) + "}"
    prefix = draw(st.sampled_from(["", "", " \n", "\ufeff"]))
    depth = draw(st.sampled_from([0, 0, 3, 2000]))
    if depth:
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return (prefix + text).encode()


JSON_SEEN: Counter[str] = Counter()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(json_bodies())
def test_property_our_json_reading_refuses_or_names_the_model_python_json_reads(body):
    from authz.check import parsing
    from authz.check.request import ReadConfig, read
    from support.checkrequests import check_request

    result = parsing.requested(read(check_request(body), ReadConfig()))
    if isinstance(result, parsing.Refusal):
        JSON_SEEN["refused"] += 1
        return
    [(model, _)] = result
    import json

    decoded = json.loads(body)  # LiteLLM reads the body this way: ours may only accept what it reads alike
    assert isinstance(decoded, dict) and decoded.get("model") == model, (body, model)
    JSON_SEEN["agreed"] += 1


def test_the_json_differential_run_reached_every_outcome():
    assert_reached(JSON_SEEN, ["refused", "agreed"], of="JSON differential")


# --- JSON: our reader against Node's JSON.parse (LLMGateway reads bodies with Hono's c.req.json()) --

_NODE_ORACLE = r"""
const rl = require('readline').createInterface({input: process.stdin});
rl.on('line', (line) => {
  const text = Buffer.from(line, 'base64').toString('utf8');
  let out;
  try {
    const v = JSON.parse(text);
    out = (v && typeof v === 'object' && !Array.isArray(v)) ? {model: v.model} : {not: 1};
  }
  catch (e) { out = {error: 1}; }
  process.stdout.write(JSON.stringify(out) + '\n');
});
"""


class NodeJson:
    """One node process answering, per line of base64 body, what JSON.parse reads as "model"."""

    def __init__(self) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            ["node", "-e", _NODE_ORACLE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def model(self, body: bytes) -> dict:
        import base64
        import json

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(base64.b64encode(body).decode() + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def node_json():
    import shutil

    if shutil.which("node") is None:  # the machine has npm (CI installs the npm tools with it)
        pytest.fail("node is needed for the LLMGateway JSON oracle (it comes with npm)")
    oracle = NodeJson()
    yield oracle
    oracle.close()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(json_bodies())
def test_property_our_json_reading_agrees_with_node_json_parse(node_json, body):
    from authz.check import parsing
    from authz.check.request import ReadConfig, read
    from support.checkrequests import check_request

    result = parsing.requested(read(check_request(body), ReadConfig()))
    if isinstance(result, parsing.Refusal):
        return
    [(model, _)] = result
    assert node_json.model(body) == {"model": model}, (body, model)
