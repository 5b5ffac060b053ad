"""Each gateway's routing contract: what in a request, besides its model, decides where the
prompt goes. Pure, no I/O.

A gateway reads more than the model a request names: LiteLLM's proxy passes every body field
(every form field of a multipart request) on to its router and to the provider call, so a body
can add fallback models, override the provider, or change the router's settings for this one
request; some of its routes forward to one provider whatever the model says. A contract lists,
for one naming profile, the fields known not to move the prompt (anything else is refused, 400
`field_not_allowed`, since authz cannot know where it sends the prompt), the fields that name
further models (each judged like the model itself), and the path prefixes pinned to a provider.
docs/gateways.md cites the gateway source each entry comes from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from authz.check import portkey
from authz.policy import naming

# Fields of the APIs the proxy serves (the OpenAI, Anthropic and Gemini API references) that
# choose nothing about where the request goes; LiteLLM maps them onto the deployment it picked.
_API_FIELDS = frozenset(
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
_LITELLM_INERT = frozenset(
    {"tags", "num_retries", "timeout", "stream_timeout", "caching", "cache", "guardrails", "mock_response",
     "disable_fallbacks", "drop_params"}
)  # fmt: skip

# Router fallbacks a request may carry (litellm/router.py: Router.async_function_with_fallbacks
# reads kwargs "fallbacks", "context_window_fallbacks", "content_policy_fallbacks"): every model
# they name may serve the prompt.
LITELLM_FALLBACKS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")


@dataclass(frozen=True, slots=True)
class Uploads:
    """Where a gateway stores an uploaded file (its content is prompts: a batch's lines, a
    fine-tuning set): at a provider named by a header or query parameter, else a default."""

    paths: frozenset[str]
    provider_header: str
    provider_query: str
    default_provider: str


@dataclass(frozen=True, slots=True)
class Contract:
    profile: str
    # Body and form fields known not to move the prompt; None: the gateway reads only the fields
    # of the API itself, and any other is left alone.
    inert_fields: frozenset[str] | None = None
    # Fields the gateway routes by that authz cannot judge: always refused.
    routing_fields: frozenset[str] = frozenset()
    # Fields naming further models the gateway may call (a list of names): each judged.
    fallback_fields: tuple[str, ...] = ()
    # Path prefixes the gateway forwards to one provider whatever the model names.
    provider_routes: tuple[tuple[str, str], ...] = ()
    # Headers set on every forwarded request, overwriting the client's: the gateway's own
    # switches that keep it on the provider judged.
    request_headers: tuple[tuple[str, str], ...] = ()
    # Paths where the gateway may move a pinned request to another provider: judged unpinned.
    unpinned_paths: frozenset[str] = frozenset()
    uploads: Uploads | None = None
    # Headers with this prefix choose providers and targets (Portkey): authz.check.portkey.
    header_prefix: str = ""
    # What the operator lets a request name (Portkey): custom hosts, Azure resources and deployments.
    allowed: portkey.Allowed = portkey.NOTHING
    # Model-free rows where the gateway still routes by a model when one is given (a body
    # "model", the query's `model`, or this header), judged when present.
    optional_model_paths: frozenset[tuple[str, str]] = frozenset()
    optional_model_header: str = ""
    # The gateway moves a request pinned to a deactivated mapping (the catalog's `deactivated`)
    # to another provider of the model: judged unpinned.
    drops_deactivated_pins: bool = False

    @property
    def headers_read(self) -> tuple[str, ...]:
        """Request headers the contract reads (RequestFacts.routing_headers)."""
        found = (self.uploads.provider_header,) if self.uploads is not None else ()
        return found + ((self.optional_model_header,) if self.optional_model_header else ())

    @property
    def reads_fields(self) -> bool:
        """Whether the request's fields or headers matter under this contract."""
        return (
            self.inert_fields is not None
            or bool(self.routing_fields)
            or bool(self.fallback_fields)
            or bool(self.header_prefix)
        )

    def refused_field(self, names: list[str]) -> str | None:
        """The first field the gateway may route by that authz does not judge, or None."""
        for name in names:
            if name in self.routing_fields:
                return name
            if self.inert_fields is not None and name not in self.inert_fields and name not in self.fallback_fields:
                return name
        return None

    def routes_by(self, names: list[str]) -> bool:
        """Whether any of these top-level fields needs more than the model read."""
        if self.inert_fields is not None:
            return any(n not in self.inert_fields for n in names)
        return any(n in self.routing_fields or n in self.fallback_fields for n in names)

    def provider_route(self, path: str) -> str | None:
        """The provider a pass-through path sends to (in the profile's spelling), or None."""
        for prefix, provider in self.provider_routes:
            if path.startswith(prefix):
                return provider
        return None


NONE = Contract(naming.NATIVE)
LITELLM = Contract(
    naming.LITELLM,
    inert_fields=_API_FIELDS | _LITELLM_INERT,
    fallback_fields=LITELLM_FALLBACKS,
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
)
# LLMGateway reroutes even a pinned request (a per-provider rate limit, an uptime below its
# threshold, a deactivated mapping) unless it carries `x-no-fallback: true`, exactly
# (apps/gateway/src/chat/chat.ts: noFallback); its /v1/responses handler does not pass the
# header on to the chat path it calls, so a pin there is not kept.
LLMGATEWAY = Contract(
    naming.LLMGATEWAY,
    request_headers=(("x-no-fallback", "true"),),
    unpinned_paths=frozenset({"/v1/responses"}),
    drops_deactivated_pins=True,
)
# OpenRouter-compatible gateways route by more body fields than the model (their public API
# reference, openrouter.ai/docs: provider routing, model routing, presets, plugins): `models`
# lists fallback models (each judged); `provider` (order, only, ignore, allow_fallbacks,
# sort...), `route`, `preset` and `plugins` (the web plugin sends the prompt to a search
# provider) choose where it goes in ways the catalog cannot judge, and are refused.
OPENROUTER = Contract(
    naming.OPENROUTER,
    routing_fields=frozenset({"provider", "route", "preset", "plugins"}),
    fallback_fields=("models",),
)
FALLBACK_FIELDS = frozenset(LITELLM.fallback_fields + OPENROUTER.fallback_fields)
# Portkey: the x-portkey-* headers choose the provider and every target (authz.check.portkey).
PORTKEY = Contract(naming.PORTKEY, header_prefix="x-portkey-")
_BY_PROFILE = {
    naming.LITELLM: LITELLM,
    naming.LLMGATEWAY: LLMGATEWAY,
    naming.OPENROUTER: OPENROUTER,
    naming.PORTKEY: PORTKEY,
}


def for_profile(
    profile: str,
    extra_fields: frozenset[str] = frozenset(),
    allowed: portkey.Allowed = portkey.NOTHING,
) -> Contract:
    """The profile's contract, with the operator's inert fields and allowed hosts, Azure
    resources and deployments added."""
    found = _BY_PROFILE.get(profile, NONE)
    if extra_fields and found.inert_fields is not None:
        found = dataclasses.replace(found, inert_fields=found.inert_fields | extra_fields)
    if allowed != portkey.NOTHING and found.header_prefix:
        found = dataclasses.replace(found, allowed=allowed)
    return found
