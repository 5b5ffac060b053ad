"""The endpoint table and the per-kind body parsers: rows match as a gateway routes, and a
body yields exactly the model a strict parser of its declared type reads, or a reason."""

from __future__ import annotations

import email.parser
import email.policy
import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.check import endpoints as ep
from authz.check import parsing
from authz.check.request import ReadConfig, read
from authz.reasons import Reason
from support.checkrequests import check_request

TABLE = ep.EndpointTable.of(list(ep.default_table().endpoints), {"prod": "azure/gpt-4o"})
NAMES = ReadConfig(endpoints=TABLE)
BOUNDARY = "b0undary"
FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def requested(
    body=b"", *, path="/v1/chat/completions", method="POST", headers=None, content_type="application/json", **kw
):
    facts = read(check_request(body, headers, path=path, method=method, content_type=content_type, **kw), NAMES)
    assert facts.endpoint is not None, path
    return parsing.requested(facts)


def reason(result) -> Reason | None:
    return result.reason if isinstance(result, parsing.Refusal) else None


def form(fields: list[tuple[str, bytes]], files: tuple[str, ...] = ()) -> bytes:
    out = b""
    for name, value in fields:
        filename = '; filename="f.bin"' if name in files else ""
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'.encode()
        out += value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


# --- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "where", "variables"),
    [
        ("POST", "/v1/chat/completions", ep.BODY, ()),
        ("GET", "/v1/models", ep.NONE, ()),
        ("GET", "/v1/models/gpt-4o", ep.NONE, (("model", "gpt-4o"),)),
        ("POST", "/v1beta/models/gemini-2.5-pro:generateContent", ep.PATH, (("model", "gemini-2.5-pro"),)),
        ("POST", "/v1beta/models/a%3Ab:streamGenerateContent", ep.PATH, (("model", "a:b"),)),
        ("POST", "/model/us.anthropic.claude%2Fv1:0/converse", ep.PATH, (("model", "us.anthropic.claude/v1:0"),)),
        ("POST", "/openai/deployments/prod/chat/completions", ep.DEPLOYMENT, (("deployment", "prod"),)),
        ("POST", "/v1/files", ep.BATCH_FILE, ()),
        ("GET", "/v1/realtime", ep.QUERY, ()),
    ],
)
def test_rows_match_as_the_gateway_routes(method, path, where, variables):
    match = TABLE.match(method, path)
    assert match is not None and match.endpoint.model == where and match.variables == variables


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/chat/completions"),
        ("POST", "/v1/chat%2Fcompletions"),
        ("POST", "/v1/chat/completions/"),
        ("POST", "/v1//chat/completions"),
        ("POST", "/v1/./chat/completions"),
        ("POST", "/v1/x/../chat/completions"),
        ("POST", "/v1/ch%61t/completions"),
        ("POST", "v1/chat/completions"),
        ("POST", "/v1/models/%2E%2E"),
        ("POST", "/v1beta/models/:generateContent"),
        ("POST", "/v1/models/%ff:generateContent"),
    ],
)
def test_paths_a_gateway_would_route_elsewhere_match_no_row(method, path):
    assert TABLE.match(method, path) is None


@pytest.mark.parametrize("segment", ["..", ".", "%2e%2e", "%2E%2e", "%2e", "%2E"])
@pytest.mark.parametrize(
    ("method", "template"),
    [("POST", "/v1/batches/{}/cancel"), ("GET", "/v1/batches/{}"), ("GET", "/v1/models/{}")],
)
def test_dot_segments_in_a_variable_position_match_no_row(segment, method, template):
    """A gateway (or Envoy's normalize_path) resolves them into another path: the row must not
    match what the gateway will route elsewhere (/v1/batches/%2e%2e/cancel is /v1/cancel)."""
    assert TABLE.match(method, template.format("b1")) is not None  # the row is there for an id
    assert TABLE.match(method, template.format(segment)) is None


