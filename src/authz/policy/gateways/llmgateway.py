"""LLMGateway (naming_profile = "llmgateway"): its own provider ids, "provider/model:region"
for a regional entry, and a gateway that reroutes even a pinned request unless told not to.
docs/gateways.md, "LLMGateway", cites its source for each entry."""

from __future__ import annotations

from authz.policy.gateways.description import Contract, Description, Spelling

# LLMGateway's provider ids (theopenco/llmgateway packages/models/src/providers.ts) where they
# differ from ours.
PROVIDERS: dict[str, str] = {
    "together-ai": "together",  # not "together.ai": its gateway answers "Provider 'together.ai' not found"
    "google-ai-studio": "google-ai-studio",
    "google-vertex": "google-vertex",
    "aws-bedrock": "aws-bedrock",
    "azure": "azure",
    "openai": "openai",
    "anthropic": "anthropic",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "groq": "groq",
    "novita": "novita",
    "fireworks": "fireworks",
    "deepinfra": "deepinfra",
    "xai": "xai",
    "cerebras": "cerebras",
    "perplexity": "perplexity",
    "alibaba": "alibaba",
    "moonshot": "moonshot",
    "nebius": "nebius",
}

GATEWAY = Description(
    name="llmgateway",
    title="LLMGateway",
    # apps/gateway/src/chat/tools/parse-model-input.ts, parseModelInput: the region after the
    # last ':' of "alibaba/qwen-plus:cn-beijing".
    spelling=Spelling(PROVIDERS, region_suffix=True),
    # It reroutes even a pinned request (a per-provider rate limit, an uptime below its
    # threshold, a deactivated mapping) unless it carries `x-no-fallback: true`, exactly
    # (apps/gateway/src/chat/chat.ts: noFallback); its /v1/responses handler does not pass the
    # header on to the chat path it calls, so a pin there is not kept.
    contract=Contract(
        "llmgateway",
        request_headers=(("x-no-fallback", "true"),),
        unpinned_paths=frozenset({"/v1/responses"}),
        drops_deactivated_pins=True,
    ),
)
