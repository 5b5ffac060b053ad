"""Build catalog/catalog.json, the shipped catalog, from facts LLMGateway publishes.

Run `python catalog/build_catalog.py > catalog/catalog.json` after changing a fact below, and copy
it to deploy/k8s/components/bootstrap/catalog.json (the cluster bootstrap's ConfigMap); tests
fail when the committed files and this script disagree.

Where the facts come from: theopenco/llmgateway, read through a stored copy of the public
repository. Each file was read at the newest version the copy held, and its commit is recorded
in the evidence of every fact taken from it. Those versions are not all of the same day (the
providers file is older than some model files), so a model file may name a provider the
providers file does not describe: such a provider is in the catalog with no data policy (every
requirement unknown, so it fails closed under any enabled policy).

What the source publishes and how it maps onto our attributes:
  dataPolicy.apiTraining       -> trains_on_prompts
  dataPolicy.promptLogging     -> logs_prompts
  dataPolicy.retentionPeriod   -> prompt_retention_days ("0 days" -> 0, "24 hours" -> 1; prose -> unknown;
                                  "0 hours" -> unknown: LLMGateway's zero data retention wants exactly
                                  "0 days", and we are never more lenient)
  dataPolicy.soc2 (1 | 2)      -> soc2 = true, soc2_report TYPE1 | TYPE2 (null or absent -> unknown)
  dataPolicy.iso27001, .gdpr   -> iso27001, gdpr (true / false as written; null or absent -> unknown)
  headquarters                 -> headquarters_country (never a processing region)
  isStealthProvider(provider)  -> stealth, as @llmgateway/models@1.324.0 answers it (its rule: the
                                  provider's endpoint is supplied by configuration, env.required.baseUrl,
                                  so no operator is named); providers the package no longer lists keep
                                  the older source's word, else unknown
  regionConfig.regions[] with endpointMap -> one catalog entry per region ("aws-bedrock-eu"),
                                  processing_regions from the endpoint's location; the provider's
                                  own entry (default routing, any region) has no processing region;
                                  region_of names the provider, whose list entries cover it
The source publishes no processing region for a provider as a whole, no legal entity and no
ISO 42001: those stay unknown.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

CHECKED_AT = "2026-11-26"
PUBLISHED_AT = "2026-11-26"
REPO = "theopenco/llmgateway"
PROVIDERS_FILE = f"{REPO} packages/models/src/providers.ts@005f2cb1a18444d7d06196c27569103a6e88c2b5"
STEALTH = "stealth"
STEALTH_SOURCE = "@llmgateway/models@1.324.0 isStealthProvider"
NOT_IN_PACKAGE = {"avalanche", "tundra"}  # described by the older providers file only

# id: (name, headquarters, dataPolicy as published or None, terms URL, privacy URL, stealth?)
# dataPolicy keys: t = apiTraining, l = promptLogging, r = retentionPeriod, s = soc2, i = iso27001, g = gdpr.
# A key that is absent was absent (or null) in the source.
PROVIDERS: dict[str, tuple[str, str | None, dict[str, Any] | None, str | None, str | None, bool | None]] = {
    "llmgateway": (
        "LLM Gateway",
        "US",
        dict(t=False, l=False, r="0 days", i=False, g=False),
        "https://llmgateway.io/terms",
        "https://llmgateway.io/privacy",
        False,
    ),
    "openai": (
        "OpenAI",
        "US",
        dict(t=False, l=True, s=2, i=True, g=True),
        "https://openai.com/policies/terms-of-use",
        "https://openai.com/policies/privacy-policy",
        False,
    ),
    "anthropic": (
        "Anthropic",
        "US",
        dict(t=False, l=True, r="30 days", s=2, i=True, g=True),
        "https://www.anthropic.com/terms",
        "https://www.anthropic.com/privacy",
        False,
    ),
    "google-ai-studio": (
        "Google AI Studio",
        "US",
        dict(t=False, l=True, r="55 days", s=2, i=True, g=True),
        "https://ai.google.dev/gemini-api/terms",
        "https://cloud.google.com/terms/data-processing-addendum",
        False,
    ),
    "glacier": ("Glacier", None, None, None, None, True),
    "iceberg": ("Iceberg", None, None, None, None, True),
    "granite": ("Granite", None, None, None, None, True),
    "google-vertex": (
        "Google Vertex AI",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://cloud.google.com/terms/service-terms",
        "https://policies.google.com/privacy",
        False,
    ),
    "vertex-openai": (
        "Vertex AI (OpenAI-compatible)",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://cloud.google.com/terms/service-terms",
        "https://cloud.google.com/terms/data-processing-addendum",
        False,
    ),
    "vertex-anthropic": (
        "Vertex AI (Anthropic)",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://cloud.google.com/terms/service-terms",
        "https://cloud.google.com/terms/data-processing-addendum",
        False,
    ),
    "quartz": ("Quartz", None, None, None, None, True),
    "avalanche": ("Avalanche", None, None, None, None, None),
    "groq": (
        "Groq",
        "US",
        dict(t=False, l=False, r="0 days", s=2, g=True),
        "https://groq.com/terms-of-use",
        "https://groq.com/privacy-policy",
        False,
    ),
    "cerebras": (
        "Cerebras",
        "US",
        dict(t=False, l=False, r="0 days", s=2, g=True),
        "https://cerebras.ai/terms-of-service",
        "https://cerebras.ai/privacy-policy",
        False,
    ),
    "xai": (
        "xAI",
        "US",
        dict(t=False, l=True, r="30 days", s=2, g=True),
        "https://x.ai/legal/terms-of-service",
        "https://x.ai/legal/privacy-policy",
        False,
    ),
    "deepseek": (
        "DeepSeek",
        "CN",
        dict(t=True, l=True),
        "https://cdn.deepseek.com/policies/en-US/deepseek-terms-of-use.html",
        "https://cdn.deepseek.com/policies/en-US/deepseek-privacy-policy.html",
        False,
    ),
    "alibaba": (
        "Alibaba Cloud",
        "CN",
        dict(t=False, l=True, i=True),
        "https://www.alibabacloud.com/help/en/legal/latest/alibaba-cloud-international-website-product-terms-of-service-v-3-8-0",
        "https://www.alibabacloud.com/help/en/legal/latest/alibaba-cloud-international-website-privacy-policy",
        False,
    ),
    "novita": (
        "NovitaAI",
        "US",
        dict(t=False, l=False, r="0 days"),
        "https://novita.ai/legal/terms-of-service",
        "https://novita.ai/legal/privacy-policy",
        False,
    ),
    "atlascloud": (
        "AtlasCloud",
        None,
        dict(r="varies by service; Enterprise ZDR available", s=2, g=True),
        "https://atlascloud.ai/privacy",
        "https://www.atlascloud.ai/privacy",
        False,
    ),
    "aws-bedrock": (
        "AWS Bedrock",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://aws.amazon.com/service-terms",
        "https://aws.amazon.com/privacy",
        False,
    ),
    "aws-mantle": (
        "AWS Mantle",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://aws.amazon.com/service-terms",
        "https://aws.amazon.com/privacy",
        False,
    ),
    "azure": (
        "Azure",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://www.microsoft.com/licensing/terms",
        "https://privacy.microsoft.com/privacystatement",
        False,
    ),
    "azure-ai-foundry": (
        "Azure AI Foundry",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://www.microsoft.com/licensing/terms",
        "https://privacy.microsoft.com/privacystatement",
        False,
    ),
    "zai": (
        "Z AI",
        "CN",
        dict(t=False, l=False, r="0 days"),
        "https://docs.z.ai/legal-agreement/terms-of-use",
        "https://docs.z.ai/legal-agreement/privacy-policy",
        False,
    ),
    "moonshot": (
        "Moonshot AI",
        "CN",
        dict(t=False, l=False, r="0 days"),
        "https://www.kimi.com/user/agreement/modelUse?version=v2",
        "https://www.kimi.com/user/agreement/userPrivacy?version=v2",
        False,
    ),
    "perplexity": (
        "Perplexity",
        "US",
        dict(t=False, l=False, r="0 days", s=2, g=True),
        "https://www.perplexity.ai/hub/legal/terms-of-service",
        "https://www.perplexity.ai/hub/legal/privacy-policy",
        False,
    ),
    "nebius": (
        "Nebius AI",
        "NL",
        dict(t=False, l=False, r="0 days", s=2, i=True),
        "https://docs.nebius.com/legal/terms-of-use",
        "https://docs.nebius.com/legal/privacy",
        False,
    ),
    "mistral": (
        "Mistral AI",
        "FR",
        dict(t=False, l=True, r="30 days", s=2, i=True, g=True),
        "https://legal.mistral.ai/terms/commercial-terms-of-service",
        "https://mistral.ai/terms/#privacy-policy",
        False,
    ),
    "canopywave": (
        "CanopyWave",
        "US",
        dict(t=False, l=False, r="0 days", s=1, i=False, g=False),
        "https://canopywave.com/terms",
        "https://canopywave.com/privacy",
        False,
    ),
    "inference.net": (
        "Inference.net",
        "US",
        dict(s=2),
        "https://inference.net/terms-of-service",
        "https://inference.net/privacy-policy",
        False,
    ),
    "together-ai": (
        "Together AI",
        "US",
        dict(t=False, l=False, r="0 days", s=2),
        "https://www.together.ai/terms-of-service",
        "https://www.together.ai/privacy",
        False,
    ),
    "scx-ai": (
        "SCX.ai",
        "AU",
        dict(t=False, l=False, r="0 days"),
        "https://scx.ai/terms",
        "https://scx.ai/privacy",
        False,
    ),
    "nanogpt": (
        "NanoGPT",
        "US",
        dict(t=False),
        "https://nano-gpt.com/legal/terms-of-service",
        "https://nano-gpt.com/legal/privacy-policy",
        False,
    ),
    "bytedance": (
        "ByteDance",
        "CN",
        dict(t=False, l=False, r="24 hours", s=2),
        "https://docs.byteplus.com/en/docs/legal/docs-terms-of-service",
        "https://docs.byteplus.com/en/docs/legal/docs-privacy-policy",
        False,
    ),
    "minimax": (
        "MiniMax",
        "CN",
        dict(t=False, l=True),
        "https://intl.minimaxi.com/protocol/terms-of-service",
        "https://intl.minimaxi.com/protocol/privacy-policy",
        False,
    ),
    "embercloud": (
        "EmberCloud",
        "US",
        dict(t=False, l=True),
        "https://www.embercloud.ai/terms",
        "https://www.embercloud.ai/privacy",
        False,
    ),
    "meta": (
        "Meta",
        "US",
        dict(t=False, l=True, g=True),
        "https://dev.meta.ai/legal/terms-of-service",
        "https://www.facebook.com/privacy/policy/",
        False,
    ),
    "sakana": (
        "Sakana AI",
        "JP",
        None,
        "https://console.sakana.ai/terms-of-service",
        "https://console.sakana.ai/privacy-policy",
        False,
    ),
    "tundra": ("Tundra", None, None, None, None, True),
    "xiaomi": (
        "Xiaomi",
        "CN",
        dict(t=False, l=True, r="30 days"),
        "https://platform.xiaomimimo.com/docs/terms/user-agreement",
        "https://platform.xiaomimimo.com/docs/terms/privacy-policy",
        False,
    ),
    "deepinfra": (
        "DeepInfra",
        "US",
        dict(t=False, l=False, r="0 days", s=2, i=True, g=True),
        "https://deepinfra.com/terms",
        "https://deepinfra.com/privacy",
        False,
    ),
    "reve": (
        "Reve",
        "US",
        None,
        "https://help.reve.com/hc/en-us/articles/46731550696468-Terms-of-service",
        "https://help.reve.com/hc/en-us/articles/46731763484692-Privacy-policy",
        False,
    ),
    "elevenlabs": (
        "ElevenLabs",
        "US",
        dict(t=False, l=True, s=2, i=False, g=True),
        "https://elevenlabs.io/terms-of-use",
        "https://elevenlabs.io/privacy-policy",
        False,
    ),
    "runware": (
        "Runware",
        "GB",
        dict(t=False, l=True, r="30 days"),
        "https://runware.ai/terms",
        "https://runware.ai/privacy",
        False,
    ),
    "gonka24": ("Gonka24", None, None, None, None, False),
}
# LLMGateway's "custom" entry is the user's own OpenAI-compatible endpoint, not a provider: an org
# describes those as custom providers with an attestation (docs/policy.md).

# Providers that model files name but the providers file above does not describe.
UNDESCRIBED = {
    "fireworks": "Fireworks AI",
    "baidu": "Baidu Qianfan",
    "tencent": "Tencent TokenHub",
    "ranoai": "RanoAI",
    "cloudrift": "CloudRift",
}

# regionConfig.regions[] (endpointMap) -> where the endpoint processes prompts. A cross-region
# inference profile ("eu") processes within that area; "global" could be anywhere, so it stays
# the provider's own entry. London is outside the EU whatever the label says.
REGIONS: dict[str, list[tuple[str, str, str, str]]] = {
    # provider: [(region id, label, endpoint, processing region)]
    "aws-bedrock": [
        ("us", "US", "bedrock-runtime.us-east-1.amazonaws.com (us. cross-region profile)", "us"),
        ("eu", "EU", "bedrock-runtime.eu-central-1.amazonaws.com (eu. cross-region profile)", "eu"),
        ("apac", "Asia Pacific", "bedrock-runtime.ap-northeast-1.amazonaws.com (apac. cross-region profile)", "apac"),
        ("au", "Australia", "bedrock-runtime.ap-southeast-2.amazonaws.com (au. cross-region profile)", "au"),
        ("jp", "Japan", "bedrock-runtime.ap-northeast-1.amazonaws.com (jp. cross-region profile)", "jp"),
        ("us-east-1", "US East (N. Virginia)", "bedrock-runtime.us-east-1.amazonaws.com", "us"),
        ("us-east-2", "US East (Ohio)", "bedrock-runtime.us-east-2.amazonaws.com", "us"),
        ("us-west-2", "US West (Oregon)", "bedrock-runtime.us-west-2.amazonaws.com", "us"),
        ("eu-central-1", "EU (Frankfurt)", "bedrock-runtime.eu-central-1.amazonaws.com", "eu"),
        ("eu-north-1", "EU (Stockholm)", "bedrock-runtime.eu-north-1.amazonaws.com", "eu"),
        ("eu-west-1", "EU (Ireland)", "bedrock-runtime.eu-west-1.amazonaws.com", "eu"),
        ("eu-west-2", "EU (London)", "bedrock-runtime.eu-west-2.amazonaws.com (London: the UK, not the EU)", "uk"),
        ("eu-west-3", "EU (Paris)", "bedrock-runtime.eu-west-3.amazonaws.com", "eu"),
        ("ap-northeast-1", "Asia Pacific (Tokyo)", "bedrock-runtime.ap-northeast-1.amazonaws.com", "jp"),
        ("ap-northeast-2", "Asia Pacific (Seoul)", "bedrock-runtime.ap-northeast-2.amazonaws.com", "kr"),
        ("ap-southeast-1", "Asia Pacific (Singapore)", "bedrock-runtime.ap-southeast-1.amazonaws.com", "sg"),
    ],
    "alibaba": [
        ("singapore", "Singapore", "dashscope-intl.aliyuncs.com", "sg"),
        ("us-virginia", "US (Virginia)", "dashscope-us.aliyuncs.com", "us"),
        ("cn-beijing", "China (Beijing)", "dashscope.aliyuncs.com", "cn"),
    ],
}

MODEL_FILES = {
    "openai": f"{REPO} packages/models/src/models/openai.ts@0036b72fe3122040b525a31d8676737d170efd4b",
    "anthropic": f"{REPO} packages/models/src/models/anthropic.ts@008fc720204281c3aeb23ee84c4e181db1c95ff5",
    "google": f"{REPO} packages/models/src/models/google.ts@014402c5ccf4f18e82e7a3c337f3e08eb9e43761",
    "deepseek": f"{REPO} packages/models/src/models/deepseek.ts@025e2d2649d03b159647915ffbb795cb4e64e81a",
    "zai": f"{REPO} packages/models/src/models/zai.ts@005a1c5d6bf37e74f8164fd23e02264c6896b121",
    "alibaba": f"{REPO} packages/models/src/models/alibaba.ts@015f558a2a88a44993cc9405b699b640a6e92501",
    "mistral": f"{REPO} packages/models/src/models/mistral.ts@0b273abf4496ba29032b71afaed779f1428634fd",
    "xai": f"{REPO} packages/models/src/models/xai.ts@015f0db1bfdc9807a2ba704afff6c99fab51b7f6",
    "moonshot": f"{REPO} packages/models/src/models/moonshot.ts@015f0db1bfdc9807a2ba704afff6c99fab51b7f6",
}

# file: "model: provider provider ...", one line per model that has a provider mapping not
# deactivated before CHECKED_AT. "alibaba@singapore" is the Alibaba mapping's own `regions` list.
# Source ids renamed since the copy was taken: "together.ai" -> "together-ai".
MODELS: dict[str, str] = {
    "openai": """
