"""deploy/k8s/components/monitoring against a live authz: every metric its alert rules and its
dashboard query is one authz exports (read from /metrics after real traffic through Envoy),
and every expression parses as PromQL (promql-parser: there is no promtool here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from authz.v1 import catalog_pb2
from devstack.stack import wait_until
from support.policies import DEMO_POLICY

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "k8s" / "components" / "monitoring"
METRIC = re.compile(r"\bauthz_[a-z0-9_]+\b")
pytestmark = pytest.mark.e2e


def rule_expressions() -> dict[str, str]:
    rules = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return {r["alert"]: r["expr"] for group in rules["spec"]["groups"] for r in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads((MONITORING / "authz-dashboard.json").read_text())
    return {f"{p['title']} {t['refId']}": t["expr"] for p in dashboard["panels"] for t in p["targets"]}


def exported(stack) -> set[str]:
    text = httpx.get(stack.authz_metrics + "/metrics").text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_metric_the_rules_and_dashboard_use_is_exported(org):
    org.set_policy(**DEMO_POLICY)
    assert org.post({"model": "deepseek/deepseek-v3.2", "messages": []}).status_code == 403  # a block
    assert org.post({"model": "azure/gpt-4o", "messages": []}).status_code == 200
    # the new series: blocks by provider and by requirement (bounded labels), readiness, version
    wait_until(lambda: "authz_ready 1.0" in httpx.get(org.stack.authz_metrics + "/metrics").text, 5, "authz_ready")
    names = exported(org.stack)
    text = httpx.get(org.stack.authz_metrics + "/metrics").text
    assert 'authz_blocked_providers_total{provider="deepseek"}' in text
    assert 'authz_failed_requirements_total{cause="not_met",requirement="gdpr"}' in text
    assert "authz_build_info{" in text
    expressions = {**rule_expressions(), **dashboard_expressions()}
    assert len(rule_expressions()) >= 8 and len(dashboard_expressions()) >= 10
    for where, expr in expressions.items():
        used = set(METRIC.findall(expr))
        assert used, where
        assert used <= names, f"{where}: {sorted(used - names)} not exported"


@pytest.mark.parametrize("expr", [*rule_expressions().values(), *dashboard_expressions().values()])
def test_every_expression_parses_as_promql(expr):
    promql_parser.parse(expr)


def test_the_parser_refuses_a_broken_expression():
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(authz_decisions_total[5m])")


def test_a_tenants_own_provider_is_counted_as_custom(org):
    mine = catalog_pb2.CustomProvider(id="acme-llm-x", name="ours", models=["m"])  # no attestation: blocked
    org.stack.admin._run(lambda store: store.set_custom_provider(org.id, mine, "test"))
    org.set_policy(**DEMO_POLICY)
    assert org.post({"model": "acme-llm-x/m", "messages": []}).status_code == 403
    text = httpx.get(org.stack.authz_metrics + "/metrics").text
    assert 'provider="custom"' in text and "acme-llm-x" not in text


def test_the_dashboard_shows_the_standalone_the_sidecars_and_the_egress_apart():
    """Every series the dashboard queries is narrowed to the deployments chosen in its `job`
    variable (all by default): the ServiceMonitor's `authz`, the PodMonitors' `NS/authz-sidecars`
    and `NS/authz-egress`, all of which export authz_build_info, the variable's source."""
    dashboard = json.loads((MONITORING / "authz-dashboard.json").read_text())
    [job] = [v for v in dashboard["templating"]["list"] if v["name"] == "job"]
    assert job["includeAll"] and job["multi"] and job["query"]["query"] == "label_values(authz_build_info, job)"
    for where, expr in dashboard_expressions().items():
        selectors = re.findall(r"\bauthz_[a-z0-9_]+(\{[^}]*\})?", expr)
        assert selectors and all('job=~"$job"' in s for s in selectors), where
    exprs = dashboard_expressions()
    assert "by (job)" in exprs["Ready replicas A"] and "by (le, job)" in exprs["Check latency A"]
    monitors = list(yaml.safe_load_all((MONITORING / "podmonitor.yaml").read_text()))
    assert {m["metadata"]["name"] for m in monitors} == {"authz-sidecars", "authz-egress"}
