"""Portkey's gateway (naming_profile = "portkey"): its x-portkey-* headers and configs choose
the provider and every target (authz.check.portkey reads them). docs/gateways.md, "Portkey",
cites its source for each entry."""

from __future__ import annotations

from authz.policy.gateways.description import Contract, Description, Spelling

HEADER_PREFIX = "x-portkey-"

# Portkey's provider ids (Portkey-AI/gateway src/globals.ts; `x-portkey-provider`, a config
# target's `provider`) -> ours. authz names a Portkey target "<portkey id>/<model>".
PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure-openai": "azure",
    "azure-ai": "azure",
    "bedrock": "aws-bedrock",
    "vertex-ai": "google-vertex",
    "google": "google-ai-studio",
    "groq": "groq",
    "deepseek": "deepseek",
    "together-ai": "together",
    "mistral-ai": "mistral",
    "fireworks-ai": "fireworks",
    "deepinfra": "deepinfra",
    "perplexity-ai": "perplexity",
    "cohere": "cohere",
    "x-ai": "xai",
    "cerebras": "cerebras",
    "novita-ai": "novita",
    "openrouter": "openrouter",
    "dashscope": "alibaba",
    "nebius": "nebius",
    "sambanova": "sambanova",
    "moonshot": "moonshot",
    "lambda": "lambda",
    "hyperbolic": "hyperbolic",
}

GATEWAY = Description(
    name="portkey",
    title="Portkey",
    spelling=Spelling(PROVIDERS),
    contract=Contract("portkey", header_prefix=HEADER_PREFIX),
    # A verdict on a target its config or headers name ("config.targets[1]", "x-portkey-provider").
    routing_items=("config", HEADER_PREFIX),
)