def test_an_operator_row_comes_before_the_shipped_ones_even_for_a_literal_path(tmp_path):
    own = tmp_path / "endpoints.toml"
    own.write_text(
        '[[endpoint]]\nmethod = "GET"\npath = "/v1/{anything}"\nmodel = "query"\n[deployments]\n"d1" = "azure/gpt-4o"\n'
    )
    table = ep.load(own)
    assert table.match("GET", "/v1/models").endpoint.model == ep.QUERY  # not the shipped "none" row
    assert table.match("POST", "/v1/chat/completions").endpoint.model == ep.BODY
    assert table.deployments == {"d1": "azure/gpt-4o"}
    own.write_text("include_defaults = false\n")
    assert ep.load(own).match("POST", "/v1/chat/completions") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[endpoint]]\nmethod = "POST"\npath = "/x"\nmodel = "bodyy"\n', "must be one of"),
        ('[[endpoint]]\nmethod = "FETCH"\npath = "/x"\nmodel = "body"\n', "method must be one of"),
        ('[[endpoint]]\nmethod = "POST"\npath = "/x"\nmodel = "path"\n', "needs a {model} variable"),
        ('[[endpoint]]\nmethod = "POST"\npath = "/x//y"\nmodel = "none"\n', "no empty segments"),
        ('[[endpoint]]\nmethod = "POST"\npath = "/x"\nmodel = "none"\nfield = "m"\n', "field is a non-empty name"),
        ('[[endpoint]]\nmethod = "POST"\npath = "/x"\nmodel = "none"\ncolour = 1\n', "unknown key"),
        ('[deployments]\n"d" = 3\n', "maps deployment names"),
        ("endpoint = [", "not valid TOML"),
    ],
)
def test_a_bad_endpoints_file_is_refused_naming_the_problem(tmp_path, text, message):
    own = tmp_path / "endpoints.toml"
    own.write_text(text)
    with pytest.raises(ep.EndpointError, match=message):
        ep.load(own)


def test_every_shipped_row_is_reachable():
    """No shipped row is shadowed by an earlier one: each matches a request of its own."""
    for row in TABLE.endpoints:
        path = "/" + "/".join(
            s if isinstance(s, str) else "x" + s[1].pattern[5:].replace("\\", "") for s in row.segments
        )
        for method in row.methods:
            assert TABLE.match(method, path).endpoint is row, (method, row.path)


# --- where the model is ---------------------------------------------------------------------


def test_each_place_is_read_and_every_place_must_agree():
    assert requested({"model": "a"}) == (("a", ""),)
    assert reason(requested({"model": "a"}, headers={"x-model": "b"})) is Reason.MODEL_MISMATCH
    assert requested(b"", path="/v1/realtime?model=a%2Fb", method="GET") == (("a/b", ""),)
    assert reason(requested(b"", path="/v1/realtime?model=a&model=b", method="GET")) is Reason.DUPLICATE_MODEL
    assert reason(requested(b"", path="/v1/realtime", method="GET")) is Reason.MODEL_MISSING
    assert requested({"contents": []}, path="/v1beta/models/g1:generateContent") == (("g1", ""),)
    assert reason(requested({"model": "g2"}, path="/v1beta/models/g1:generateContent")) is Reason.MODEL_MISMATCH
    assert requested({"messages": []}, path="/openai/deployments/prod/chat/completions") == (("azure/gpt-4o", ""),)
    assert requested({"model": "prod"}, path="/openai/deployments/prod/chat/completions") == (("azure/gpt-4o", ""),)
    assert reason(requested({"model": "x"}, path="/openai/deployments/prod/chat/completions")) is Reason.MODEL_MISMATCH
    assert reason(requested({}, path="/openai/deployments/dev/chat/completions")) is Reason.UNKNOWN_DEPLOYMENT
    assert requested({"session": {"model": "r1"}}, path="/v1/realtime/client_secrets") == (("r1", ""),)
    assert (
        reason(requested({"session": {"model": "r1"}, "model": "r2"}, path="/v1/realtime/client_secrets"))
        is Reason.MODEL_MISMATCH
    )
    assert requested(b"", path="/v1/models", method="GET") == ()
    # A model in the query of any endpoint must agree too: a gateway may read it.
    assert requested({"model": "a"}, path="/v1/chat/completions?model=a") == (("a", ""),)
    assert reason(requested({"model": "a"}, path="/v1/chat/completions?model=b")) is Reason.MODEL_MISMATCH
    assert reason(requested({"model": "a"}, path="/v1/chat/completions?model=a&model=b")) is Reason.DUPLICATE_MODEL
    assert requested({"model": "a"}, path="/v1/chat/completions?api-version=1&models=b") == (("a", ""),)
    assert requested(b"", path="/v1/chat/completions?model=a", headers={"x-model": "a"}) == (("a", ""),)
    batch = {"requests": [{"custom_id": "x", "params": {"model": "a"}}]}
    assert reason(requested(batch, path="/v1/messages/batches?model=b")) is Reason.MODEL_MISMATCH


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/jsonx",
        "application/json; charset=latin-1",
        "application/+json",
        FORM_TYPE,
    ],
)
def test_a_json_row_reads_only_a_json_content_type(content_type):
    assert reason(requested({"model": "a"}, content_type=content_type or None)) is Reason.UNSUPPORTED_CONTENT_TYPE


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        'application/json; charset="UTF-8"',
        "APPLICATION/JSON",
        "application/vnd.api+json",
        "text/x.custom+json",
    ],
)
def test_json_content_types_that_are_json(content_type):
    assert requested({"model": "a"}, content_type=content_type) == (("a", ""),)


