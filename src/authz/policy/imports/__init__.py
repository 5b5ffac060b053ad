"""Catalog import tooling: what the CLI and the admin API read from outside to build or check a
catalog (a LiteLLM config, Envoy AI Gateway manifests, LLMGateway's published package,
LiteLLM's price data, cloud region names). The Check never imports these; it reads the catalog
they produce (authz.policy.catalog)."""