gpt-4o-mini: openai
gpt-4o-search-preview: openai
gpt-4o-mini-search-preview: openai
gpt-4: openai azure
gpt-4o: openai azure
gpt-3.5-turbo: openai azure
gpt-4-turbo: openai azure
gpt-4.1: openai azure
o1: openai azure
gpt-4.1-mini: openai azure
gpt-4.1-nano: openai azure
o3: openai azure
o3-mini: openai azure
o4-mini: openai azure
gpt-oss-120b: groq cerebras nanogpt bytedance nebius together-ai azure
gpt-oss-20b: groq nanogpt together-ai
gpt-5: openai azure
gpt-5-mini: openai azure
gpt-5-nano: openai azure
gpt-5-chat-latest: openai
gpt-5.1: openai azure
gpt-5-pro: openai
gpt-5.1-codex: openai azure
gpt-5.1-codex-mini: openai azure
gpt-5.2: openai azure
gpt-5.2-pro: openai azure
gpt-5.4: openai azure
gpt-5.4-pro: openai azure
gpt-5.4-mini: openai azure
gpt-5.4-nano: openai azure
gpt-5.5: openai azure
gpt-5.5-pro: openai
gpt-5.6-sol: openai
gpt-5.6-terra: openai
gpt-5.6-luna: openai
gpt-5.2-codex: openai azure
gpt-5.3-codex: openai azure
gpt-image-2: openai azure
text-embedding-3-small: openai
text-embedding-3-large: openai
text-embedding-ada-002: openai
tts-1: openai
tts-1-hd: openai
gpt-4o-mini-tts: openai
""",
    "anthropic": """
