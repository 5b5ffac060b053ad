"""In front of a gateway that does not honour x-compliance-allowed-providers (LiteLLM-style):
strict routing, LiteLLM's model names, a client's own requirements, alternatives in every 403,
and a catalog imported from a LiteLLM config, all through real Envoy.

(The session stack runs routing_enforcement = "header"; this module has its own stack.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack, wait_until
from support.litellm import import_catalog
from support.policies import DEMO_POLICY

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "catalog" / "sample-catalog.json"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    s = Stack.start(
        tmp_path_factory.mktemp("strict"),
        authz_settings={
            "routing_enforcement": "strict",
            "naming_profile": "litellm",
            "refresh_interval_s": "600",
            "max_staleness_s": "1200",
        },
    )
    s.admin.load_catalog()
    s.wait_ready()
    for org, key in (("acme", "sk-acme"), ("free", "sk-free")):
        s.admin.set_plan(org, "enterprise")
        s.admin.add_api_key(key, org)
    s.admin.set_policy("acme", **DEMO_POLICY)
    yield s
    s.stop()


def chat(stack: Stack, model: str, key: str = "sk-acme", **headers) -> httpx.Response:
    return httpx.post(
        stack.url + "/v1/chat/completions",
        json={"model": model, "messages": []},
        headers={"authorization": f"Bearer {key}", **headers},
        timeout=10,
    )


def test_readyz_shows_the_modes(strict):
    ready = httpx.get(strict.authz_http + "/readyz").json()
    assert (ready["routing_enforcement"], ready["naming_profile"]) == ("strict", "litellm")


def test_strict_refuses_an_unpinned_model_with_a_non_compliant_host_and_lists_the_pins(strict):
    strict.clear_received()
    r = chat(strict, "deepseek-v3.2")
    error = r.json()["error"]
    assert (r.status_code, error["code"]) == (403, "routing_not_enforceable")
    # Spelled as LiteLLM's clients write them (naming_profile = litellm).
    assert error["alternatives"] == [
        "together_ai/deepseek-v3.2",
        "fireworks_ai/deepseek-v3.2",
        "deepinfra/deepseek-v3.2",
    ]
    assert "together_ai/deepseek-v3.2" in error["message"] and "'novita'" in error["message"]
    assert strict.received() == []
    pinned = chat(strict, "together_ai/deepseek-v3.2")
    assert pinned.status_code == 200 and pinned.json()["provider"] == "together"
    # Every host compliant: an unpinned request passes.
    assert chat(strict, "gemini-2.5-pro").status_code == 200


def test_every_403_says_how_to_succeed(strict):
    pinned = chat(strict, "deepseek/deepseek-v3.2").json()["error"]
    assert pinned["code"] == "provider_not_compliant" and pinned["alternatives"][0] == "together_ai/deepseek-v3.2"
    nothing = chat(strict, "deepseek-r1-0528").json()["error"]
    assert nothing["code"] == "no_compliant_provider" and len(nothing["alternatives"]) == 5
    assert all("/" in a for a in nothing["alternatives"])
    # Each suggestion passes as sent.
    assert all(chat(strict, a).status_code == 200 for a in pinned["alternatives"] + nothing["alternatives"])


@pytest.mark.parametrize(
    ("model", "status", "provider"),
    [
        ("together_ai/llama-3.3-70b-instruct", 200, "together"),
        ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", 200, "together"),
        ("bedrock/claude-sonnet-4.5", 200, "aws-bedrock"),
        ("fireworks_ai/deepseek-v3.2", 200, "fireworks"),
        ("GPT-4o", 403, None),
        ("Together_AI/llama-3.3-70b-instruct", 403, None),
        ("together_ai\u2215llama-3.3-70b-instruct", 403, None),
        ("together_ai/llama-3.3-70b-instruct\u200b", 403, None),
    ],
)
def test_litellm_names_are_judged_as_the_provider_litellm_calls(strict, model, status, provider):
    r = chat(strict, model)
    assert r.status_code == status, r.text
    if provider:
        assert r.json()["provider"] == provider  # the stand-in was told (and routed to) that provider
    else:
        assert r.json()["error"]["code"] == "unknown_model"


def test_a_client_can_require_more_for_its_own_request(strict):
    # Google Vertex publishes no retention period: fine for the org, not for a client asking for ZDR.
    assert chat(strict, "google-vertex/gemini-2.5-pro").status_code == 200
    r = chat(strict, "google-vertex/gemini-2.5-pro", **{"x-compliance-require": "zero_data_retention"})
    error = r.json()["error"]
    assert (r.status_code, error["code"]) == (403, "provider_not_compliant")
    assert error["failed_requirements"] == ["zero_data_retention"]
    assert error["blocked_providers"][0]["unknown"] == ["zero_data_retention"]
    # Without an org policy too, and an unknown name is named.
    assert chat(strict, "gemini-2.5-pro", key="sk-free").status_code == 200
    assert (
        chat(strict, "gemini-2.5-pro", key="sk-free", **{"x-compliance-require": "zero_data_retention"}).status_code
        == 403
    )
    bad = chat(strict, "azure/gpt-4o", **{"x-compliance-require": "zdr"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "unknown_requirement")
    assert "'zdr'" in bad.json()["error"]["message"]
    # The header never reaches the gateway, and the event records it.
    ok = chat(strict, "gemini-2.5-pro", **{"x-compliance-require": "gdpr"})
    assert ok.status_code == 200
    assert "x-compliance-require" not in strict.received()[-1]["headers"]
    events = [e for e in strict.admin.security_events() if e.get("client_requirements")]
    assert events and events[0]["client_requirements"] == ["zero_data_retention"]


def test_a_catalog_imported_from_a_litellm_config_decides_requests(strict, tmp_path):
    imported = tmp_path / "catalog.json"
    import_catalog(ROOT / "tests" / "support" / "data" / "litellm-config.yaml", imported, strict.authz_env, base=None)
    try:
        strict.admin.load_catalog(imported)
        end = time.monotonic() + 10
        while (
            chat(strict, "house-llama").json().get("error", {}).get("code") == "unknown_model"
            and time.monotonic() < end
        ):
            time.sleep(0.05)  # the new catalog reaches authz over pub/sub
        # gpt-4o is load-balanced over Azure (compliant) and OpenAI (logs prompts). LiteLLM serves
        # no "azure/gpt-4o" (no wildcard route for it): the suggestions are its model groups
        # whose every deployment complies, and each passes as it is.
        r = chat(strict, "gpt-4o")
        assert r.json()["error"]["code"] == "routing_not_enforceable"
        alternatives = r.json()["error"]["alternatives"]
        assert alternatives == ["claude-sonnet-4.5", "llama-3.3-70b-instruct"]
        assert all(chat(strict, name).status_code == 200 for name in alternatives)
        assert chat(strict, "gpt-4").json()["error"]["alternatives"] == alternatives  # model_group_alias
        # A deployment on a provider the catalog does not know fails closed, named.
        unknown = chat(strict, "house-llama").json()["error"]
        assert unknown["code"] == "no_compliant_provider" and unknown["blocked_providers"][0]["provider"] == "ollama"
        # Models the LiteLLM config does not serve are unknown to this gateway, and so is a pin
        # LiteLLM does not route (no group, alias or route names it: it would answer 400, or
        # send it to default_fallbacks where a config has them).
        assert chat(strict, "kimi-k2").json()["error"]["code"] == "unknown_model"
        pin = chat(strict, "azure/gpt-4o").json()["error"]
        assert pin["code"] == "unknown_model" and "gpt-4o" in pin["message"]
    finally:
        strict.admin.load_catalog(SAMPLE)
        end = time.monotonic() + 10
        while chat(strict, "kimi-k2").json().get("error", {}).get("code") == "unknown_model" and time.monotonic() < end:
            time.sleep(0.05)
    assert json.loads(imported.read_text())["models"]["gpt-4o"]["providers"] == ["azure", "openai"]


# --- knowing the org without registering the gateway's keys ------------------------------------


def test_static_org_judges_every_request_by_one_policy_without_registered_keys(tmp_path):
    with Stack.start(
        tmp_path / "static",
        authz_settings={"org_source": "static", "static_org_id": "company", "routing_enforcement": "strict"},
    ) as stack:
        stack.admin.load_catalog()
        stack.admin.set_plan("company", "enterprise")
        stack.admin.set_policy("company", **DEMO_POLICY)
        stack.wait_ready()
        # Keys the gateway issued (LiteLLM virtual keys, ...) were never added to authz.
        assert chat(stack, "azure/gpt-4o", key="sk-litellm-virtual-1").status_code == 200
        blocked = chat(stack, "deepseek/deepseek-v3.2", key="sk-litellm-virtual-2")
        assert (blocked.status_code, blocked.json()["error"]["code"]) == (403, "provider_not_compliant")
        anthropic_style = httpx.post(
            stack.url + "/v1/messages",
            json={"model": "azure/gpt-4o", "messages": []},
            headers={"x-api-key": "sk-ant-anything"},
            timeout=10,
        )
        assert anthropic_style.status_code == 200
        # No credential at all: refused by default (static_requires_credential = true).
        bare = httpx.post(stack.url + "/v1/chat/completions", json={"model": "azure/gpt-4o"}, timeout=10)
        assert (bare.status_code, bare.json()["error"]["code"]) == (401, "org_missing")
        [event] = [e for e in stack.admin.security_events() if e["reason"] == "provider_not_compliant"]
        assert event["org_id"] == "company" and event["api_key_id"]


def test_gateway_key_api_names_the_org_and_failing_closed_when_it_cannot(tmp_path):
    with Stack.start(
        tmp_path / "keys",
        gateway_args=["--master-key=sk-master", "--key=sk-virtual-a=team-a", "--key=sk-virtual-b=team-b"],
    ) as stack:
        stack.admin.load_catalog()
        for team in ("team-a", "team-b"):
            stack.admin.set_plan(team, "enterprise")
        stack.admin.set_policy("team-a", **DEMO_POLICY)
        stack.reconfigure_authz(
            org_source="gateway",
            gateway_key_api_url=f"{stack.gateway_url}/key/info",
            gateway_key_api_token="sk-master",
            routing_enforcement="header",
        )

        def lookups() -> int:
            return httpx.get(stack.gateway_url + "/_key_lookups").json()["count"]

        started = time.perf_counter()
        blocked = chat(stack, "deepseek/deepseek-v3.2", key="sk-virtual-a")  # cold: one key-API call
        cold_ms = (time.perf_counter() - started) * 1e3
        assert (blocked.status_code, blocked.json()["error"]["code"]) == (403, "provider_not_compliant")
        started = time.perf_counter()
        assert chat(stack, "deepseek/deepseek-v3.2", key="sk-virtual-b").status_code == 200  # team-b: no policy
        second_cold_ms = (time.perf_counter() - started) * 1e3
        started = time.perf_counter()
        assert chat(stack, "deepseek/deepseek-v3.2", key="sk-virtual-b").status_code == 200
        warm_ms = (time.perf_counter() - started) * 1e3
        assert lookups() == 2
        for _ in range(5):  # warm: answered from the cache
            assert chat(stack, "azure/gpt-4o", key="sk-virtual-a").status_code == 200
        assert lookups() == 2
        unknown = chat(stack, "azure/gpt-4o", key="sk-not-a-litellm-key")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, "api_key_unknown")
        assert chat(stack, "azure/gpt-4o", key="sk-not-a-litellm-key").status_code == 401
        assert lookups() == 3  # the unknown key is remembered too
        # The key API refuses authz (wrong master key): every uncached key is 503, never an allow.
        stack.reconfigure_authz(gateway_key_api_token="sk-wrong")
        down = chat(stack, "azure/gpt-4o", key="sk-virtual-b")
        assert down.status_code == 401  # LiteLLM answers 401 for a key it will not describe: unknown
        stack.reconfigure_authz(gateway_key_api_url="http://127.0.0.1:9/key/info", gateway_key_api_token="sk-master")
        unreachable = chat(stack, "azure/gpt-4o", key="sk-virtual-a")
        assert (unreachable.status_code, unreachable.json()["error"]["code"]) == (503, "state_unavailable")
        print(
            f"through Envoy: first cold key-API lookup {cold_ms:.1f} ms, next {second_cold_ms:.1f} ms, "
            f"warm {warm_ms:.1f} ms"
        )


def test_the_org_from_a_verified_token_through_envoys_jwt_authn(tmp_path):
    """org_source = "jwt" with envoy/snippets/jwt-org.yaml as shipped: exactly one org per
    request, from a string claim of the one token read from the Authorization header."""
    import jwt
    import yaml
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})
    snippet = yaml.safe_load((ROOT / "envoy" / "snippets" / "jwt-org.yaml").read_text())
    snippet[0]["typed_config"]["providers"]["idp"]["local_jwks"] = {"inline_string": jwks}

    def with_jwt(config: dict) -> None:
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_filters"][0:0] = snippet

    def token(signer=key, **claims) -> str:
        body = {"iss": "https://idp.example.com", "aud": "llm-gateway", "exp": int(time.time()) + 300, **claims}
        return jwt.encode(body, signer, algorithm="RS256", headers={"kid": "k1"})

    with Stack.start(
        tmp_path / "jwt",
        envoy_mutate=with_jwt,
        authz_settings={"org_source": "jwt", "routing_enforcement": "strict"},
    ) as stack:
        from devstack.envoy_config import validate

        assert validate(stack.envoy_config).returncode == 0
        stack.admin.load_catalog()
        for org in ("acme", "other"):
            stack.admin.set_plan(org, "enterprise")
            stack.admin.set_policy(org, **DEMO_POLICY)
        stack.wait_ready()

        def send(bearer: str | None, query: str = "", **headers) -> httpx.Response:
            auth = {"authorization": f"Bearer {bearer}"} if bearer else {}
            return httpx.post(
                stack.url + "/v1/chat/completions" + query,
                json={"model": "deepseek/deepseek-v3.2"},
                headers={**auth, **headers},
                timeout=10,
            )

        acme = send(token(org="acme"))
        assert (acme.status_code, acme.json()["error"]["code"]) == (403, "provider_not_compliant")
        assert send(token(org="no-policy-org")).status_code == 200
        # The same token again in the query (jwt_authn's default second place) changes nothing:
        # only the header is read, so the org is still exactly "acme" (not "acme,acme").
        doubled = token(org="acme")
        assert send(doubled, query=f"?access_token={doubled}").status_code == 403
        assert send(token(org="acme"), query=f"?access_token={token(org='no-policy-org')}").status_code == 403
        # A header naming another org is not where the org comes from.
        assert send(token(org="acme"), **{"x-org-id": "no-policy-org"}).status_code == 403
        assert send(None, query=f"?access_token={token(org='no-policy-org')}").status_code == 401  # no header
        no_claim = send(token())
        assert (no_claim.status_code, no_claim.json()["error"]["code"]) == (401, "org_missing")
        before = len(stack.admin.security_events())
        for claim in (["acme"], ["acme", "x"], ["no-policy-org"], 7, True, {"id": "acme"}, "acme,other", "", "a b"):
            refused = send(token(org=claim))
            code = refused.json()["error"]["code"]
            assert (refused.status_code, code) == (401, "org_missing" if claim == "" else "org_malformed"), claim
        wait_until(lambda: len(stack.admin.security_events()) >= before + 8, 5, "org_malformed events")
        events = stack.admin.security_events()[before:]
        assert {e["reason"] for e in events} == {"org_malformed"} and all(e["org_id"] == "" for e in events)
        forged = token(signer=rsa.generate_private_key(public_exponent=65537, key_size=2048), org="no-policy-org")
        assert send(forged).status_code == 401


def test_an_org_header_that_is_not_one_id_is_refused(tmp_path):
    """org_source = "header": Envoy joins a repeated header with ","; a list, JSON or padding
    must not become an org of its own (one without a policy)."""
    with Stack.start(tmp_path / "hdr", authz_settings={"org_source": "header", "org_header": "x-org-id"}) as stack:
        stack.admin.load_catalog()
        stack.admin.set_plan("acme", "enterprise")
        stack.admin.set_policy("acme", **DEMO_POLICY)
        stack.wait_ready()

        def send(*values: str) -> httpx.Response:
            return httpx.post(
                stack.url + "/v1/chat/completions",
                json={"model": "deepseek/deepseek-v3.2"},
                headers=[("x-org-id", v) for v in values],
                timeout=10,
            )

        assert send("acme").status_code == 403
        for values in (("acme", "acme"), ("acme", "other"), ("acme,acme",), ('["acme"]',), ("WyJhY21lIl0=",), ("a b",)):
            refused = send(*values)
            assert (refused.status_code, refused.json()["error"]["code"]) == (401, "org_malformed"), values


@pytest.mark.parametrize(
    ("profile", "accepted", "provider", "look_alike"),
    [
        ("native", "together/llama-3.3-70b-instruct", "together", "together_ai/llama-3.3-70b-instruct"),
        ("llmgateway", "together-ai/deepseek-v3.2", "together", "Together-ai/deepseek-v3.2"),
        ("openrouter", "meta-llama/llama-3.3-70b-instruct", None, "meta-llama/Llama-3.3-70b-instruct"),
    ],
)
def test_each_naming_profile_through_envoy(strict, profile, accepted, provider, look_alike):
    strict.reconfigure_authz(naming_profile=profile)
    try:
        r = chat(strict, accepted)
        if provider:
            assert r.status_code == 200 and r.json()["provider"] == provider, r.text
        else:  # OpenRouter names a model, routed automatically: strict needs every host compliant
            assert r.json()["error"]["code"] == "routing_not_enforceable"
            assert r.json()["error"]["alternatives"][0] == "together/llama-3.3-70b-instruct"
        unknown = chat(strict, look_alike)
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (403, "unknown_model")
    finally:
        strict.reconfigure_authz(naming_profile="litellm")


def test_in_front_of_llmgateway_every_forwarded_request_keeps_its_provider(strict):
    """LLMGateway reroutes even a pinned request unless it carries `x-no-fallback: true`
    (apps/gateway/src/chat/chat.ts); its /v1/responses does not pass the header on."""
    strict.reconfigure_authz(naming_profile="llmgateway")
    try:
        strict.clear_received()
        r = chat(strict, "together-ai/deepseek-v3.2", **{"x-no-fallback": "false"})
        assert r.status_code == 200, r.text
        (received,) = strict.received()
        assert received["headers"]["x-no-fallback"] == "true"  # set by authz, the client's value replaced
        pinned_on_responses = httpx.post(
            strict.url + "/v1/responses",
            json={"model": "together-ai/deepseek-v3.2", "input": "hi"},
            headers={"authorization": "Bearer sk-acme"},
            timeout=10,
        )
        assert pinned_on_responses.json()["error"]["code"] == "routing_not_enforceable"
        # LLMGateway's routes that are not in the endpoint table are refused, never guessed.
        for path in ("/v1/ai/generate", "/v1/ocr", "/v1/videos", "/mcp"):
            refused = httpx.post(
                strict.url + path, json={"model": "gpt-4o"}, headers={"authorization": "Bearer sk-acme"}
            )
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "endpoint_not_covered"), path
        assert len(strict.received()) == 1
    finally:
        strict.reconfigure_authz(naming_profile="litellm")
