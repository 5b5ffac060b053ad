"""The whole API surface through real Envoy: every row of the shipped endpoint table, the
official SDKs, every credential header, content types, big bodies and websockets.

For each row a compliant request reaches the stand-in gateway (which finds the model its own
way and records it), and a non-compliant one gets 403 naming the provider while the gateway
receives nothing. Model-free rows pass without a security event.
"""

from __future__ import annotations

import asyncio
import io
import json
from urllib.parse import quote

import aiohttp
import anthropic
import httpx
import httpx2  # the HTTP client the anthropic SDK is built on
import openai
import pytest

from authz.check import endpoints as ep
from devstack.stack import DEPLOYMENTS, Stack, wait_until
from support.policies import DEMO_POLICY

# Under DEMO_POLICY: Azure and Google Vertex comply; DeepSeek (and its other hosts) do not.
GOOD, BAD = "azure/gpt-4o", "deepseek/deepseek-v3.2"
GOOD_PATH, BAD_PATH = "gemini-2.5-pro", "deepseek-r1-0528"  # path models: automatic routing
[GOOD_DEPLOYMENT] = [d for d, m in DEPLOYMENTS.items() if m == GOOD]
[BAD_DEPLOYMENT] = [d for d, m in DEPLOYMENTS.items() if m == BAD]
ROWS = [(method, row) for row in ep.default_table().endpoints for method in sorted(row.methods)]


def row_id(case) -> str:
    method, row = case
    return f"{method} {row.path}"


