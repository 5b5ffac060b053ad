"""The policy the demo, `make run`, the benchmark and the tests use."""

from __future__ import annotations

from authz.v1 import policy_pb2

# SOC 2 or ISO 27001, GDPR, no training on prompts, no prompt logging. Under the sample catalog
# Azure and Google Vertex comply and DeepSeek (and its other hosts) do not; under the shipped one
# e.g. Azure, DeepInfra and Vertex comply, OpenAI (logs prompts) and DeepSeek do not.
DEMO_POLICY = dict(
    enabled=True,
    require_soc2=True,
    require_iso27001=True,
    certifications=policy_pb2.CERTIFICATION_MATCH_ANY,
    require_gdpr=True,
    require_no_prompt_training=True,
    require_no_prompt_logging=True,
)
