"""A LiteLLM proxy config read as LiteLLM routes it: model_name -> the providers of its
deployments, unknown providers kept (and failing closed), aliases, wildcards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from authz.policy import catalog as catalog_mod
from authz.policy.litellm_config import ConfigError, import_config, provider_of

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
        "claude-sonnet-4.5": ["aws-bedrock"],
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

    assert authz("catalog", "load", str(SAMPLE)).returncode == 0
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
