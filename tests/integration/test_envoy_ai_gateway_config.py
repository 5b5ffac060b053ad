"""Envoy AI Gateway manifests read as that gateway routes: every backendRef of a rule (weights
balance, priorities fail over) serves its models; a rule without a model match is a catch-all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from authz.check.decision import STRICT, Gateway, decide
from authz.check.request import ReadConfig, read
from authz.policy import catalog as catalog_mod
from authz.policy import rules as policy_rules
from authz.policy.imports.envoy_ai_gateway_config import ConfigError, import_config
from authz.policy.orgs import OrgPolicy
from authz.reasons import Reason
from authz.v1 import policy_pb2
from support.checkrequests import check_request
from support.policies import DEMO_POLICY

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "tests" / "support" / "data" / "envoy-ai-gateway.yaml"


def shipped():
    return catalog_mod.parse((ROOT / "catalog" / "catalog.json").read_text())


def test_every_backend_a_rule_can_fail_over_to_serves_its_model():
    result = import_config(MANIFESTS.read_text(), shipped())
    models = {m: list(s.providers) for m, s in result.catalog.models.items()}
    assert models == {
        "gpt-4o": ["azure", "openai"],  # priority 1 is a failover target: a candidate all the same
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0": ["aws-bedrock-eu-central-1"],  # the host's region
    }
    assert [(r.pattern, list(r.providers)) for r in result.catalog.routes] == [("*", ["vllm.llm.svc.cluster.local"])]
    assert result.unknown_providers == {"vllm.llm.svc.cluster.local": ["*"]}
    assert result.catalog.gateway == "envoy-ai-gateway"


def test_the_imported_catalog_judges_each_model_by_its_backends():
    index = catalog_mod.CatalogIndex.build(import_config(MANIFESTS.read_text(), shipped()).catalog)
    p = policy_pb2.CompliancePolicy(**DEMO_POLICY)
    org = OrgPolicy("acme", 1, policy_rules.rules_of(p), True, True)

    def judge(model):
        facts = read(check_request({"model": model, "messages": []}, {"authorization": "Bearer k"}), ReadConfig())
        return decide(facts, org, index, Gateway(routing=STRICT))

    gpt = judge("gpt-4o")
    assert gpt.reason is Reason.ROUTING_NOT_ENFORCEABLE  # OpenAI, the failover target, logs prompts
    assert gpt.alternatives == ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0",)
    assert judge("eu.anthropic.claude-sonnet-4-5-20250929-v1:0").reason is Reason.COMPLIANT
    # Any other model goes to the catch-all's self-hosted backend, which has no published data.
    other = judge("llama-3.3-70b-instruct")
    assert other.reason is Reason.PROVIDER_NOT_COMPLIANT and other.provider == "vllm.llm.svc.cluster.local"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace(
                "metadata: {name: openai, namespace: default}\nspec: {schema", "metadata: {name: gone}\nspec: {schema"
            ),
            "AIServiceBackend default/openai",
        ),
        (
            lambda t: t.replace(
                "type: Exact, name: x-ai-eg-model, value: gpt-4o",
                "type: RegularExpression, name: x-ai-eg-model, value: gpt-.*",
            ),
            "RegularExpression",
        ),
        (lambda t: "kind: ConfigMap\nmetadata: {name: x}\n", "no AIGatewayRoute"),
        (lambda t: t + "---\n- 1\n", "Kubernetes object"),
    ],
)
def test_manifests_that_cannot_be_read_exactly_are_refused_naming_why(edit, message):
    with pytest.raises(ConfigError, match=message):
        import_config(edit(MANIFESTS.read_text()), shipped())


def test_the_cli_imports_envoy_ai_gateway_manifests(tmp_path):
    out = tmp_path / "catalog.json"
    cli = subprocess.run(
        [sys.executable, "-m", "authz", "catalog", "import", "--from", "envoy-ai-gateway", str(MANIFESTS)]
        + ["--base", str(ROOT / "catalog" / "catalog.json"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "gpt-4o -> azure,openai" in cli.stderr and "no published data" in cli.stderr
    assert catalog_mod.parse(out.read_text()).models["gpt-4o"].providers == ["azure", "openai"]
