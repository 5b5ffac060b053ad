"""Data residency in front of a real LiteLLM proxy: each deployment judged by the region its
config names (Bedrock `aws_region_name`, Azure `region_name`, Vertex `vertex_location`), as
`authz catalog import --from litellm` maps it onto the shipped catalog's regional entries or the
clouds' region tables. The proxy answers with mock responses (offline); the official openai SDK
is the client, through Envoy.
"""

from __future__ import annotations

import json

import openai
import pytest

from support.litellm import stack_behind_litellm, start_litellm

MASTER = "sk-litellm-regions"
REGIONS_ONLY = {"enabled": True, "data_residency": ["eu"]}
pytestmark = pytest.mark.e2e

CONFIG = f"""
model_list:
  - model_name: claude-eu
    litellm_params: {{model: "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0", aws_region_name: eu-central-1,
                      mock_response: "from Frankfurt"}}
  - model_name: claude-us
    litellm_params: {{model: "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0", aws_region_name: us-east-1,
                      mock_response: "from Virginia"}}
  - model_name: gpt-eu
    litellm_params: {{model: azure/gpt-4o, region_name: swedencentral, api_base: "https://x.openai.azure.com",
                      api_key: k, api_version: "2024-06-01", mock_response: "from Sweden"}}
  - model_name: gemini-eu
    litellm_params: {{model: vertex_ai/gemini-2.5-pro, vertex_location: europe-west4, mock_response: "from NL"}}
  - model_name: gemini-anywhere
    litellm_params: {{model: vertex_ai/gemini-2.5-pro, mock_response: "from somewhere"}}
general_settings:
  master_key: {MASTER}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("litellm-regions")
    config = workdir / "config.yaml"
    config.write_text(CONFIG)
    proc, port = start_litellm(config)
    s, imported = stack_behind_litellm(workdir / "stack", config, port, MASTER, "company", REGIONS_ONLY)
    s.wait_ready()
    yield s, json.loads(imported.read_text())
    s.stop()
    proc.stop()


@pytest.mark.parametrize(
    ("group", "entry", "answer"),
    [
        ("claude-eu", "aws-bedrock-eu-central-1", "from Frankfurt"),  # the catalog's own regional entry
        ("gpt-eu", "azure-swedencentral", "from Sweden"),  # made from Azure's region table
        ("gemini-eu", "google-vertex-europe-west4", "from NL"),  # made from Google Cloud's
    ],
)
def test_a_deployment_in_the_eu_passes_an_eu_residency_policy(stack, group, entry, answer):
    s, catalog = stack
    assert catalog["models"][group]["providers"] == [entry]
    client = openai.OpenAI(base_url=s.url + "/v1", api_key=MASTER, max_retries=0)
    reply = client.chat.completions.create(model=group, messages=[{"role": "user", "content": "where are you?"}])
    assert reply.choices[0].message.content == answer


@pytest.mark.parametrize(
    ("group", "unknown"),
    [("claude-us", False), ("gemini-anywhere", True)],  # processed in the US; region not said: unknown
)
def test_a_deployment_elsewhere_or_nowhere_said_is_refused_before_litellm(stack, group, unknown):
    s, _ = stack
    client = openai.OpenAI(base_url=s.url + "/v1", api_key=MASTER, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model=group, messages=[{"role": "user", "content": "where are you?"}])
    error = refused.value.response.json()["error"]  # authz's deny body, as Envoy passed it on
    assert error["failed_requirements"] == ["data_residency"]
    assert (error["blocked_providers"][0]["unknown"] == ["data_residency"]) is unknown
