"""A LiteLLM proxy config read as LiteLLM routes it: model_name -> the providers of its
deployments, unknown providers kept (and failing closed), aliases, wildcards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from authz.policy import catalog as catalog_mod
from authz.policy.imports.litellm_config import ConfigError, import_config, provider_of

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "catalog" / "sample-catalog.json"
CONFIG = ROOT / "tests" / "support" / "data" / "litellm-config.yaml"


def base():
    return catalog_mod.parse(SAMPLE.read_text())


def test_models_are_the_deployments_litellm_would_route_to():
    result = import_config(CONFIG.read_text(), base())
    models = {m: list(s.providers) for m, s in result.catalog.models.items()}
    assert models == {
        "gpt-4o": ["azure", "openai"],
        "llama-3.3-70b-instruct": ["together", "fireworks"],
        "claude-sonnet-4.5": ["aws-bedrock-eu-central-1"],  # its aws_region_name, from AWS's region table
        "text-embedding-3-small": ["openai"],
        "house-llama": ["ollama"],
    }
    aliases = dict(result.catalog.model_aliases)
    assert aliases["gpt-4"] == "gpt-4o"  # router_settings.model_group_alias
    assert "deepseek-ai/DeepSeek-V3.2" not in aliases  # the base's alias of a model LiteLLM does not serve
    assert result.unknown_providers == {"ollama": ["house-llama"]}
    assert result.wildcards == ["openai/*"]
    # The provider data comes from the base catalog; the unknown provider has none.
    assert result.catalog.providers["azure"] == base().providers["azure"]
    assert not result.catalog.providers["ollama"].HasField("data_policy")


@pytest.mark.parametrize(
    ("params", "provider"),
    [
        ({"model": "azure/gpt-4o"}, "azure"),
        ({"model": "gpt-4o-mini"}, "openai"),
        ({"model": "claude-3-haiku"}, "anthropic"),
        ({"model": "my-model", "custom_llm_provider": "together_ai"}, "together_ai"),
        ({"model": "llama3"}, None),
        ({}, None),
    ],
)
def test_provider_of_a_deployment(params, provider):
    assert provider_of(params) == provider


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_list: 3", "model_list"),
        ("[1, 2]", "model_list"),
        ("model_list:\n  - litellm_params: {}\n", "model_name"),
        ("model_list: [\n", "not valid YAML"),
        ("model_list:\n  - model_name: x\n    litellm_params: {model: llama3}\n", "no deployment"),
    ],
)
def test_a_config_that_cannot_be_read_is_refused_naming_why(text, message):
    with pytest.raises(ConfigError, match=message):
        import_config(text, base())


def test_cli_import_then_diff_against_the_stored_catalog(redis_server, tmp_path):
    env = {"AUTHZ_REDIS_URL": redis_server.url, "AUTHZ_KEY_PREFIX": "litellm-cli:", "PATH": "/usr/bin:/bin"}

    def authz(*args):
        return subprocess.run(
            [sys.executable, "-m", "authz", *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert authz("catalog", "load", "--init", str(SAMPLE)).returncode == 0
    out = tmp_path / "imported.json"
    result = authz("catalog", "import", "--from", "litellm", str(CONFIG), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "provider 'ollama' is not in the catalog (used by house-llama)" in result.stderr
    assert "wildcard route 'openai/*'" in result.stderr
    assert json.loads(out.read_text())["models"]["gpt-4o"]["providers"] == ["azure", "openai"]
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.hset(
        "litellm-cli:org:acme",
        "policy",
        json.dumps({"enabled": True, "require_gdpr": True, "require_no_prompt_logging": True}),
    )
    diff = authz("catalog", "diff", str(out))
    assert diff.returncode == 0, diff.stderr
    report = json.loads(diff.stdout)
    assert "house-llama" in report["models_added"] and "kimi-k2" in report["models_removed"]
    acme = report["orgs"]["acme"]
    assert acme["models_changed"]["llama-3.3-70b-instruct"]["after"] == ["together", "fireworks"]
    assert "ollama" not in acme["providers_now_allowed"]  # no published data: blocked


SHIPPED = ROOT / "catalog" / "catalog.json"
ROUTED = """
model_list:
  - {model_name: gpt-4o, litellm_params: {model: azure/gpt-4o}}
  - {model_name: llama, litellm_params: {model: groq/llama-3.3-70b-versatile}}
  - {model_name: deepseek-v3.2, litellm_params: {model: deepseek/deepseek-chat}}
  - {model_name: qwen, litellm_params: {model: dashscope/qwen-plus}}
  - {model_name: claude, litellm_params: {model: "bedrock/eu.anthropic.claude-sonnet-4-5-20250929-v1:0"}}
  - {model_name: claude-us, litellm_params: {model: bedrock/anthropic.claude-sonnet-4-5, aws_region_name: us-east-1}}
  - {model_name: "groq/*", litellm_params: {model: "groq/*"}}
  - {model_name: "*", litellm_params: {model: "deepseek/*"}}
