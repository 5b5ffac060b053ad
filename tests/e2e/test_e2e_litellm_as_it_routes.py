"""LiteLLM as it really routes: a platform team's config (Azure in the EU, OpenAI, DeepSeek,
fallbacks, default_fallbacks, a wildcard route, a key header of its own) behind Envoy, the
catalog imported from that config, and an EU-residency policy.

The real LiteLLM proxy calls a loopback capture server for every provider, so each test sees
where a prompt went. A name LiteLLM does not route is first sent straight to LiteLLM (which
serves it from default_fallbacks, at OpenAI), then through Envoy (refused, nothing sent). Every
alternative authz suggests is sent as suggested and served by a compliant deployment, and every
model group's preview verdict is what Envoy then does.
"""

from __future__ import annotations

import httpx
import pytest

from support.litellm import EU_POLICY, SOC2_GDPR_NO_DEEPSEEK, eu_config, stack_behind_litellm, start_litellm

pytestmark = pytest.mark.e2e
# TEAM_KEY is LiteLLM's master key (it serves what authz lets through); EU_KEY is only authz's:
# every group is blocked for that org, so none of its requests may reach LiteLLM.
EU_KEY, TEAM_KEY = "sk-eu-org", "sk-team-org"
POLICIES = {EU_KEY: ("eu-org", EU_POLICY), TEAM_KEY: ("team-org", SOC2_GDPR_NO_DEEPSEEK)}


@pytest.fixture(scope="module")
def litellm(capture, tmp_path_factory):
    config = tmp_path_factory.mktemp("litellm-as-it-routes") / "config.yaml"
    config.write_text(eu_config(f"http://127.0.0.1:{capture.port}", master=TEAM_KEY))
    proc, port = start_litellm(config)
    yield port, config
    proc.stop()


@pytest.fixture(scope="module")
def stack(litellm, tmp_path_factory):
    port, config = litellm
    s, _ = stack_behind_litellm(tmp_path_factory.mktemp("stack"), config, port, EU_KEY, "eu-org", EU_POLICY)
    s.admin.set_plan("team-org", "enterprise")
    s.admin.set_policy("team-org", **SOC2_GDPR_NO_DEEPSEEK)
    s.admin.add_api_key(TEAM_KEY, "team-org")
    s.wait_ready()
    yield s
    s.stop()


def send(base: str, key: str, model: str, path: str = "/v1/chat/completions", **headers: str) -> httpx.Response:
    body = (
        {"model": model, "input": "a text"}
        if path.endswith("embeddings")
        else {
            "model": model,
            "messages": [{"role": "user", "content": "the prompt"}],
        }
    )
    return httpx.post(base + path, json=body, headers={"authorization": f"Bearer {key}", **headers}, timeout=60)


def reached(capture, action) -> tuple[httpx.Response, list[str]]:
    before = len(capture.providers())
    answer = action()
    return answer, capture.providers()[before:]


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("azure-swedencentral/gpt-4o", "/v1/chat/completions"),
        ("aws-bedrock-eu-central-1/claude-sonnet", "/v1/chat/completions"),
        ("google-vertex-europe-west4/gemini-pro", "/v1/chat/completions"),
        ("azure-westeurope/text-embedding-3-large", "/v1/embeddings"),
    ],
)
def test_the_newcomers_wrongful_allows_are_refused(stack, litellm, capture, name, path):
    _, direct = reached(capture, lambda: send(f"http://127.0.0.1:{litellm[0]}", TEAM_KEY, name, path))
    assert direct == ["openai"], "LiteLLM must really send such a name to default_fallbacks (OpenAI, in the US)"
    refused, through = reached(capture, lambda: send(stack.url, EU_KEY, name, path))
    assert refused.status_code == 403 and through == []
    error = refused.json()["error"]
    assert error["code"] == "unknown_model" and "not a model name the litellm gateway routes" in error["message"]