claude-3-7-sonnet: anthropic
claude-3-5-haiku-20241022: anthropic
claude-3-7-sonnet-20250219: anthropic
claude-3-5-sonnet-20241022: anthropic
claude-sonnet-4-20250514: anthropic
claude-opus-4-20250514: anthropic
claude-opus-4-1: anthropic
claude-3-5-sonnet: anthropic
claude-3-5-haiku: anthropic
claude-3-opus: anthropic
claude-3-haiku: anthropic
""",
    "google": """
gemini-2.5-pro: google-ai-studio google-vertex
gemini-2.5-flash-preview-09-2025: google-ai-studio google-vertex
gemini-2.5-flash: google-ai-studio google-vertex
gemini-2.5-flash-lite: google-ai-studio google-vertex
gemini-2.5-flash-lite-preview-09-2025: google-ai-studio google-vertex
gemini-3-pro-preview: google-ai-studio google-vertex
gemini-2.5-flash-image-preview: google-ai-studio google-vertex
gemini-2.0-flash-lite: google-ai-studio google-vertex
gemini-2.0-flash: google-ai-studio google-vertex
gemma-3n-e2b-it: google-ai-studio
gemma-3n-e4b-it: google-ai-studio
gemma-3-1b-it: google-ai-studio
gemma-3-4b-it: google-ai-studio
gemma-3-12b-it: google-ai-studio
gemma-3-27b: nebius
gemma-2-27b-it-together: together-ai
""",
    "deepseek": """