router_settings:
  model_group_alias: {"gpt-4": "gpt-4o"}
  fallbacks: [{"gpt-4": ["llama"]}, {"llama": ["qwen"]}]
litellm_settings:
  context_window_fallbacks: [{"claude": ["claude-us"]}]
"""


def shipped():
    return catalog_mod.parse(SHIPPED.read_text())


def test_fallbacks_from_every_section_are_followed_through_aliases_and_chains():
    models = {m: list(s.providers) for m, s in import_config(ROUTED, shipped()).catalog.models.items()}
    # gpt-4o (through its alias gpt-4) -> llama -> qwen: every provider on the way can serve it.
    assert models["gpt-4o"] == ["azure", "groq", "alibaba"]
    assert models["llama"] == ["groq", "alibaba"]
    assert models["claude"] == ["aws-bedrock-eu", "aws-bedrock-us-east-1"]  # regions, and litellm_settings
    assert models["deepseek-v3.2"] == ["deepseek"]


def test_generic_and_default_fallbacks_reach_every_group_and_route():
    config = ROUTED + "  default_fallbacks: [deepseek-v3.2]\n"
    catalog = import_config(config, shipped()).catalog
    assert all("deepseek" in s.providers for s in catalog.models.values())
    assert {r.pattern: list(r.providers) for r in catalog.routes} == {"groq/*": ["groq", "deepseek"], "*": ["deepseek"]}


def test_wildcard_routes_and_a_catch_all_are_kept_in_litellm_order():
    catalog = import_config(ROUTED, shipped()).catalog
    index = catalog_mod.CatalogIndex.build(catalog)
    assert catalog.gateway == "litellm"
    assert index.route("groq/llama-3.1-8b-instant") == ("groq",)
    # A name that is no group goes to the catch-all, pinned-looking or not.
    assert index.route("azure/gpt-4o") == ("deepseek",) and index.route("gpt-4o-mini") == ("deepseek",)


@pytest.mark.parametrize(
    "setting",
    ["router_settings.routing_groups", "litellm_settings.model_alias_map", "general_settings.pass_through_endpoints"],
)
def test_a_routing_setting_the_import_does_not_read_fails_it_unless_allowed(setting):
    section, _, key = setting.partition(".")
    config = ROUTED.replace("litellm_settings:", f"{section}:\n  {key}: {{}}\nlitellm_settings:", 1)
    if section == "litellm_settings":
        config = ROUTED + f"  {key}: {{}}\n"
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        import_config(config, shipped())
    assert import_config(config, shipped(), [setting]).catalog.models


def test_settings_that_only_tune_the_choice_within_a_group_import_quietly():
    config = ROUTED.replace(
        "router_settings:", "router_settings:\n  routing_strategy: latency-based-routing\n  num_retries: 2"
    )
    assert import_config(config + "  drop_params: true\n  success_callback: [langfuse]\n", shipped()).catalog.models


def test_every_litellm_provider_prefix_the_shipped_catalog_knows_imports():
    from authz.policy.gateways.litellm import PROVIDERS as LITELLM_PROVIDERS

    base = shipped()
    names = catalog_mod.CatalogIndex.build(base).names
    known = {prefix: names.provider(prefix, "litellm") for prefix in LITELLM_PROVIDERS}
    known = {prefix: provider for prefix, provider in known.items() if provider is not None}
    assert "together_ai" in known and "dashscope" in known
    config = "model_list:\n" + "".join(
        f"  - {{model_name: m-{i}, litellm_params: {{model: {prefix}/some-model}}}}\n" for i, prefix in enumerate(known)
    )
    result = import_config(config, base)
    assert not result.unknown_providers
    assert [result.catalog.models[f"m-{i}"].providers[0] for i in range(len(known))] == list(known.values())


def test_an_imported_catalog_judges_where_litellm_routes_and_suggests_names_it_serves():
    from authz.check.decision import STRICT, Gateway, decide
    from authz.check.request import ReadConfig, read
    from authz.policy import rules as policy_rules
    from authz.policy.orgs import OrgPolicy
    from authz.reasons import Reason
    from authz.v1 import policy_pb2
    from support.checkrequests import check_request

    p = policy_pb2.CompliancePolicy(enabled=True, require_gdpr=True, require_no_prompt_training=True)
    org = OrgPolicy("acme", 1, policy_rules.rules_of(p), True, True)
    index = catalog_mod.CatalogIndex.build(import_config(ROUTED, shipped()).catalog)
    unmet = index.table(org.rules).unmet
    assert not unmet["azure"] and not unmet["groq"] and unmet["deepseek"] and unmet["alibaba"]

    def judge(model):
        facts = read(check_request({"model": model, "messages": []}, {"authorization": "Bearer k"}), ReadConfig())
        return decide(facts, org, index, Gateway(routing=STRICT, naming="litellm"))

    # azure/gpt-4o is no group: the catch-all sends it to DeepSeek, whatever its prefix says.
    routed = judge("azure/gpt-4o")
    assert routed.reason is Reason.PROVIDER_NOT_COMPLIANT and routed.provider == "deepseek"
    assert judge("groq/llama-3.1-8b-instant").reason is Reason.COMPLIANT  # the groq/* route
    # gpt-4o falls back to llama, then qwen (alibaba): not every candidate complies.
    blocked = judge("gpt-4o")
    assert blocked.reason is Reason.ROUTING_NOT_ENFORCEABLE
    # Suggested: names LiteLLM serves as they are, a pinned one only where a route sends it there.
    assert "azure/gpt-4o" not in blocked.alternatives
    assert blocked.alternatives and all(judge(name).reason is Reason.COMPLIANT for name in blocked.alternatives)
    assert "groq/llama-3.3-70b" not in blocked.alternatives or index.route("groq/llama-3.3-70b") == ("groq",)


def test_a_custom_key_header_is_carried_by_the_catalog():
    """LiteLLM reads a key from litellm_key_header_name before any other: the imported catalog
    names the header, and authz reads it as a credential with no setting to add."""
    config = ROUTED.replace(
        "router_settings:", "general_settings:\n  litellm_key_header_name: X-Team-Key\nrouter_settings:"
    )
    result = import_config(config, shipped())
    assert list(result.catalog.credential_headers) == ["x-team-key"]
    assert catalog_mod.CatalogIndex.build(result.catalog).credential_headers == ("x-team-key",)
    assert any("authz reads a key there too" in n for n in result.notes), result.notes


def test_a_key_header_that_is_no_header_name_fails_the_import():
    config = ROUTED.replace(
        "router_settings:", "general_settings:\n  litellm_key_header_name: 'X Team: Key'\nrouter_settings:"
    )
    with pytest.raises(ConfigError, match="no HTTP header name"):
        import_config(config, shipped())


def test_a_wildcard_routes_fallback_chain_is_followed():
    """A group reached through a route's fallbacks brings its own fallbacks (LiteLLM's
    run_async_fallback calls async_function_with_fallbacks again for each fallback)."""
    config = ROUTED.replace(
        '  fallbacks: [{"gpt-4": ["llama"]}, {"llama": ["qwen"]}]',
        '  fallbacks: [{"groq/*": ["gpt-4o"]}, {"gpt-4o": ["deepseek-v3.2"]}]',
    )
    catalog = import_config(config, shipped()).catalog
    [route] = [r for r in catalog.routes if r.pattern == "groq/*"]
    assert list(route.providers) == ["groq", "azure", "deepseek"]
    assert dict(route.reached_through) == {
        "azure": "router_settings.fallbacks -> gpt-4o",
        "deepseek": "router_settings.fallbacks -> gpt-4o, then router_settings.fallbacks -> deepseek-v3.2",
    }


def test_default_fallbacks_are_named_where_they_reach_a_provider():
    catalog = import_config(ROUTED + "  default_fallbacks: [deepseek-v3.2]\n", shipped()).catalog
    assert catalog.models["llama"].reached_through["deepseek"] == (
        "litellm_settings.default_fallbacks -> deepseek-v3.2"
    )
    assert "groq" not in catalog.models["llama"].reached_through  # its own deployment


def test_a_group_takes_what_its_model_produces():
    config = ROUTED.replace(
        "  - {model_name: llama,",
        "  - {model_name: embed, litellm_params: {model: azure/text-embedding-3-large}}\n"
        "  - {model_name: speech, litellm_params: {model: azure/my-tts}, model_info: {mode: audio_speech}}\n"
        "  - {model_name: llama,",
    )
    models = import_config(config, shipped()).catalog.models
    assert list(models["embed"].output) == ["embedding"]  # what the base catalog publishes
    assert list(models["speech"].output) == ["audio"]  # model_info.mode


def test_a_bedrock_deployment_in_eu_central_1_passes_an_eu_residency_policy():
    """Its region is the catalog's regional entry (processing in the EU), not the parent whose
    region is unknown: a residency policy no longer blocks every regional deployment."""
    from authz.policy import rules
    from authz.v1 import policy_pb2

    config = (
        "model_list:\n  - {model_name: claude, litellm_params: "
        "{model: bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0, aws_region_name: eu-central-1}}\n"
    )
    catalog = import_config(config, shipped()).catalog
    assert list(catalog.models["claude"].providers) == ["aws-bedrock-eu-central-1"]
    table = catalog_mod.CatalogIndex.build(catalog).table(
        rules.rules_of(policy_pb2.CompliancePolicy(enabled=True, data_residency=["eu"]))
    )
    assert table.for_model("claude").allowed == ("aws-bedrock-eu-central-1",)


@pytest.mark.parametrize(
    ("provider", "params", "entry", "region"),
    [
        ("azure", {"model": "azure/gpt-4o", "region_name": "swedencentral"}, "azure-swedencentral", "eu"),
        (
            "azure",
            {"model": "azure/gpt-4o", "api_base": "https://m-1.eastus2.models.ai.azure.com"},
            "azure-eastus2",
            "us",
        ),
        ("azure", {"model": "azure/gpt-4o", "region_name": "uksouth"}, "azure-uksouth", "uk"),
        (
            "vertex",
            {"model": "vertex_ai/gemini-2.5-pro", "vertex_location": "europe-west4"},
            "google-vertex-europe-west4",
            "eu",
        ),
        (
            "vertex",
            {"model": "vertex_ai/gemini-2.5-pro", "vertex_location": "europe-west2"},
            "google-vertex-europe-west2",
            "uk",
        ),
        (
            "bedrock",
            {"model": "bedrock/apac.anthropic.claude-sonnet-4-5-v1:0", "aws_region_name": "ap-northeast-1"},
            "aws-bedrock-apac",
            "apac",
        ),
    ],
)
def test_azure_and_vertex_regions_come_from_the_clouds_region_tables(provider, params, entry, region):
    """A region the shipped catalog has no entry for becomes one: the provider's data, with the
    processing region the cloud's own table gives (a cross-region profile: its whole area)."""
    import yaml

    config = yaml.safe_dump({"model_list": [{"model_name": "m", "litellm_params": params}]})
    catalog = import_config(config, shipped()).catalog
    assert list(catalog.models["m"].providers) == [entry]
    made = catalog.providers[entry]
    assert list(made.data_policy.processing_regions) == [region]
    assert made.region_of and made.data_policy.soc2 == catalog.providers[made.region_of].data_policy.soc2
    assert "processing_regions" in made.data_policy.evidence


