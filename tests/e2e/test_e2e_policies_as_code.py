"""Policies as code, end to end: a file in git is applied by `authz bootstrap --policies` (as the
bootstrap Job runs it), enforced through Envoy, changed, diffed, applied again and read back as
history; every step through the real CLI against the stack's Redis."""

from __future__ import annotations

import subprocess
import time

import yaml

from support.cli import authz


def cli(stack, *args: str) -> subprocess.CompletedProcess[str]:
    return authz(stack.redis.url, *args, actor="argo-cd")


def status_becomes(org, model: str, wanted: int) -> None:
    deadline = time.monotonic() + 5
    while (status := org.post({"model": model, "messages": []}).status_code) != wanted:
        assert time.monotonic() < deadline, f"{model}: {status}, not {wanted}"
        time.sleep(0.02)


def test_a_policies_file_in_git_is_applied_enforced_changed_and_audited(org, tmp_path):
    path = tmp_path / "policies.yaml"
    declared = {"orgs": {org.id: {"plan": "enterprise", "policy": {"enabled": True, "require_gdpr": True}}}}
    path.write_text(yaml.safe_dump(declared))
    first = cli(org.stack, "bootstrap", "--policies", str(path))
    assert first.returncode == 0, first.stderr
    status_becomes(org, "deepseek/deepseek-v4-pro", 403)  # DeepSeek publishes nothing about GDPR
    status_becomes(org, "azure/gpt-4o", 200)

    # The change a reviewer merges: Azure is no longer allowed for this org.
    declared["orgs"][org.id]["policy"]["provider_denylist"] = ["azure"]
    path.write_text(yaml.safe_dump(declared))
    diff = cli(org.stack, "policy", "diff", str(path))
    assert diff.returncode == 1 and "provider_denylist: (unset) -> [azure]" in diff.stdout
    status_becomes(org, "azure/gpt-4o", 200)  # a diff changes nothing
    applied = cli(org.stack, "policy", "apply", str(path))
    assert applied.returncode == 0, applied.stderr
    status_becomes(org, "azure/gpt-4o", 403)
    assert cli(org.stack, "policy", "diff", str(path)).returncode == 0  # Redis holds the file

    history = cli(org.stack, "policy", "history", org.id).stdout
    versions = [line for line in history.splitlines() if "  policy v" in line]
    assert len(versions) == 2 and all("by argo-cd (file policies.yaml@sha256:" in v for v in versions), history
    assert "    provider_denylist: (unset) -> [azure]" in history