def test_a_form_row_reads_only_multipart_and_refuses_what_parsers_read_differently():
    audio = "/v1/audio/transcriptions"
    assert requested(form([("file", b"RIFF"), ("model", b"a")], ("file",)), path=audio, content_type=FORM_TYPE) == (
        ("a", ""),
    )
    assert reason(requested({"model": "a"}, path=audio)) is Reason.UNSUPPORTED_CONTENT_TYPE
    assert (
        reason(requested(form([("model", b"a"), ("model", b"b")]), path=audio, content_type=FORM_TYPE))
        is Reason.DUPLICATE_MODEL
    )
    assert (
        reason(requested(form([("model", b"a")], ("model",)), path=audio, content_type=FORM_TYPE))
        is Reason.MODEL_INVALID
    )
    quoted = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n'
        f"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n--{BOUNDARY}--\r\n"
    ).encode()
    assert reason(requested(quoted, path=audio, content_type=FORM_TYPE)) is Reason.BODY_MALFORMED
    cut = form([("model", b"a"), ("file", b"RIFF")], ("file",))[:-10]
    assert reason(requested(cut, path=audio, content_type=FORM_TYPE)) is Reason.BODY_TRUNCATED
    assert (
        reason(requested(form([("model", b"a")]), path=audio, content_type=FORM_TYPE, partial=True))
        is Reason.BODY_TRUNCATED
    )


def lines(*items) -> bytes:
    return b"\n".join(json.dumps(i).encode() if not isinstance(i, bytes) else i for i in items)


def test_a_batch_file_is_judged_line_by_line_and_other_uploads_are_model_free():
    files = "/v1/files"
    good = lines({"custom_id": "r1", "body": {"model": "a"}}, {"custom_id": "r2", "body": {"model": "b"}})
    upload = form([("purpose", b"batch"), ("file", good)], ("file",))
    assert requested(upload, path=files, content_type=FORM_TYPE) == (("a", "r1"), ("b", "r2"))
    missing = lines({"custom_id": "r1", "body": {"model": "a"}}, {"custom_id": "r2", "body": {}})
    result = requested(form([("purpose", b"batch"), ("file", missing)], ("file",)), path=files, content_type=FORM_TYPE)
    assert (result.reason, result.item) == (Reason.MODEL_MISSING, "r2")
    broken = lines({"custom_id": "r1", "body": {"model": "a"}}, b"{oops")
    result = requested(form([("file", broken), ("purpose", b"batch")], ("file",)), path=files, content_type=FORM_TYPE)
    assert (result.reason, result.item) == (Reason.BODY_NOT_JSON, "line 2")
    twice = lines({"custom_id": "r1", "body": {"model": "a", "MODEL": "b"}})
    result = requested(form([("purpose", b"batch"), ("file", twice)], ("file",)), path=files, content_type=FORM_TYPE)
    assert result.reason is Reason.DUPLICATE_MODEL
    other = form([("purpose", b"fine-tune"), ("file", b"anything at all")], ("file",))
    assert requested(other, path=files, content_type=FORM_TYPE) == ()
    # The purpose as the gateway compares it: any case, surrounding whitespace ignored.
    for spelled in (b"Batch", b"BATCH", b"batch ", b" batch"):
        respelled = form([("purpose", spelled), ("file", missing)], ("file",))
        assert reason(requested(respelled, path=files, content_type=FORM_TYPE)) is Reason.MODEL_MISSING, spelled
    # Cut after the purpose: a second purpose after the cut would be the gateway's (it reads the
    # last one), so nothing about a cut upload is decided (issue 27: user_data, then batch).
    assert reason(requested(other[:-30], path=files, content_type=FORM_TYPE, partial=True)) is Reason.BODY_TRUNCATED
    assert reason(requested(upload[:-30], path=files, content_type=FORM_TYPE, partial=True)) is Reason.BODY_TRUNCATED
    # Cut inside the purpose's value ("ba" of "batch"): not known to be anything but a batch.
    inside = upload[: upload.index(b"batch") + 2]
    assert reason(requested(inside, path=files, content_type=FORM_TYPE, partial=True)) is Reason.BODY_TRUNCATED


