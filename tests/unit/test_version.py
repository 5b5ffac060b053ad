"""One version everywhere a person or a machine reads it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import authz

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_package_cli_and_changelog_report_the_project_version():
    assert authz.__version__ == VERSION
    out = subprocess.run([sys.executable, "-m", "authz", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"authz {VERSION}"
    assert re.search(rf"^## {re.escape(VERSION)}\b", (ROOT / "CHANGELOG.md").read_text(), re.M)


def test_the_image_tags_are_the_project_version():
    # Every manifest names the tag, and every example overlay sets it (tests/integration/test_deploy.py
    # renders each and finds that one tag on every authz container and the Job).
    for manifest in ("base/authz.yaml", "components/sidecar/deployment-patch.yaml", "components/bootstrap/job.yaml"):
        assert f"ghcr.io/provider-compliance/authz:{VERSION}" in (ROOT / "deploy/k8s" / manifest).read_text(), manifest
    for overlay in sorted((ROOT / "deploy/k8s/examples").glob("*/kustomization.yaml")):
        assert f"newTag: {VERSION}" in overlay.read_text(), overlay
    assert f"ARG VERSION={VERSION}" in (ROOT / "Dockerfile").read_text()
    assert not re.search(
        r"ghcr.io/provider-compliance/authz:(?!" + re.escape(VERSION) + r")\d", (ROOT / "docs/operating.md").read_text()
    )


def test_the_build_info_metric_carries_the_version():
    from prometheus_client import generate_latest

    from authz import metrics  # noqa: F401  (registers the gauge)

    assert f'authz_build_info{{version="{VERSION}"}} 1.0' in generate_latest().decode()
