"""Regions read from endpoint host names (policy/cloud_regions.py): what a LiteLLM deployment's
`api_base` says about where a prompt is processed."""

from __future__ import annotations

import pytest

from authz.policy.imports import cloud_regions


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("swedencentral.api.cognitive.microsoft.com", "swedencentral"),
        ("my-model.SwedenCentral.models.ai.azure.com", "swedencentral"),  # DNS names ignore case
        ("my-model.swedencentral.models.ai.azure.com.", "swedencentral"),  # a fully qualified name
        ("my-model.mars.models.ai.azure.com", None),  # no Azure region
        ("contoso.openai.azure.com", None),  # a resource's host names no region
        ("swedencentral.api.cognitive.microsoft.com.evil.example", None),
    ],
)
def test_an_azure_host_names_its_region_or_none(host, region):
    assert cloud_regions.azure_region_of_host(host) == region


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("bedrock-runtime.eu-central-1.amazonaws.com", "eu"),
        ("bedrock-runtime.us-east-1.amazonaws.com.", "us"),
        ("europe-west4-aiplatform.googleapis.com", "eu"),
        ("swedencentral.api.cognitive.microsoft.com", "eu"),
        ("example.com", None),
    ],
)
def test_a_host_names_its_processing_region_code(host, code):
    assert cloud_regions.of_host(host) == code