deepseek-v3.2: novita bytedance deepinfra vertex-openai
deepseek-v4-pro: deepseek runware together-ai alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing deepinfra bytedance nebius canopywave fireworks baidu tencent
deepseek-v4-flash: deepseek runware novita alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing deepinfra bytedance fireworks together-ai ranoai canopywave gonka24 baidu tencent
""",
    "zai": """
glm-5.2: zai canopywave embercloud granite bytedance alibaba alibaba@singapore runware nebius
glm-5.1: zai novita deepinfra embercloud nebius
glm-5: zai novita alibaba alibaba@cn-beijing embercloud vertex-openai
glm-4.5: zai embercloud
glm-4.5v: zai novita
glm-4.5-air: zai embercloud
glm-4.5-x: zai
glm-4.5-airx: zai
glm-4.7: zai novita cerebras bytedance together-ai embercloud vertex-openai
glm-4.7-flashx: zai
glm-4.7-flash: embercloud
glm-4.6: zai novita
glm-4-32b-0414-128k: zai
glm-4.6v: zai novita
glm-4.6v-flashx: zai
cogview-4: zai
glm-image: zai
""",
    "alibaba": """
qwen-max: alibaba alibaba@singapore alibaba@cn-beijing
qwen-max-latest: alibaba alibaba@singapore alibaba@cn-beijing
qwen-plus: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing
qwen-plus-latest: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing
qwen-flash: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing
qwen-omni-turbo: alibaba
qwen-turbo: alibaba alibaba@singapore alibaba@cn-beijing
qwen3-coder-plus: alibaba
qwen3-235b-a22b-instruct-2507: nebius cerebras novita
qwen3-235b-a22b-thinking-2507: nebius novita
qwen3-235b-a22b-fp8: novita
qwen3-32b: nebius
qwen25-coder-7b: nebius
qwen2-5-vl-72b-instruct: nebius
qwen3-vl-8b-instruct: novita
qwen3-coder-480b-a35b-instruct: nebius novita
qwen3-coder-30b-a3b-instruct: nebius novita
qwen3-30b-a3b-instruct-2507: nebius
qwen3-30b-a3b-thinking-2507: nebius
qwen-vl-max: alibaba
qwen-vl-plus: alibaba
qwen3-next-80b-a3b-thinking: alibaba novita
qwen3-next-80b-a3b-instruct: alibaba novita
qwen3-max: alibaba novita
qwen3-vl-30b-a3b-instruct: novita
qwen3-vl-30b-a3b-thinking: novita
qwen3-32b-fp8: novita
qwen3-30b-a3b-fp8: novita
qwen3-4b-fp8: novita
qwen35-397b-a17b: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing novita
qwen-image-plus: alibaba
qwen-image-max: alibaba
qwen-image: alibaba
qwen-image-max-2025-12-30: alibaba
qwq-plus: alibaba alibaba@singapore alibaba@cn-beijing
qwen-coder-plus: alibaba@cn-beijing
qwen3-coder-flash: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing
qwen3-vl-plus: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing
qwen3-vl-flash: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing
qwen3-vl-235b-a22b-instruct: alibaba novita
qwen3-vl-235b-a22b-thinking: alibaba novita
qwen2-5-vl-32b-instruct: alibaba
qwen3-max-2026-01-23: alibaba alibaba@singapore alibaba@us-virginia alibaba@cn-beijing
qwen-image-edit-plus: alibaba
qwen-image-edit-max: alibaba
""",
    "mistral": """