@pytest.mark.parametrize(
    "params",
    [
        {"model": "vertex_ai/gemini-2.5-pro", "vertex_location": "mars-north1"},
        {"model": "azure/gpt-4o", "api_base": "https://my-resource.openai.azure.com"},
        {"model": "vertex_ai/gemini-2.5-pro"},
    ],
)
def test_a_region_no_table_knows_stays_the_provider_whose_region_is_unknown(params):
    import yaml

    config = yaml.safe_dump({"model_list": [{"model_name": "m", "litellm_params": params}]})
    result = import_config(config, shipped())
    (provider,) = result.catalog.models["m"].providers
    assert not result.catalog.providers[provider].region_of
    assert not result.catalog.providers[provider].data_policy.processing_regions
    if "mars-north1" in str(params):
        assert any("mars-north1" in n and "no region authz knows" in n for n in result.notes), result.notes


def test_cli_check_routing_judges_every_group_of_a_config_for_every_org_of_a_policies_file(tmp_path):
    """A CI step beside a LiteLLM config change: exit 1 when a group would be blocked, naming the
    fallback that reaches the failing provider; 0 when every name passes."""
    from support.litellm import EU_POLICY, SOC2_GDPR_NO_DEEPSEEK, eu_config

    config = tmp_path / "config.yaml"
    config.write_text(eu_config("http://127.0.0.1:1"))
    policies = tmp_path / "policies.yaml"
    policies.write_text(
        json.dumps({"orgs": {"eu-org": {"policy": EU_POLICY}, "team": {"policy": SOC2_GDPR_NO_DEEPSEEK}}})
    )

    def check(*extra):
        return subprocess.run(
            [sys.executable, "-m", "authz", "catalog", "check-routing", "--from", "litellm", str(config), str(policies)]
            + ["--base", str(SHIPPED), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )

    blocked = check()
    assert blocked.returncode == 1, blocked.stderr
    assert "org eu-org:" in blocked.stdout and "org team:" in blocked.stdout
    assert "BLOCK  gpt-4o-eu [routing_not_enforceable]: openai (data_residency) reached through " in blocked.stdout
    assert "router_settings.default_fallbacks -> gpt-4o-mini" in blocked.stdout
    assert "ALLOW  gpt-4o-eu" in blocked.stdout.partition("org team:")[2]
    config.write_text(eu_config("http://127.0.0.1:1").replace("  default_fallbacks: [gpt-4o-mini]\n", ""))
    policies.write_text(json.dumps({"orgs": {"team": {"policy": {"enabled": True, "provider_denylist": ["xai"]}}}}))
    passing = check()
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "every name passes" in passing.stderr
    typo = check("--org", "teams")
    assert typo.returncode == 2 and "did you mean 'team'" in typo.stderr


MINIMAL = """
model_list:
  - {model_name: llama, litellm_params: {model: groq/llama-3.3-70b-versatile}}
  - {model_name: deepseek-v3.2, litellm_params: {model: deepseek/deepseek-chat}}
  - {model_name: qwen, litellm_params: {model: dashscope/qwen-plus}}
router_settings:
"""


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("  default_fallbacks: deepseek-v3.2", "router_settings.default_fallbacks: a list of model names"),
        ("  default_fallbacks: [3]", "router_settings.default_fallbacks: a list of model names"),
        ("  fallbacks: {llama: [qwen]}", "router_settings.fallbacks: a list of {model_group: [fallback groups]}"),
        (
            "  fallbacks: [llama]",
            "router_settings.fallbacks: each entry maps a model group to its fallbacks, not 'llama'",
        ),
        ("  fallbacks: [{llama: {qwen: 1}}]", "router_settings.fallbacks: 'llama' must map to a list of model names"),
        ("  fallbacks: [{3: [qwen]}]", "router_settings.fallbacks: 3 must map to a list of model names"),
    ],
)
def test_a_fallback_list_litellm_would_not_read_is_refused_naming_where(settings, message):
    with pytest.raises(ConfigError) as refused:
        import_config(MINIMAL + settings + "\n", shipped())
    assert str(refused.value) == message


def test_every_fallback_list_adds_to_the_others():
    """A bare-string target, a "*" entry and default_fallbacks each add names; none replaces another."""
    config = MINIMAL + '  fallbacks: [{llama: qwen}, {"*": [deepseek-v3.2]}]\n  default_fallbacks: [llama]\n'
    models = {m: list(s.providers) for m, s in import_config(config, shipped()).catalog.models.items()}
    assert models["llama"] == ["groq", "alibaba", "deepseek"]
    assert models["qwen"] == ["alibaba", "deepseek", "groq"]
    config = MINIMAL + '  fallbacks: [{"*": [qwen]}, {"*": [deepseek-v3.2]}]\n'
    models = {m: list(s.providers) for m, s in import_config(config, shipped()).catalog.models.items()}
    assert models["llama"] == ["groq", "alibaba", "deepseek"]
    # default_fallbacks before another section's lists: both still read.
    config = (
        MINIMAL
        + "  default_fallbacks: [qwen]\nlitellm_settings:\n  context_window_fallbacks: [{llama: [deepseek-v3.2]}]\n"
    )
    models = {m: list(s.providers) for m, s in import_config(config, shipped()).catalog.models.items()}
    assert set(models["llama"]) == {"groq", "deepseek", "alibaba"}
