"""Model names as each gateway spells them: profiles and catalog aliases only add exact
mappings; unknown names and look-alikes stay unknown (403 unknown_model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_decision import org_with

from authz.check.decision import AUTOMATIC, HEADER, PINNED, Gateway, decide
from authz.check.request import ReadConfig, read
from authz.policy import catalog as catalog_mod
from authz.policy.naming import resolve
from authz.reasons import Reason
from support.checkrequests import check_request
from support.policies import DEMO_POLICY

SAMPLE = Path(__file__).resolve().parents[2] / "catalog" / "sample-catalog.json"
INDEX = catalog_mod.CatalogIndex.build(catalog_mod.parse(SAMPLE.read_text()))


def judge(model: str, profile: str):
    facts = read(check_request({"model": model}), ReadConfig())
    return decide(facts, org_with(**DEMO_POLICY), INDEX, Gateway(routing=HEADER, naming=profile))


@pytest.mark.parametrize(
    ("profile", "name", "expected"),
    [
        ("native", "together/llama-3.3-70b-instruct", ("together", "llama-3.3-70b-instruct")),
        ("native", "together.ai/llama-3.3-70b-instruct", ("together", "llama-3.3-70b-instruct")),  # catalog alias
        ("native", "meta-llama/llama-3.3-70b-instruct", ("", "llama-3.3-70b-instruct")),  # catalog alias
        ("native", "together_ai/llama-3.3-70b-instruct", ("", "together_ai/llama-3.3-70b-instruct")),
        ("litellm", "together_ai/llama-3.3-70b-instruct", ("together", "llama-3.3-70b-instruct")),
        ("litellm", "bedrock/claude-sonnet-4.5", ("aws-bedrock", "claude-sonnet-4.5")),
        ("litellm", "vertex_ai/gemini-2.5-pro", ("google-vertex", "gemini-2.5-pro")),
        ("litellm", "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", ("together", "llama-3.3-70b-instruct")),
        ("litellm", "gemini/gemini-2.5-pro", ("", "gemini/gemini-2.5-pro")),  # google-ai-studio not in this catalog
        ("openrouter", "meta-llama/llama-3.3-70b-instruct", ("", "llama-3.3-70b-instruct")),
        ("openrouter", "deepseek/deepseek-v3.2", ("", "deepseek-v3.2")),  # an author, not a pin
        ("llmgateway", "together-ai/deepseek-v3.2", ("together", "deepseek-v3.2")),
        ("llmgateway", "google-vertex/gemini-2.5-pro", ("google-vertex", "gemini-2.5-pro")),
        ("portkey", "together-ai/llama-3.3-70b-instruct", ("together", "llama-3.3-70b-instruct")),
        ("portkey", "vertex-ai/gemini-2.5-pro", ("google-vertex", "gemini-2.5-pro")),
        ("portkey", "together_ai/llama-3.3-70b-instruct", ("", "together_ai/llama-3.3-70b-instruct")),  # LiteLLM's id
    ],
)
def test_each_profile_maps_its_spelling_onto_catalog_ids(profile, name, expected):
    assert resolve(name, INDEX.names, profile) == expected


@pytest.mark.parametrize("profile", ["native", "litellm", "openrouter", "llmgateway"])
@pytest.mark.parametrize(
    "name",
    [
        "GPT-4o",
        "gpt-4o ",
        "gpt\u20114o",
        "together_ai/LLAMA-3.3-70b-instruct",
        "Together_AI/llama-3.3-70b-instruct",
        "meta-llama/llama-3.3-70b-instruct\u200b",
        "deepseek\u2215deepseek-v3.2",
        "together_ai\uff0fllama-3.3-70b-instruct",
    ],
)
def test_unknown_and_look_alike_names_stay_unknown_in_every_profile(profile, name):
    v = judge(name, profile)
    assert v.reason in (Reason.UNKNOWN_MODEL, Reason.PROVIDER_DOES_NOT_SERVE_MODEL), (name, v.reason)
    assert not v.allowed


def test_a_profile_judges_the_provider_the_gateway_will_call():
    assert judge("together_ai/llama-3.3-70b-instruct", "litellm").allowed_providers == ("together",)
    pinned_bad = judge("deepseek/deepseek-v3.2", "litellm")
    assert (pinned_bad.reason, pinned_bad.routing) == (Reason.PROVIDER_NOT_COMPLIANT, PINNED)
    # OpenRouter routes deepseek/deepseek-v3.2 among every host of the model: judged as automatic.
    routed = judge("deepseek/deepseek-v3.2", "openrouter")
    assert (routed.reason, routed.routing) == (Reason.COMPLIANT, AUTOMATIC)
    assert set(routed.allowed_providers) == {"together", "fireworks", "deepinfra"}


def test_catalog_aliases_are_validated():
    raw = json.loads(SAMPLE.read_text())
    for aliases, message in [
        ({"model_aliases": {"x": "nope"}}, "unknown model"),
        ({"model_aliases": {"gpt-4o": "kimi-k2"}}, "not a model id"),
        ({"model_aliases": {"openai/x": "gpt-4o"}}, "pinned request"),
        ({"provider_aliases": {"OpenAI": "openai"}}, "plain provider name"),
        ({"provider_aliases": {"oai": "nope"}}, "unknown provider"),
    ]:
        with pytest.raises(catalog_mod.CatalogError, match=message):
            catalog_mod.parse(json.dumps({**raw, **aliases}))


SHIPPED = catalog_mod.CatalogIndex.build(
    catalog_mod.parse((Path(__file__).resolve().parents[2] / "catalog" / "catalog.json").read_text())
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alibaba/qwen-plus:cn-beijing", ("alibaba-cn-beijing", "qwen-plus")),  # LLMGateway's region suffix
        ("alibaba/qwen-plus:us-virginia", ("alibaba-us-virginia", "qwen-plus")),
        ("aws-bedrock/claude-opus-4-6:eu-central-1", ("aws-bedrock-eu-central-1", "claude-opus-4-6")),
        ("alibaba/qwen-plus:mars", ("", "alibaba/qwen-plus:mars")),  # no such region: unknown, never the provider
        ("alibaba/qwen-plus", ("alibaba", "qwen-plus")),
    ],
)
def test_llmgateway_names_a_region_after_the_model(name, expected):
    assert resolve(name, SHIPPED.names, "llmgateway") == expected


def test_a_region_is_suggested_as_llmgateway_spells_it():
    from authz.policy.naming import spell

    assert spell("alibaba-cn-beijing", "qwen-plus", "llmgateway", "alibaba") == "alibaba/qwen-plus:cn-beijing"
    assert spell("alibaba-cn-beijing", "qwen-plus", "native", "alibaba") == "alibaba-cn-beijing/qwen-plus"
    facts = read(check_request({"model": "alibaba/qwen-plus"}), ReadConfig())
    org = org_with(enabled=True, data_residency=["us"])
    v = decide(facts, org, SHIPPED, Gateway(routing=HEADER, naming="llmgateway"))
    assert v.reason is Reason.PROVIDER_NOT_COMPLIANT and "alibaba/qwen-plus:us-virginia" in v.alternatives
