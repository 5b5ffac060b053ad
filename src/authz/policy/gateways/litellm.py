"""LiteLLM's proxy (naming_profile = "litellm"): provider-prefixed names
(`together_ai/llama-3.3-70b-instruct`), every body field passed on to its router, fallbacks a
request may carry, a pass-through route to Anthropic, uploads stored at a provider.
docs/gateways.md, "LiteLLM proxy", cites its source for each entry."""

from __future__ import annotations

from authz.policy.gateways.description import Contract, Description, Spelling, Uploads

# LiteLLM's provider prefixes (litellm.LlmProviders, docs.litellm.ai/docs/providers) -> the
# provider ids our catalogs use. A prefix whose provider is not in the loaded catalog maps to
# nothing and the name stays unknown.
PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_text": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws-bedrock",
    "sagemaker": "aws-sagemaker",
    "vertex_ai": "google-vertex",
    "vertex_ai_beta": "google-vertex",
    "gemini": "google-ai-studio",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "deepinfra": "deepinfra",
    "groq": "groq",
    "mistral": "mistral",
    "codestral": "mistral",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "xai": "xai",
    "deepseek": "deepseek",
    "novita": "novita",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "nebius": "nebius",
    "sambanova": "sambanova",
    "moonshot": "moonshot",
    "openrouter": "openrouter",
    "dashscope": "alibaba",
    "nvidia_nim": "nvidia",
    "hyperbolic": "hyperbolic",
    "lambda_ai": "lambda",
}


# Fields of the APIs the proxy serves (the OpenAI, Anthropic and Gemini API references) that
# choose nothing about where the request goes; LiteLLM maps them onto the deployment it picked.
API_FIELDS = frozenset(
    {
        # chat completions, completions
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias",
        "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "n",
        "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
        "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier", "seed",
        "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
        "top_logprobs", "top_p", "user", "verbosity", "web_search_options", "prompt", "best_of", "echo",
        "suffix",
        # responses
        "input", "instructions", "include", "max_output_tokens", "max_tool_calls", "previous_response_id",
        "reasoning", "text", "truncation", "background", "conversation",
        # embeddings, moderations, images, audio
        "dimensions", "encoding_format", "size", "quality", "style", "moderation", "output_format",
        "output_compression", "partial_images", "input_fidelity", "image", "mask", "voice", "speed",
        "stream_format", "file", "language", "timestamp_granularities", "chunking_strategy",
        # Anthropic messages and batches
        "system", "stop_sequences", "top_k", "thinking", "container", "mcp_servers", "context_management",
        "requests",
        # realtime sessions
        "session", "type", "input_audio_format", "output_audio_format", "input_audio_transcription",
        "turn_detection", "max_response_output_tokens", "output_modalities", "tracing", "expires_after",
        # fine-tuning, uploads, files
        "training_file", "validation_file", "hyperparameters", "integrations", "method", "purpose",
        "filename", "bytes", "mime_type",
        # Gemini
        "contents", "generationConfig", "generation_config", "safetySettings", "safety_settings",
        "systemInstruction", "system_instruction", "toolConfig", "tool_config", "cachedContent", "labels",
        "content", "taskType", "title", "outputDimensionality",
    }
)  # fmt: skip

# LiteLLM's own request fields that keep the request within the model group it names: retries
# and timeouts re-pick among the same deployments, tags narrow them (router.py), a mock answers
# without calling anything, disable_fallbacks turns the config's fallbacks off.
INERT = frozenset(
    {"tags", "num_retries", "timeout", "stream_timeout", "caching", "cache", "guardrails", "mock_response",
     "disable_fallbacks", "drop_params"}
)  # fmt: skip

# Router fallbacks a request may carry (litellm/router.py: Router.async_function_with_fallbacks
# reads kwargs "fallbacks", "context_window_fallbacks", "content_policy_fallbacks"): every model
# they name may serve the prompt.
FALLBACKS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")

GATEWAY = Description(
    name="litellm",
    title="LiteLLM proxy",
    spelling=Spelling(PROVIDERS),
    contract=Contract(
        "litellm",
        inert_fields=API_FIELDS | INERT,
        fallback_fields=FALLBACKS,
        # litellm/proxy/pass_through_endpoints/llm_passthrough_endpoints.py: anthropic_proxy_route
        # forwards /anthropic/{endpoint:path} to api.anthropic.com, the body untouched.
        provider_routes=(("/anthropic/", "anthropic"),),
        # proxy/openai_files_endpoints/files_endpoints.py, create_file: the file goes to the provider
        # of the form's `model` (its deployment's credentials), else to the one named by the
        # `custom-llm-provider` header, the `custom_llm_provider` query parameter or form field,
        # else to OpenAI. (The form field, `target_model_names` and `target_storage` are not inert.)
        uploads=Uploads(frozenset({"/v1/files"}), "custom-llm-provider", "custom_llm_provider", "openai"),
        # proxy/batches_endpoints/endpoints.py, create_batch: a body `model` (the query's, or the
        # x-litellm-model header) creates the batch with that model group's deployment.
        optional_model_paths=frozenset({("POST", "/v1/batches")}),
        optional_model_header="x-litellm-model",
    ),
    # litellm/proxy/auth/user_api_key_auth.py: get_bearer_token.
    litellm_key_schemes=True,
)