def test_anthropic_batches_and_batch_uploads():
    batches = "/v1/messages/batches"
    body = {"requests": [{"custom_id": "x", "params": {"model": "a"}}, {"custom_id": "y", "params": {"model": "b"}}]}
    assert requested(body, path=batches) == (("a", "x"), ("b", "y"))
    result = requested({"requests": [{"custom_id": "x", "params": {}}]}, path=batches)
    assert (result.reason, result.item) == (Reason.MODEL_MISSING, "x")
    assert reason(requested({"requests": []}, path=batches)) is Reason.MODEL_MISSING
    assert reason(requested(body, path=batches, headers={"x-model": "a"})) is Reason.MODEL_MISMATCH
    assert requested({"purpose": "fine-tune"}, path="/v1/uploads") == ()
    for purpose in ('"batch"', '"Batch "'):
        raw = '{"purpose": ' + purpose + "}"
        assert reason(requested(raw, path="/v1/uploads")) is Reason.BATCH_NOT_INSPECTABLE
    assert reason(requested('{"purpose": "x", "PURPOSE": "batch"}', path="/v1/uploads")) is Reason.BATCH_NOT_INSPECTABLE


# --- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "path", "key", "conflict"),
    [
        ({"authorization": "Bearer k1"}, "/v1/chat/completions", "k1", False),
        ({"x-api-key": "k1"}, "/v1/messages", "k1", False),
        ({"api-key": "k1"}, "/openai/deployments/prod/chat/completions", "k1", False),
        ({"x-goog-api-key": "k1"}, "/v1beta/models/g:generateContent", "k1", False),
        ({}, "/v1beta/models/g:generateContent?key=k1", "k1", False),
        ({"authorization": "Bearer k1", "x-api-key": "k1"}, "/v1/messages", "k1", False),
        ({"authorization": "Bearer k1", "x-api-key": "k2"}, "/v1/messages", "k1", True),
        ({"api-key": "k1"}, "/v1/chat/completions?key=k2", "k1", True),
        ({}, "/v1/chat/completions?key=k1&key=k2", "k1", True),
        # A scheme authz does not read beside a key it does: the gateway may read either
        # (LiteLLM's get_bearer_token reads Basic and AWS4 credentials), so it is a conflict.
        ({"authorization": "Basic abc", "x-api-key": "k1"}, "/v1/messages", "k1", True),
        ({"authorization": "AWS4-HMAC-SHA256 Credential=Bearer k2/x", "x-api-key": "k1"}, "/v1/messages", "k1", True),
        ({"authorization": "Basic abc"}, "/v1/messages", None, False),  # alone: no credential, as before
    ],
)
def test_the_api_key_comes_from_any_configured_place_and_two_different_ones_conflict(headers, path, key, conflict):
    facts = read(check_request({"model": "a"}, headers, path=path), NAMES)
    assert (facts.api_key, facts.credential_conflict) == (key, conflict)


