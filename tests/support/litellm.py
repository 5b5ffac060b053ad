"""A real LiteLLM proxy for the e2e tests (offline: mock or loopback deployments, the local cost
map, no Hugging Face lookups), and the catalog `authz catalog import` makes from its config."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from devstack.stack import Proc, Stack, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
SHIPPED_CATALOG = ROOT / "catalog" / "catalog.json"


def start_litellm(config: Path, port: int | None = None, **env: str) -> tuple[Proc, int]:
    """LiteLLM's proxy on `config` (its log beside it), once it answers; `env` adds variables."""
    assert LITELLM.exists(), "make test installs LiteLLM's proxy into .venv-litellm (make litellm)"
    port = port or free_port()
    environment = dict(
        os.environ,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        HF_HUB_OFFLINE="1",  # offline: counting a llama model's tokens must not retry the Hub for 23 s
        **env,
    )
    proc = Proc(
        "litellm",
        [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        config.parent / "litellm.log",
        env=environment,
    ).start()

    def up() -> bool:
        try:
            return proc.check_alive() and httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=2).is_success
        except httpx.HTTPError:
            return False

    wait_until(up, 120, "LiteLLM proxy")
    return proc, port


def import_catalog(config: Path, out: Path, env: Mapping[str, str], base: Path | None = SHIPPED_CATALOG) -> None:
    """`authz catalog import --from litellm CONFIG` into `out` (on `base`, else the stored catalog)."""
    command = [sys.executable, "-m", "authz", "catalog", "import", "--from", "litellm", str(config), "--out", str(out)]
    cli = subprocess.run(
        command + (["--base", str(base)] if base else []),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr


def stack_behind_litellm(
    workdir: Path, config: Path, litellm_port: int, master_key: str, org: str, policy: Mapping[str, Any]
) -> tuple[Stack, Path]:
    """The stack (strict routing, LiteLLM's names) in front of a LiteLLM proxy, the catalog
    imported from the proxy's own config, and `org`'s `policy` for the proxy's master key.
    Returns the stack and the imported catalog file."""
    stack = Stack.start(
        workdir,
        upstream_port=litellm_port,
        authz_settings={"naming_profile": "litellm", "routing_enforcement": "strict"},
    )
    imported = workdir / "catalog.json"
    import_catalog(config, imported, stack.authz_env)
    stack.admin.load_catalog(imported)
    stack.admin.set_plan(org, "enterprise")
    stack.admin.set_policy(org, **policy)
    stack.admin.add_api_key(master_key, org)
    return stack, imported


# A platform team's LiteLLM config for an EU-residency policy (issue: LiteLLM as it really routes):
# Azure in Sweden and West Europe, OpenAI and DeepSeek, a group whose fallbacks reach DeepSeek, a
# wildcard route whose fallback chain does too, default_fallbacks to OpenAI (which any name
# LiteLLM does not route reaches), and a key header of its own. Every deployment calls the
# capture server at `up` (one path prefix per provider); `master` is LiteLLM's master key.
EU_POLICY = {
    "enabled": True,
    "require_soc2": True,
    "require_gdpr": True,
    "data_residency": ["eu"],
    "provider_denylist": ["deepseek"],
}
SOC2_GDPR_NO_DEEPSEEK = {"enabled": True, "require_soc2": True, "require_gdpr": True, "provider_denylist": ["deepseek"]}


def eu_config(up: str, master: str = "sk-litellm-master") -> str:
    azure = f'api_base: "{up}/azure", api_key: k, api_version: "2024-06-01"'
    return f"""
model_list:
  - model_name: gpt-4o-eu
    litellm_params: {{model: azure/gpt-4o, region_name: swedencentral, {azure}}}
  - model_name: embed-eu
    litellm_params: {{model: azure/text-embedding-3-large, region_name: westeurope, {azure}}}
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{up}/openai/v1", api_key: k}}
  - model_name: deepseek-chat
    litellm_params: {{model: deepseek/deepseek-chat, api_base: "{up}/deepseek/v1", api_key: k}}
  - model_name: gpt-4o-fb
    litellm_params: {{model: azure/gpt-4o, region_name: swedencentral, {azure}}}
  - model_name: "anthropic/*"
    litellm_params: {{model: "anthropic/*", api_base: "{up}/anthropic", api_key: k}}
router_settings:
  num_retries: 0
  fallbacks: [{{"gpt-4o-fb": ["deepseek-chat"]}}, {{"anthropic/*": ["gpt-4o-fb"]}}]
  default_fallbacks: [gpt-4o-mini]
general_settings:
  master_key: {master}
  litellm_key_header_name: X-Gateway-Key
"""
