"""Read an installed @llmgateway/models package: its providers and models as JSON, through Node.

The package is JavaScript (an ES module), so llmgateway_export.mjs imports it under Node and
prints what authz.policy.imports.llmgateway_catalog maps; nothing of it runs in this process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

EXPORTER = Path(__file__).with_name("llmgateway_export.mjs")
TIMEOUT_S = 120


class PackageError(Exception):
    """The package could not be read; the message names the cause and the fix."""


def export(package_dir: str) -> dict[str, Any]:
    """The package's providers and models, as llmgateway_export.mjs writes them."""
    node = shutil.which("node")
    if node is None:
        raise PackageError("Node.js is needed to read the package (e.g. apt install nodejs), and `node` is not on PATH")
    directory = Path(package_dir)
    if not (directory / "package.json").is_file():
        raise PackageError(
            f"{package_dir}: no package.json here; give the package's own directory, "
            "e.g. node_modules/@llmgateway/models (npm install @llmgateway/models@VERSION)"
        )
    try:
        done = subprocess.run(
            [node, str(EXPORTER), str(directory.resolve())],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PackageError(f"{package_dir}: reading the package took over {TIMEOUT_S} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise PackageError(f"{package_dir}: node could not read the package: {last}")
    try:
        found: dict[str, Any] = json.loads(done.stdout)
    except ValueError as exc:
        raise PackageError(f"{package_dir}: the export is not JSON ({exc})") from None
    return found
