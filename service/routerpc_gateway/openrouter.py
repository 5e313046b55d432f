"""pydantic models of the OpenRouter chat-completions request body.

They describe what the gateway sends, field for field as OpenRouter names it
(``shared/reference/openrouter-api.md`` §2-3): the schema of the JSON that ``convert`` builds.
``convert`` writes that JSON directly as plain objects (building and dumping a model tree per
request cost more than the rest of the conversion); the tests validate every body they produce
against :class:`ChatBody` and the OpenAPI spec, and ``convert`` derives from it the keys
``extra_body`` may not set. A field the caller did not set never appears, not even as ``null``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CacheControlBody",
    "ChatBody",
    "ContentPartBody",
    "FileBody",
    "FunctionBody",
    "ImageUrlBody",
    "InputAudioBody",
    "JsonSchemaBody",
    "MaxPriceBody",
    "MessageBody",
    "PercentileBody",
    "PluginBody",
    "ProviderBody",
    "ReasoningBody",
    "ResponseFormatBody",
    "SortBody",
    "ToolBody",
    "ToolCallBody",
    "ToolCallFunctionBody",
    "ToolChoiceBody",
    "UrlBody",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CacheControlBody(_Body):
    type: Literal["ephemeral"] = "ephemeral"
    ttl: str | None = None


class UrlBody(_Body):
    url: str


class ImageUrlBody(_Body):
    url: str
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputAudioBody(_Body):
    data: str
    format: str


class FileBody(_Body):
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class ContentPartBody(_Body):
    type: Literal["text", "image_url", "input_audio", "file", "video_url"]
    text: str | None = None
    image_url: ImageUrlBody | None = None
    input_audio: InputAudioBody | None = None
    file: FileBody | None = None
    video_url: UrlBody | None = None
    cache_control: CacheControlBody | None = None


class ToolCallFunctionBody(_Body):
    name: str
    arguments: str


class ToolCallBody(_Body):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunctionBody


class MessageBody(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPartBody] | None = None
    name: str | None = None
    tool_calls: list[ToolCallBody] | None = None
    tool_call_id: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    reasoning_details: list[Any] | None = None


class FunctionBody(_Body):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolBody(_Body):
    type: str
    function: FunctionBody | None = None
    parameters: dict[str, Any] | None = None
    cache_control: CacheControlBody | None = None


class ToolChoiceBody(_Body):
    type: str
    function: dict[str, str] | None = None


class JsonSchemaBody(_Body):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormatBody(_Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaBody | None = None


class ReasoningBody(_Body):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    max_tokens: int | None = None
    exclude: bool | None = None
    enabled: bool | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class PluginBody(BaseModel):
    """Plugins carry plugin-specific options next to ``id``, so extra keys are allowed."""

    model_config = ConfigDict(extra="allow")
    id: str
    enabled: bool | None = None


class SortBody(_Body):
    by: Literal["price", "throughput", "latency", "exacto"] | None = None
    partition: Literal["model", "none"] | None = None


class MaxPriceBody(_Body):
    """USD caps, sent as JSON numbers (prompt and completion per million tokens)."""

    prompt: float | None = None
    completion: float | None = None
    image: float | None = None
    audio: float | None = None
    request: float | None = None


class PercentileBody(_Body):
    p50: float | None = None
    p75: float | None = None
    p90: float | None = None
    p99: float | None = None


class ProviderBody(_Body):
    order: list[str] | None = None
    allow_fallbacks: bool | None = None
    require_parameters: bool | None = None
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    enforce_distillable_text: bool | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    quantizations: list[str] | None = None
    sort: str | SortBody | None = None
    max_price: MaxPriceBody | None = None
    preferred_min_throughput: float | PercentileBody | None = None
    preferred_max_latency: float | PercentileBody | None = None


class ChatBody(_Body):
    model: str | None = None
    models: list[str] | None = None
    messages: list[MessageBody]
    stream: bool | None = None
    tools: list[ToolBody] | None = None
    tool_choice: str | ToolChoiceBody | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatBody | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    min_p: float | None = None
    top_a: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: list[str] | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    reasoning: ReasoningBody | None = None
    plugins: list[PluginBody] | None = None
    user: str | None = None
    session_id: str | None = None
    metadata: dict[str, str] | None = None
    modalities: list[Literal["text", "image", "audio"]] | None = None
    service_tier: Literal["auto", "default", "fast", "flex", "priority", "scale"] | None = None
    provider: ProviderBody | None = None