# --- properties: never a crash, never another model than a strict parser reads ----------------


def strict_form_model(body: bytes) -> str | None | str:
    """The model field as the standard library's MIME parser reads the form (an independent oracle)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {FORM_TYPE}\r\n\r\n".encode() + body
    )
    models = [
        part.get_payload(decode=True)
        for part in message.iter_parts()
        if part.get_param("name", header="content-disposition") == "model"
    ]
    if len(models) != 1:
        return "none" if not models else "many"
    return models[0].decode()


field_names = st.sampled_from(["model", "file", "prompt", "language", "Model", "model "])
field_values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n-"), max_size=20)


@given(st.lists(st.tuples(field_names, field_values), max_size=5))
def test_property_a_form_yields_exactly_the_model_a_mime_parser_reads(fields):
    body = form([(n, v.encode()) for n, v in fields])
    ours = requested(body, path="/v1/audio/transcriptions", content_type=FORM_TYPE)
    theirs = strict_form_model(body)
    if isinstance(ours, parsing.Refusal):
        assert ours.reason in (Reason.MODEL_MISSING, Reason.DUPLICATE_MODEL, Reason.MODEL_INVALID)
        assert theirs in ("none", "many") or theirs == ""
    else:
        assert ours == ((theirs, ""),)


@given(st.binary(max_size=400), st.sampled_from(["/v1/audio/transcriptions", "/v1/files"]))
def test_property_arbitrary_bytes_as_a_form_never_crash(raw, path):
    result = requested(raw, path=path, content_type=FORM_TYPE)
    assert isinstance(result, (tuple, parsing.Refusal))


@given(
    st.binary(max_size=400),
    st.sampled_from(
        [
            "/v1/chat/completions",
            "/v1/messages/batches",
            "/v1/uploads",
            "/v1/realtime/client_secrets",
            "/v1beta/models/g:countTokens",
        ]
    ),
)
def test_property_arbitrary_bytes_as_json_never_crash_and_name_only_what_json_holds(raw, path):
    result = requested(raw, path=path)
    if isinstance(result, tuple) and result and path == "/v1/chat/completions":
        document = json.loads(raw)  # we read a model: so does a strict JSON parser, and the same one
        assert [v for k, v in document.items() if k.casefold() == "model"] == [result[0][0]]


json_keys = st.sampled_from(["model", "Model", "MODEL", "mod\u0065l", "messages", "modeL", "\u212aey"])


@given(st.lists(st.tuples(json_keys, st.text(max_size=8)), max_size=4))
def test_property_any_key_equal_to_model_ignoring_case_counts(pairs):
    raw = "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
    models = [(k, v) for k, v in pairs if k.casefold() == "model"]
    result = requested(raw)
    if len(models) == 1 and models[0][0] == "model" and models[0][1]:
        assert result == ((models[0][1], ""),)
    else:
        assert isinstance(result, parsing.Refusal)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=6)), min_size=1, max_size=5))
def test_property_every_batch_line_is_named(items):
    data = lines(*({"custom_id": f"c{i}", "body": {"model": m}} for i, (m, _) in enumerate(items)))
    result = requested(
        form([("purpose", b"batch"), ("file", data)], ("file",)), path="/v1/files", content_type=FORM_TYPE
    )
    assert result == tuple((m, f"c{i}") for i, (m, _) in enumerate(items))


@given(st.text(max_size=30))
def test_property_a_query_model_is_what_parse_qs_reads(model):
    path = "/v1/realtime?model=" + quote(model, safe="")
    result = requested(b"", path=path, method="GET")
    if model:
        assert result == ((model, ""),)
    else:
        assert reason(result) is Reason.MODEL_INVALID


# --- the fast path for a top-level "model" (msgspec, top level only) --------------------------

_KEYS = st.sampled_from(["model", "Model", "MODEL", "mod\\u0065l", "messages", "x", "stream", "role"])
_SCALARS = st.one_of(
    st.sampled_from(['"gpt-4o"', '"azure/gpt-4o"', '""', "1", "null", "true", '"\\ud800"', '"model"', "NaN"]),
    st.text(max_size=8).map(json.dumps),
)


def _objects(depth: int = 2):
    values = _SCALARS if depth == 0 else st.one_of(_SCALARS, _objects(depth - 1))
    return st.lists(st.tuples(_KEYS, values), max_size=5).map(
        lambda pairs: "{" + ",".join(f'"{k}":{v}' for k, v in pairs) + "}"
    )


@given(
    _objects(),
    st.sampled_from(["", " ", "\ufeff", " trailing", "\xff"]),
)
def test_the_fast_path_reads_a_model_only_where_the_exact_parser_reads_the_same(text, noise):
    """The fast path may decline (None); when it answers, the exact parser agrees."""
    from authz.check.parsing import jsonbody

    data = (
        text.encode()
        if noise in ("", " ")
        else (noise + text if noise == "\ufeff" else text + noise).encode(errors="surrogatepass")
    )
    fast = jsonbody.top_level_model(data)
    if fast is None:
        return
    pairs = jsonbody.object_pairs(data)
    assert not isinstance(pairs, Reason)
    assert jsonbody.model_at(pairs, "model") == fast


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"a","model":"b"}',  # a duplicate: another parser may read the first
        b'{"model":"a","MODEL":"b"}',  # Go's encoding/json matches keys ignoring case
        b'{"mod\\u0065l":"b","model":"a"}',  # an escaped spelling of the same key
        b'{"model":"a","x":"\xff"}',  # not UTF-8
        b'\xef\xbb\xbf{"model":"a"}',  # a byte-order mark
        b'{"model":"a"} {}',  # more than one value
        b'{"model":1}',
    ],
)
def test_the_fast_path_declines_what_only_the_exact_parser_may_judge(body):
    from authz.check.parsing import jsonbody

    assert jsonbody.top_level_model(body) is None


def test_a_part_with_a_header_sent_twice_is_refused():
    """Starlette keeps a part's last Content-Disposition; a reader that joins or keeps the first
    read another field (issue 27: a blocked model judged as a compliant one)."""
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="model"; x="\r\n'
        b'Content-Disposition: form-data; name="q"\r\n\r\n'
        b"gpt-4o\r\n"
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\n'
        b"deepseek/deepseek-v3.2\r\n"
        b"--b0undary--\r\n"
    )
    assert reason(requested(body, path="/v1/audio/transcriptions", content_type=FORM_TYPE)) is Reason.BODY_MALFORMED


def test_more_parts_than_the_gateway_accepts_are_refused_early():
    parts = b"".join(b'--b0undary\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n' for _ in range(1001))
    body = parts + b'--b0undary\r\nContent-Disposition: form-data; name="model"\r\n\r\na\r\n--b0undary--\r\n'
    assert reason(requested(body, path="/v1/audio/transcriptions", content_type=FORM_TYPE)) is Reason.BODY_MALFORMED


def test_json_nested_past_any_parser_is_not_json_not_a_crash():
    deep = b'{"model": "a", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert reason(requested(deep)) is Reason.BODY_NOT_JSON


@pytest.mark.parametrize(
    ("authorization", "key"),
    [
        ("Bearer k1", "k1"),
        ("bearer k1", "k1"),
        ("Basic k1", "k1"),  # taken as it is, not base64-decoded (get_bearer_token's langfuse case)
        ("AWS4-HMAC-SHA256 Credential=Bearer k1/20261207/eu-central-1/bedrock/aws4_request, Signature=x", "k1"),
        ("AWS4-HMAC-SHA256 Credential=k1/20261207/eu-central-1/bedrock/aws4_request", "k1"),
        ("Token k1", None),
    ],
)
def test_under_litellm_authorization_is_read_as_litellm_reads_a_key(authorization, key):
    """LiteLLM's user_api_key_auth.py, get_bearer_token: the org is the one whose key LiteLLM
    authenticates, whichever scheme carries it; beside another key it is a conflict."""
    names = ReadConfig(model="x-model", litellm_schemes=True)
    facts = read(check_request({"model": "a"}, {"authorization": authorization}), names)
    assert (facts.api_key, facts.credential_conflict) == (key, False)
    both = read(check_request({"model": "a"}, {"authorization": authorization, "x-api-key": "k2"}), names)
    assert both.credential_conflict is True
