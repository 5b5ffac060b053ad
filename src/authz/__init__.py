"""Envoy ext_authz sidecar enforcing an organization's LLM provider compliance policy."""

from importlib import metadata

# One version, from pyproject.toml: `authz --version`, the authz_build_info metric and (checked
# by a test) the image tag in deploy/k8s and the Dockerfile all report it.
__version__ = metadata.version("authz")