def multipart_fields(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A body the way httpx would send it, built here so it can be sent as raw content."""
    request = httpx.Request("POST", "http://x", data=fields, files=files)
    request.read()
    return request.content, request.headers["content-type"]


def batch_file(*models: str) -> bytes:
    return b"\n".join(
        json.dumps(
            {
                "custom_id": f"req-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": m, "messages": [{"role": "user", "content": "hi"}]},
            }
        ).encode()
        for i, m in enumerate(models)
    )


def build(method: str, row: ep.Endpoint, compliant: bool) -> dict:
    """httpx.request kwargs for this row, naming a compliant or a non-compliant model."""
    model = GOOD if compliant else BAD
    path = row.path.replace("{id}", "obj_1")
    for variable, value in (("{project}", "my-project"), ("{location}", "europe-west4"), ("{publisher}", "google")):
        path = path.replace(variable, value)  # Vertex AI: the model's place in the path
    if "{model}" in path:
        path = path.replace("{model}", quote(GOOD_PATH if compliant else BAD_PATH, safe=""))
    if "{deployment}" in path:
        path = (
            path.replace("{deployment}", GOOD_DEPLOYMENT if compliant else BAD_DEPLOYMENT) + "?api-version=2024-10-21"
        )
    request: dict = {"method": method, "url": path}
    if row.model == ep.BODY:
        body: dict = {"input": "hi", "messages": [{"role": "user", "content": "hi"}]}
        if row.field == "model":
            body["model"] = model
        else:  # "session.model"
            outer, inner = row.field.split(".")
            body[outer] = {"type": "realtime", inner: model}
        request["json"] = body
    elif row.model == ep.FORM or row.model == ep.DEPLOYMENT and row.body == ep.MULTIPART:
        fields = {"model": model} if row.model == ep.FORM else {}
        request["data"], request["files"] = fields, {"file": ("a.wav", b"RIFF0000WAVE", "audio/wav")}
    elif row.model == ep.QUERY:
        request["url"] += f"?{row.field}={quote(model, safe='')}"
    elif row.model in (ep.PATH, ep.DEPLOYMENT):
        request["json"] = {"contents": [{"parts": [{"text": "hi"}]}], "messages": [{"role": "user", "content": "hi"}]}
    elif row.model == ep.BATCH_FILE:
        models = (GOOD, GOOD) if compliant else (GOOD, BAD)
        request["data"], request["files"] = {"purpose": "batch"}, {"file": ("in.jsonl", batch_file(*models))}
    elif row.model == ep.BATCH_REQUESTS:
        models = (GOOD, GOOD) if compliant else (GOOD, BAD)
        request["json"] = {
            "requests": [
                {"custom_id": f"req-{i}", "params": {"model": m, "max_tokens": 5, "messages": []}}
                for i, m in enumerate(models)
            ]
        }
    elif row.model == ep.NO_BATCH:
        request["json"] = {
            "purpose": "fine-tune" if compliant else "batch",
            "filename": "f.jsonl",
            "bytes": 10,
            "mime_type": "application/jsonl",
        }
    elif row.model == ep.NONE:
        if method == "POST":
            request["json"] = {
                "input_file_id": "file-1",
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            }
    else:  # a new place for the model (docs/contributing.md): teach build() to send it
        raise AssertionError(f"no request builder for rows whose model is {row.model!r}")
    return request


def send(org, request: dict) -> httpx.Response:
    request = dict(request)
    url = org.stack.url + request.pop("url")
    return httpx.request(
        request.pop("method"), url, headers={"authorization": f"Bearer {org.key}"}, timeout=30, **request
    )


@pytest.fixture
def enforced(org):
    org.set_policy(**DEMO_POLICY)
    return org


@pytest.mark.parametrize("case", ROWS, ids=row_id)
def test_every_row_lets_a_compliant_request_through_and_blocks_a_non_compliant_one(enforced, case):
    method, row = case
    r = send(enforced, build(method, row, compliant=True))
    assert r.status_code == 200, r.text
    [got] = enforced.received()
    assert got["method"] == method
    if row.model_free:
        assert "model" not in got
        assert enforced.events() == []
        return
    if row.model != ep.NO_BATCH:
        expected = {ep.PATH: GOOD_PATH}.get(row.model, GOOD)
        assert got["model"] == expected, got
        assert got["headers"]["x-compliance-allowed-providers"]
    r = send(enforced, build(method, row, compliant=False))
    assert len(enforced.received()) == 1, "the gateway received the blocked request"
    error = r.json()["error"]
    if row.model == ep.NO_BATCH:
        assert (r.status_code, error["code"]) == (400, "batch_not_inspectable")
        return
    assert r.status_code == 403, r.text
    assert error["code"] in ("provider_not_compliant", "no_compliant_provider")
    assert "deepseek" in error["message"] and error["blocked_providers"][0]["provider"] == "deepseek"
    if row.model in (ep.BATCH_FILE, ep.BATCH_REQUESTS):
        assert error["custom_id"] == "req-1" and "req-1" in error["message"]
    wait_until(lambda: enforced.events(), 5, "the security event")  # written after the answer
    [event] = enforced.events()
    assert (event["method"], event["path"]) == (method, build(method, row, False)["url"].split("?")[0])


def test_a_path_no_row_covers_is_denied_naming_it(enforced):
    for method, path in [
        ("POST", "/v1/assistants"),
        ("POST", "/v1/chat%2Fcompletions"),
        ("POST", "/v1/chat/completions/extra"),
        ("PUT", "/v1/chat/completions"),
    ]:
        r = send(enforced, {"method": method, "url": path, "json": {"model": GOOD}})
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "endpoint_not_covered"
    message = send(enforced, {"method": "POST", "url": "/v1/assistants", "json": {}}).json()["error"]["message"]
    assert message.startswith("POST /v1/assistants is not in the compliance check's endpoint table")
    assert enforced.received() == []


def test_a_model_free_request_of_an_org_without_policy_is_untouched(org):
    r = send(org, {"method": "GET", "url": "/v1/models"})
    assert r.status_code == 200 and r.json()["object"] == "list"


# --- the official SDKs ----------------------------------------------------------------------


def openai_client(org) -> openai.OpenAI:
    return openai.OpenAI(base_url=org.stack.url + "/v1", api_key=org.key, max_retries=0)


def test_openai_sdk_lists_models_transcribes_edits_images_and_uploads_batches(enforced):
    client = openai_client(enforced)
    assert [m.id for m in client.models.list()] == ["gpt-4o", "claude-sonnet-4.5"]
    text = client.audio.transcriptions.create(model=GOOD, file=("a.wav", io.BytesIO(b"RIFF0000WAVE")))
    assert text.text == "(stand-in reply from azure)"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.audio.transcriptions.create(model=BAD, file=("a.wav", io.BytesIO(b"RIFF0000WAVE")))
    assert denied.value.body["code"] == "provider_not_compliant"
    image = client.images.edit(model=GOOD, image=("i.png", io.BytesIO(b"\x89PNG")), prompt="a hat")
    assert image.data[0].b64_json
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(batch_file(GOOD, GOOD))), purpose="batch")
    assert uploaded.id.startswith("file-standin")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.files.create(file=("in.jsonl", io.BytesIO(batch_file(GOOD, BAD, GOOD))), purpose="batch")
    assert denied.value.body["custom_id"] == "req-1"
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "validating"
    stream = client.chat.completions.create(model=GOOD, messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "azure" in "".join(c.choices[0].delta.content or "" for c in stream)
    kinds = [(r["method"], r["path"]) for r in enforced.received()]
    assert ("POST", "/v1/files") in kinds and ("POST", "/v1/batches") in kinds
    assert sum(1 for r in enforced.received() if r["path"] == "/v1/files") == 1  # the blocked upload never arrived


def test_anthropic_sdk_with_x_api_key_creates_streams_counts_and_batches(enforced):
    # This SDK release sends the key as a Bearer token; Anthropic's API (and older SDKs, curl)
    # use x-api-key alone, so the client here sends only that.
    def x_api_key_only(request) -> None:
        request.headers.pop("authorization", None)
        request.headers["x-api-key"] = enforced.key

    client = anthropic.Anthropic(
        base_url=enforced.stack.url,
        api_key="sent-as-x-api-key",
        max_retries=0,
        http_client=httpx2.Client(event_hooks={"request": [x_api_key_only]}),
    )
    message = client.messages.create(model=GOOD, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "(stand-in reply from azure)"
    with client.messages.stream(model=GOOD, max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "azure" in "".join(stream.text_stream)
    assert client.messages.count_tokens(model=GOOD, messages=[{"role": "user", "content": "hi"}]).input_tokens == 7
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        client.messages.create(model=BAD, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert "deepseek" in str(denied.value)
    requests = [
        {"custom_id": "ok", "params": {"model": GOOD, "max_tokens": 5, "messages": []}},
        {"custom_id": "bad-one", "params": {"model": BAD, "max_tokens": 5, "messages": []}},
    ]
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        client.messages.batches.create(requests=requests)
    assert "bad-one" in str(denied.value)
    assert client.messages.batches.create(requests=requests[:1]).processing_status == "in_progress"
    got = [r for r in enforced.stack.received() if r["headers"].get("x-api-key") == enforced.key]
    assert all("authorization" not in r["headers"] for r in got)
    assert [r["model"] for r in got] == [GOOD, GOOD, GOOD, GOOD]


def test_azure_openai_sdk_is_judged_by_the_deployment_in_the_path(enforced):
    client = openai.AzureOpenAI(
        azure_endpoint=enforced.stack.url, api_key=enforced.key, api_version="2024-10-21", max_retries=0
    )
    reply = client.chat.completions.create(model=GOOD_DEPLOYMENT, messages=[{"role": "user", "content": "hi"}])
    assert reply.model == GOOD  # the gateway called the deployment's model, the one judged
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=BAD_DEPLOYMENT, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="no-such-deployment", messages=[])
    assert denied.value.body["code"] == "unknown_deployment"
    # The body naming another model than the path's deployment: the gateway would call the path's.
    r = httpx.post(
        f"{enforced.stack.url}/openai/deployments/{GOOD_DEPLOYMENT}/chat/completions",
        headers={"api-key": enforced.key},
        json={"model": BAD, "messages": []},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "model_mismatch")


def test_gemini_clients_with_header_or_query_key(enforced):
    url = f"{enforced.stack.url}/v1beta/models/{GOOD_PATH}:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    r = httpx.post(url, headers={"x-goog-api-key": enforced.key}, json=body)
    assert r.status_code == 200 and r.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert httpx.post(f"{url}?key={enforced.key}", json=body).status_code == 200
    bad = httpx.post(f"{enforced.stack.url}/v1beta/models/{BAD_PATH}:generateContent?key={enforced.key}", json=body)
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "no_compliant_provider"


# --- credentials, content types, sizes, websockets --------------------------------------------


def test_two_different_credentials_are_refused_one_repeated_is_not(enforced):
    chat = {"model": GOOD, "messages": []}
    url = enforced.stack.url + "/v1/chat/completions"
    same = httpx.post(url, json=chat, headers={"authorization": f"Bearer {enforced.key}", "x-api-key": enforced.key})
    assert same.status_code == 200
    for other in ({"x-api-key": "sk-other"}, {"api-key": "sk-other"}, {"x-goog-api-key": "sk-other"}):
        r = httpx.post(url, json=chat, headers={"authorization": f"Bearer {enforced.key}", **other})
        assert (r.status_code, r.json()["error"]["code"]) == (401, "credential_conflict"), other
    r = httpx.post(url + "?key=sk-other", json=chat, headers={"x-api-key": enforced.key})
    assert r.status_code == 401
    assert len(enforced.received()) == 1


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        None,
        "application/json; charset=latin-1",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_json_endpoint_reads_only_json_bodies(enforced, content_type):
    headers = {"authorization": f"Bearer {enforced.key}"}
    if content_type:
        headers["content-type"] = content_type
    r = httpx.post(
        enforced.stack.url + "/v1/chat/completions",
        headers=headers,
        content=json.dumps({"model": GOOD, "messages": []}),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_content_type")
    assert "application/json" in r.json()["error"]["message"]
    assert enforced.received() == []


def test_json_with_a_suffix_type_and_utf8_charset_is_read(enforced):
    for content_type in ("application/json; charset=UTF-8", "application/vnd.example+json"):
        r = httpx.post(
            enforced.stack.url + "/v1/chat/completions",
            content=json.dumps({"model": GOOD}),
            headers={"authorization": f"Bearer {enforced.key}", "content-type": content_type},
        )
        assert r.status_code == 200, r.text


def test_a_case_variant_model_key_is_a_duplicate(enforced):
    r = enforced.post(
        content=b'{"model": "azure/gpt-4o", "Model": "deepseek/deepseek-v3.2"}',
        headers={"content-type": "application/json"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "duplicate_model")


def test_a_20_mib_body_is_judged_not_refused_and_a_body_over_the_limit_is_413(enforced):
    image = "data:image/png;base64," + "A" * (20 << 20)
    content = [{"type": "image_url", "image_url": {"url": image}}]
    ok = enforced.post({"model": GOOD, "messages": [{"role": "user", "content": content}]}, timeout=60)
    assert ok.status_code == 200, ok.text[:300]
    blocked = enforced.post({"model": BAD, "messages": [{"role": "user", "content": content}]}, timeout=60)
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "provider_not_compliant"
    # A duplicate model key after 20 MiB is still seen.
    smuggled = json.dumps({"model": GOOD, "messages": [{"role": "user", "content": content}]})[:-1]
    smuggled += ', "model": "deepseek/deepseek-v3.2"}'
    r = enforced.post(content=smuggled.encode(), headers={"content-type": "application/json"}, timeout=60)
    assert r.json()["error"]["code"] == "duplicate_model"
    over = enforced.post({"model": GOOD, "pad": "x" * (33 << 20)}, timeout=60)
    assert (over.status_code, over.json()["error"]["code"]) == (413, "body_truncated")
    assert len(enforced.received()) == 1


def test_upload_parts_pass_without_their_body_being_sent_to_authz(enforced):
    body, content_type = multipart_fields({}, {"data": ("chunk", b"x" * (40 << 20))})
    r = httpx.post(
        f"{enforced.stack.url}/v1/uploads/upload_1/parts",
        content=body,
        timeout=60,
        headers={"authorization": f"Bearer {enforced.key}", "content-type": content_type},
    )
    assert r.status_code == 200, r.text[:300]


def test_headers_with_underscores_are_rejected_by_envoy(enforced):
    r = enforced.post({"model": BAD, "messages": []}, headers={"x_compliance_allowed_providers": "deepseek"})
    assert r.status_code == 400
    assert enforced.received() == []


def test_realtime_websocket_is_checked_on_upgrade_then_passed_through(enforced):
    async def go():
        headers = {"authorization": f"Bearer {enforced.key}"}
        async with aiohttp.ClientSession() as session:
            url = enforced.stack.url.replace("http", "ws") + f"/v1/realtime?model={quote(GOOD, safe='')}"
            async with session.ws_connect(url, headers=headers) as ws:
                created = await ws.receive_json(timeout=10)
                await ws.send_str("hello")
                echo = await ws.receive_json(timeout=10)
            with pytest.raises(aiohttp.WSServerHandshakeError) as denied:
                await session.ws_connect(url.replace(quote(GOOD, safe=""), quote(BAD, safe="")), headers=headers)
        return created, echo, denied.value.status

    created, echo, status = asyncio.run(go())
    assert created["session"] == {"model": GOOD, "provider": "azure"}
    assert echo == {"type": "echo", "provider": "azure", "received": "hello"}
    assert status == 403
    assert [r["model"] for r in enforced.received()] == [GOOD]


def test_a_model_in_the_query_of_a_body_endpoint_must_agree(enforced):
    r = enforced.post({"model": GOOD, "messages": []}, path=f"/v1/chat/completions?model={quote(BAD, safe='')}")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "model_mismatch")
    ok = enforced.post({"model": GOOD, "messages": []}, path=f"/v1/chat/completions?model={quote(GOOD, safe='')}")
    assert ok.status_code == 200
    assert len(enforced.received()) == 1


UPGRADES = [
    ("GET", f"/v1/models?model={quote(BAD, safe='')}", None),  # a model-free row
    ("GET", f"/v1/realtime/sessions?model={quote(BAD, safe='')}", None),  # no such GET row either
    ("POST", "/v1/uploads", {"purpose": "batch", "filename": "b.jsonl", "bytes": 10, "mime_type": "x"}),
    ("POST", "/v1/chat/completions", {"model": GOOD, "messages": []}),
]
UPGRADE_HEADERS = {
    "upgrade": "websocket",
    "connection": "upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest.fixture(scope="module")
def upgrades_everywhere(tmp_path_factory):
    """Envoy as a mesh may configure it: websocket upgrades enabled on every route."""

    def enable(config: dict) -> None:
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["upgrade_configs"] = [{"upgrade_type": "websocket"}]

    with Stack.start(tmp_path_factory.mktemp("upgrades"), envoy_mutate=enable) as stack:
        stack.admin.load_catalog()
        stack.admin.add_api_key("sk-upgrade", "upgrade-org")
        stack.admin.set_plan("upgrade-org", "enterprise")
        stack.admin.set_policy("upgrade-org", **DEMO_POLICY)
        stack.wait_ready()
        yield stack


@pytest.mark.parametrize(("method", "path", "body"), UPGRADES)
def test_an_upgrade_is_refused_by_authz_on_every_row_but_the_realtime_one(upgrades_everywhere, method, path, body):
    """Envoy sends no body with an upgrade, and the row judged would not be the session opened:
    a websocket on /v1/models opened a realtime session on a blocked provider."""
    stack = upgrades_everywhere
    stack.clear_received()
    headers = {**UPGRADE_HEADERS, "authorization": "Bearer sk-upgrade"}
    r = httpx.request(method, stack.url + path, json=body, headers=headers, timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "upgrade_not_allowed"), r.text
    assert stack.received() == []


@pytest.mark.parametrize(("method", "path", "body"), UPGRADES)
def test_the_shipped_envoy_switches_protocols_only_on_the_realtime_route(enforced, method, path, body):
    headers = {**UPGRADE_HEADERS, "authorization": f"Bearer {enforced.key}"}
    r = httpx.request(method, enforced.stack.url + path, json=body, headers=headers, timeout=10)
    assert r.status_code in (400, 403) and r.status_code != 101
    assert enforced.received() == []


def test_a_body_endpoint_without_the_body_it_declares_is_truncated(enforced):
    """A content-length with no body seen (an upgrade's body, a cut) is never "not a batch"."""
    upload = httpx.post(
        enforced.stack.url + "/v1/uploads",
        json={"purpose": "batch", "filename": "b.jsonl", "bytes": 10, "mime_type": "text/jsonl"},
        headers={"authorization": f"Bearer {enforced.key}"},
        timeout=10,
    )
    assert (upload.status_code, upload.json()["error"]["code"]) == (400, "batch_not_inspectable")