def test_a_deny_names_the_default_fallback_that_fails(stack, capture):
    refused, through = reached(capture, lambda: send(stack.url, EU_KEY, "gpt-4o-eu"))
    assert refused.status_code == 403 and through == []
    error = refused.json()["error"]
    assert error["code"] == "routing_not_enforceable"
    [openai] = [b for b in error["blocked_providers"] if b["provider"] == "openai"]
    assert openai["reached_through"] == "router_settings.default_fallbacks -> gpt-4o-mini"
    assert "reached through router_settings.default_fallbacks -> gpt-4o-mini" in error["message"]


def test_a_wildcard_routes_fallback_chain_is_judged(stack, capture):
    refused, through = reached(capture, lambda: send(stack.url, TEAM_KEY, "anthropic/claude-sonnet-4-5"))
    assert refused.status_code == 403 and through == []
    vias = {b["provider"]: b.get("reached_through") for b in refused.json()["error"]["blocked_providers"]}
    assert vias["deepseek"] == "router_settings.fallbacks -> gpt-4o-fb, then router_settings.fallbacks -> deepseek-chat"


@pytest.mark.parametrize(
    ("path", "served_by"), [("/v1/chat/completions", {"azure", "openai"}), ("/v1/embeddings", {"azure", "openai"})]
)
def test_every_suggested_alternative_is_served_by_a_compliant_deployment(stack, capture, path, served_by):
    refused = send(stack.url, TEAM_KEY, "deepseek-chat", path)
    assert refused.status_code == 403
    alternatives = refused.json()["error"]["alternatives"]
    assert alternatives, "a blocked request names what to send instead"
    for name in alternatives:
        answer, through = reached(capture, lambda name=name: send(stack.url, TEAM_KEY, name, path))
        assert answer.status_code == 200, (name, answer.text)
        # LiteLLM may fall back (default_fallbacks: OpenAI): wherever it went was judged and complies.
        assert through and set(through) <= served_by, (name, through)


@pytest.mark.parametrize("key", [EU_KEY, TEAM_KEY])
def test_each_groups_preview_verdict_is_what_envoy_does(stack, capture, key):
    org, policy = POLICIES[key]
    preview = httpx.post(
        f"{stack.authz_http}/v1/orgs/{org}/policy:preview",
        headers={"authorization": f"Bearer {stack.token(org)}"},
        json={"policy": policy},
        timeout=30,
    )
    assert preview.status_code == 200, preview.text
    names = preview.json()["gateway_names"]
    assert {n["name"] for n in names} >= {"gpt-4o-eu", "embed-eu", "gpt-4o-mini", "deepseek-chat", "gpt-4o-fb"}
    for n in names:
        model = n["name"].replace("*", "claude-sonnet-4-5")
        path = "/v1/embeddings" if n["name"] == "embed-eu" else "/v1/chat/completions"
        answer, through = reached(capture, lambda model=model, path=path: send(stack.url, key, model, path))
        assert (answer.status_code == 200) is bool(n.get("allowed")), (n, answer.text)
        if answer.status_code == 200:
            blocked = {b["provider"] for b in n.get("blocked", [])}
            assert through and not blocked, (n, through)
        else:
            assert through == [] and answer.json()["error"]["code"] == n["reason"]


def test_a_key_in_litellms_own_key_header_is_read_with_no_setting(stack, capture):
    """general_settings.litellm_key_header_name: X-Gateway-Key. LiteLLM reads the key there first;
    the imported catalog makes authz read it too, so a second org's key beside it is refused."""
    refused, through = reached(capture, lambda: send(stack.url, TEAM_KEY, "gpt-4o-mini", **{"x-gateway-key": EU_KEY}))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "credential_conflict"
    assert through == []


def test_an_authorization_scheme_authz_does_not_read_beside_a_key_is_a_conflict(stack, capture):
    """LiteLLM reads `Basic <key>` as a key too (user_api_key_auth.py, get_bearer_token)."""
    headers = {"authorization": "Basic c2stZXUtb3Jn", "x-api-key": TEAM_KEY}
    before = len(capture.providers())
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "the prompt"}]}
    refused = httpx.post(stack.url + "/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "credential_conflict"
    assert capture.providers()[before:] == []
