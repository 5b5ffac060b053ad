"""`make demo`: the real stack end to end on free ports, then everything stopped again.

redis-server, the stand-in LLM gateway, authz and a real Envoy; an Enterprise org with an API
key and a policy (SOC 2 or ISO 27001, GDPR, no training on prompts, no prompt logging); chat
requests in both routing modes, a model listing, a multipart image edit and a multipart audio
transcription through Envoy; the security events they left. Exits non-zero if any step does not
behave as promised.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from devstack.policies import DEMO_POLICY
from devstack.stack import ROOT, Stack

ORG = "acme-corp"
# The shipped catalog: LLMGateway's published provider data policies and model mappings.
CATALOG = ROOT / "catalog" / "catalog.json"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say(f"\n=== {title}")


def request(stack: Stack, key: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Summarize our Q3 board minutes."}]}
    say(f"$ curl {stack.url}/v1/chat/completions -H 'Authorization: Bearer sk-…' -d '{json.dumps(body)}'")
    return httpx.post(
        f"{stack.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=10
    )


def upload(
    stack: Stack, key: str, path: str, files: dict[str, tuple[str, bytes, str]], fields: dict[str, str], model: str
) -> tuple[httpx.Response, dict[str, Any], bool]:
    """A multipart request naming `model` in its form; the reply, and whether the gateway got it."""
    shown = " ".join([*(f"-F {k}=@{v[0]}" for k, v in files.items()), *(f"-F {k}='{v}'" for k, v in fields.items())])
    say(f"$ curl {stack.url}{path} -H 'Authorization: Bearer sk-…' {shown} -F model={model}")
    before = len(stack.received())
    r = httpx.post(
        stack.url + path,
        headers={"authorization": f"Bearer {key}"},
        files=files,
        data={**fields, "model": model},
        timeout=10,
    )
    reply = r.json()
    say(f"HTTP {r.status_code}: {reply['error']['message'] if 'error' in reply else reply}")
    return r, reply, len(stack.received()) > before


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"demo: FAILED: {what}")
    say(f"    ok: {what}")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="authz-demo-"))
    step("starting redis-server, stand-in gateway, authz and Envoy on free ports")
    # First in front of a gateway that routes only among x-compliance-allowed-providers (as the
    # stand-in does), then in strict mode, as in front of a gateway that ignores the header.
    with Stack.start(workdir, authz_settings={"routing_enforcement": "header"}) as stack:
        say(
            f"Envoy {stack.url}  authz gRPC :{stack.ports['authz_grpc']}  gateway {stack.gateway_url}  "
            f"redis :{stack.redis.port}  logs {workdir}"
        )
        admin = stack.admin
        version = admin.load_catalog(CATALOG)
        key = "sk-demo-" + ORG
        admin.set_plan(ORG, "enterprise")
        admin.add_api_key(key, ORG)
        stored = admin.set_policy(ORG, actor="owner@acme-corp", **DEMO_POLICY)
        stack.wait_ready()
        say(
            f"catalog v{version} ({CATALOG.name}, LLMGateway's published data) loaded; "
            f"org {ORG} (enterprise) policy v{stored.version}: "
            "SOC 2 or ISO 27001, GDPR, no training on prompts, no prompt logging"
        )

        step(
            "1. automatic routing (routing_enforcement = header): deepseek-v3.2, served by three providers "
            "(LLMGateway deactivated a fourth, vertex-openai, on 2026-10-21)"
        )
        r = request(stack, key, "deepseek-v3.2")
        got = stack.received()
        allowed = got[-1]["headers"].get("x-compliance-allowed-providers") if got else None
        say(f"HTTP {r.status_code}; the gateway was told x-compliance-allowed-providers: {allowed}")
        say(f"the gateway routed to: {r.json().get('provider')}")
        expect(
            r.status_code == 200 and allowed == "deepinfra",
            "allowed, novita (no SOC 2, ISO 27001 or GDPR published) and bytedance (GDPR unknown) removed",
        )

        step("2. pinned provider: novita/deepseek-v3.2")
        before = len(stack.received())
        r = request(stack, key, "novita/deepseek-v3.2")
        say(f"HTTP {r.status_code} {r.headers.get('content-type')}")
        say(json.dumps(r.json(), indent=2))
        expect(r.status_code == 403 and len(stack.received()) == before, "403 and the gateway received nothing")

        step("3. a model no compliant provider serves: qwen3-max")
        r = request(stack, key, "qwen3-max")
        say(f"HTTP {r.status_code}: {r.json()['error']['message']}")
        expect(r.status_code == 403 and len(stack.received()) == before, "403 and the gateway received nothing")

        step("4. beyond chat: a model listing (no prompt leaves, so no model is needed)")
        say(f"$ curl {stack.url}/v1/models -H 'Authorization: Bearer sk-…'")
        r = httpx.get(f"{stack.url}/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=10)
        say(f"HTTP {r.status_code}: {[m['id'] for m in r.json()['data']]}")
        expect(r.status_code == 200, "allowed: model-free endpoints pass, without a security event")

        step("5. a multipart image edit, judged by its form field `model`")
        image = {"image": ("minutes.png", b"\x89PNG\r\n\x1a\n", "image/png")}
        fields = {"prompt": "redact the figures"}
        r, reply, sent = upload(stack, key, "/v1/images/edits", image, fields, "azure/gpt-image-2")
        expect(r.status_code == 200 and sent, "edited by azure")
        r, reply, sent = upload(stack, key, "/v1/images/edits", image, fields, "openai/gpt-image-2")
        expect(
            r.status_code == 403 and not sent,
            "403 (openai logs prompts) before a byte of the image reached the gateway",
        )

        step("6. a multipart audio transcription, judged by its form field `model`")
        # The shipped catalog has no transcription model (LLMGateway lists none), so the org
        # declares its own: a self-hosted Whisper it attests for, and a vendor it has not vetted.
        token = stack.token(ORG, role="owner", subject="owner@acme-corp")
        attested = {
            "soc2": True,
            "soc2_report": "SOC2_REPORT_TYPE2",
            "gdpr": True,
            "trains_on_prompts": False,
            "logs_prompts": False,
            "evidence": {"soc2": {"source": "our SOC 2 Type 2 report, 2026"}},
        }
        for provider, attestation in (("acme-whisper", attested), ("vendor-x", None)):
            body: dict[str, object] = {"name": provider, "models": ["whisper-large-v3"]}
            if attestation:
                body["attestation"] = attestation
            put = httpx.put(
                f"{stack.authz_http}/v1/orgs/{ORG}/custom-providers/{provider}",
                headers={"authorization": f"Bearer {token}"},
                json={"provider": body},
                timeout=10,
            )
            expect(
                put.status_code == 200,
                f"custom provider {provider} declared ({'attested' if attestation else 'no attestation'})",
            )
        audio = {"file": ("minutes.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav")}
        r, reply, sent = upload(stack, key, "/v1/audio/transcriptions", audio, {}, "acme-whisper/whisper-large-v3")
        expect(r.status_code == 200 and sent, "transcribed by acme-whisper")
        r, reply, sent = upload(stack, key, "/v1/audio/transcriptions", audio, {}, "vendor-x/whisper-large-v3")
        expect(
            r.status_code == 403 and not sent and reply["error"]["alternatives"] == ["acme-whisper/whisper-large-v3"],
            "403 (vendor-x has no attestation) before a byte of the audio reached the gateway; "
            "the attested acme-whisper is named as the way to succeed",
        )

        step("7. routing_enforcement = strict (a gateway that ignores the header, e.g. LiteLLM)")
        stack.reconfigure_authz(routing_enforcement="strict")
        r = request(stack, key, "deepseek-v3.2")
        error = r.json().get("error", {})
        say(f"HTTP {r.status_code}: {error.get('message')}")
        expect(
            r.status_code == 403
            and error.get("code") == "routing_not_enforceable"
            and "deepinfra/deepseek-v3.2" in error.get("alternatives", []),
            "403: the gateway could pick novita or bytedance; the compliant pins are listed",
        )
        r = request(stack, key, "deepinfra/deepseek-v3.2")
        say(f"HTTP {r.status_code}; routed to {r.json().get('provider')}")
        expect(r.status_code == 200, "a pinned compliant alternative passes")

        step("security events recorded in Redis (authz:events:security)")
        deadline = time.monotonic() + 5
        while len(admin.security_events()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        events = admin.security_events()
        for event in events:
            say(json.dumps(event))
        expect(len(events) == 5, "one event per block, without the prompt or the key")
        expect(
            all("Q3 board" not in json.dumps(e) and key not in json.dumps(e) for e in events),
            "no event holds the prompt or the API key",
        )
        step("stopping everything")
    say("done.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