mistral-large-latest: mistral
pixtral-large-latest: mistral
mistral-large-2512: mistral
mistral-small-2506: mistral
ministral-14b-2512: mistral
ministral-8b-2512: mistral
ministral-3b-2512: mistral
codestral-2508: mistral
devstral-2512: mistral
devstral-small-2507: mistral
""",
    "xai": """
grok-3: xai
grok-3-mini: xai
grok-3-fast: xai
grok-3-mini-fast: xai
grok-2-1212: xai
grok-2-vision-1212: xai
grok-4-0709: xai
""",
    "moonshot": """
kimi-k2: novita moonshot cloudrift
""",
}

# Other spellings clients send for the same model or provider (exact match only).
MODEL_ALIASES = {
    "deepseek-ai/DeepSeek-V3.2": "deepseek-v3.2",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b-instruct-2507",
}
PROVIDER_ALIASES = {"together.ai": "together-ai", "together": "together-ai", "vertex": "google-vertex"}


def _retention_days(text: str) -> int | None:
    """Days of retention, rounded up; None (unknown) for prose and for "0 hours", which
    LLMGateway does not count as zero retention (it wants exactly "0 days")."""
    found = re.fullmatch(r"(\d+) (days|hours)", text)
    if not found:
        return None  # prose ("varies by service") is not a number of days: unknown
    amount, unit = int(found.group(1)), found.group(2)
    if unit == "days":
        return amount
    return -(-amount // 24) if amount else None  # hours round up to whole days


def _data_policy(
    pid: str,
    name: str,
    hq: str | None,
    published: dict[str, Any] | None,
    terms: str | None,
    privacy: str | None,
    stealth: bool | None,
) -> dict[str, Any]:
    where = f"{PROVIDERS_FILE} ({pid})"
    policy: dict[str, Any] = {}
    evidence: dict[str, dict[str, str]] = {}

    def put(attribute: str, value: Any, field: str) -> None:
        policy[attribute] = value
        evidence[attribute] = {"source": f"{where} {field}", "checked_at": CHECKED_AT}

    for key, attribute in (("t", "trains_on_prompts"), ("l", "logs_prompts"), ("i", "iso27001"), ("g", "gdpr")):
        if published and key in published:
            field = {
                "t": "dataPolicy.apiTraining",
                "l": "dataPolicy.promptLogging",
                "i": "dataPolicy.iso27001",
                "g": "dataPolicy.gdpr",
            }[key]
            put(attribute, published[key], field)
    if published and "s" in published:
        put("soc2", True, "dataPolicy.soc2")
        put("soc2_report", "SOC2_REPORT_TYPE2" if published["s"] == 2 else "SOC2_REPORT_TYPE1", "dataPolicy.soc2")
    if published and "r" in published:
        days = _retention_days(published["r"])
        if days is not None:
            put("prompt_retention_days", days, f"dataPolicy.retentionPeriod {published['r']!r}")
    if hq:
        put("headquarters_country", hq, "headquarters")
    if stealth is not None:
        source = (
            f'{where} description: "a stealth provider"; no website, terms or headquarters'
            if pid in NOT_IN_PACKAGE
            else f"{STEALTH_SOURCE} ({pid}): {str(stealth).lower()}"
        )
        evidence[STEALTH] = {"source": source, "checked_at": CHECKED_AT}
        policy[STEALTH] = stealth
    policy["evidence"] = evidence
    return policy


def build() -> dict[str, Any]:
    providers: dict[str, Any] = {}
    for pid, (name, hq, published, terms, privacy, stealth) in PROVIDERS.items():
        entry: dict[str, Any] = {"name": name}
        if privacy:
            entry["privacy_policy_url"] = privacy
        if terms:
            entry["terms_url"] = terms
        dp = _data_policy(pid, name, hq, published, terms, privacy, stealth)
        if len(dp) > 1:  # more than the evidence map: something is published
            entry["data_policy"] = dp
        providers[pid] = entry
        for region, label, endpoint, processing in REGIONS.get(pid, []):
            regional = json.loads(json.dumps(dp))
            regional["processing_regions"] = [processing]
            regional["evidence"]["processing_regions"] = {
                "source": f"{PROVIDERS_FILE} ({pid}) regionConfig region {region!r}: endpoint {endpoint}",
                "checked_at": CHECKED_AT,
            }
            providers[f"{pid}-{region}"] = {
                **entry,
                "name": f"{name} ({label})",
                "data_policy": regional,
                "region_of": pid,
            }
    for pid, name in UNDESCRIBED.items():
        providers[pid] = {"name": name}
    models: dict[str, Any] = {}
    for family, text in MODELS.items():  # family: the model file it came from
        for line in text.strip().splitlines():
            model, _, serving = line.partition(":")
            ids = [p.replace("@", "-") for p in serving.split()]
            if model in models:
                raise SystemExit(f"model {model} listed twice")
            models[model] = {"providers": ids, "source": MODEL_FILES[family]}
    return {
        "description": (
            "Provider data policies and model -> provider mappings as LLMGateway publishes them "
            f"({REPO}, commits in each fact's evidence), checked {CHECKED_AT}. Unpublished facts are "
            "unknown and fail closed. Review against each provider's own terms before relying on it."
        ),
        "published_at": PUBLISHED_AT,
        "providers": providers,
        "models": models,
        "model_aliases": MODEL_ALIASES,
        "provider_aliases": PROVIDER_ALIASES,
    }


if __name__ == "__main__":
    json.dump(build(), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
