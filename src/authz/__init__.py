"""Envoy ext_authz sidecar enforcing an organization's LLM provider compliance policy."""
