"""Proto → OpenRouter JSON: the one place a typed request becomes an HTTP body.

Rules, each relied on by callers:
- a field the caller did not set is never sent (explicit presence for scalars, UNSPECIFIED for
  enums, empty for lists and maps);
- enum values travel as OpenRouter's lowercase strings (``QUANTIZATION_FP8`` → ``"fp8"``);
- ``max_price`` values stay JSON numbers;
- ``extra_body`` is merged at the top level for fields the contract does not name yet; a key the
  contract names (or ``stream``) is refused, so the escape hatch cannot bypass validation or
  policy.
"""

from __future__ import annotations

import enum
import math
from typing import Any, TypeAlias

import pydantic_core
from google.protobuf import json_format, struct_pb2

from routerpc import pb
from routerpc._gen import enums
from routerpc_gateway.openrouter import ChatBody

__all__ = [
    "RESERVED_EXTRA_FIELDS",
    "ExtraBodyConflictError",
    "InvalidBodyError",
    "body_dict",
    "chat_body",
    "encode_chat",
    "provider_body",
    "wire",
]

RESERVED_EXTRA_FIELDS = frozenset({"stream", "stream_options"}) | frozenset(ChatBody.model_fields)
"""Keys ``extra_body`` may not carry: the RPC (Chat or StreamChat) decides streaming, and every
field the contract names must come from its typed field, so that validation and per-caller
policy (which read the typed fields) cannot be bypassed through the escape hatch."""


class InvalidBodyError(ValueError):
    """A value the proto rules cannot express is unusable as JSON (names the request field)."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


class ExtraBodyConflictError(InvalidBodyError):
    """``extra_body`` tried to set a key the gateway controls."""

    def __init__(self, key: str) -> None:
        why = (
            "the RPC decides streaming"
            if key in ("stream", "stream_options")
            else "set the typed field instead"
        )
        super().__init__(f"extra_body.{key}", f"extra_body may not set {key!r}; {why}")
        self.key = key


_wire_names: dict[type[enum.IntEnum], dict[int, str]] = {}


def wire(kind: type[enum.IntEnum], value: int) -> str:
    """OpenRouter's string for a proto enum value: the member name, lowercased.

    Looked up in a table made once per enum: building an IntEnum member per value costs more
    than the rest of converting a message.
    """
    names = _wire_names.get(kind)
    if names is None:
        names = _wire_names[kind] = {int(m): m.name.lower() for m in kind}
    name = names.get(value)
    return name if name is not None else kind(value).name.lower()  # ValueError if unknown


JsonObject: TypeAlias = dict[str, Any]
"""A JSON object of the body under construction (its schema: the models in ``openrouter``)."""

_MAX_SAFE_INTEGER = 2**53


def _plain(value: Any, where: str) -> Any:
    """JSON-ready Struct content: integral numbers as integers (Struct stores every number as a
    double, and ``3.0`` where a schema says ``integer`` is untidy), NaN and infinities refused
    (they are not JSON)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidBodyError(where, "must be a finite number (NaN and Infinity are not JSON)")
        if value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _struct(value: struct_pb2.Struct, where: str) -> dict[str, Any]:
    result: dict[str, Any] = _plain(json_format.MessageToDict(value), where)
    return result


def _cache_control(value: pb.CacheControl) -> JsonObject:
    if value.ttl:
        return {"type": "ephemeral", "ttl": value.ttl}
    return {"type": "ephemeral"}


def _part(part: pb.ContentPart) -> JsonObject:
    kind = part.WhichOneof("part")
    fields: dict[str, Any] = {"type": kind}
    if kind == "text":
        fields["text"] = part.text
    elif kind == "image_url":
        image: dict[str, Any] = {"url": part.image_url.url}
        if part.image_url.detail:
            image["detail"] = wire(enums.ImageDetail, part.image_url.detail)
        fields["image_url"] = image
    elif kind == "input_audio":
        fields["input_audio"] = {
            "data": part.input_audio.data,
            "format": part.input_audio.format,
        }
    elif kind == "file":
        source = {
            k: v
            for k, v in json_format.MessageToDict(
                part.file, preserving_proto_field_name=True
            ).items()
            if v
        }
        fields["file"] = source
    elif kind == "video_url":
        fields["video_url"] = {"url": part.video_url.url}
    if part.HasField("cache_control"):
        fields["cache_control"] = _cache_control(part.cache_control)
    return fields


def _message(message: pb.Message, where: str) -> JsonObject:
    fields: dict[str, Any] = {"role": wire(enums.Role, message.role)}
    content = message.WhichOneof("content")
    if content == "text":
        fields["content"] = message.text
    elif content == "parts":
        fields["content"] = [_part(p) for p in message.parts.parts]
    if message.name:
        fields["name"] = message.name
    if message.tool_calls:
        fields["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        fields["tool_call_id"] = message.tool_call_id
    if message.HasField("reasoning"):
        fields["reasoning"] = message.reasoning
    if message.HasField("refusal"):
        fields["refusal"] = message.refusal
    if message.HasField("reasoning_details"):
        fields["reasoning_details"] = _plain(
            json_format.MessageToDict(message.reasoning_details), f"{where}.reasoning_details"
        )
    return fields


def _tool(tool: pb.Tool, where: str) -> JsonObject:
    fields: dict[str, Any] = {}
    if tool.WhichOneof("tool") == "function":
        function: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            function["description"] = tool.function.description
        if tool.function.HasField("parameters"):
            function["parameters"] = _struct(
                tool.function.parameters, f"{where}.function.parameters"
            )
        if tool.function.HasField("strict"):
            function["strict"] = tool.function.strict
        fields = {"type": "function", "function": function}
    else:
        fields = {"type": tool.server.type}
        if tool.server.HasField("parameters"):
            fields["parameters"] = _struct(tool.server.parameters, f"{where}.server.parameters")
    if tool.HasField("cache_control"):
        fields["cache_control"] = _cache_control(tool.cache_control)
    return fields


def _tool_choice(choice: pb.ToolChoice) -> str | JsonObject:
    kind = choice.WhichOneof("choice")
    if kind == "mode":
        return wire(enums.ToolChoiceMode, choice.mode)
    if kind == "function_name":
        return {"type": "function", "function": {"name": choice.function_name}}
    return {"type": choice.server_tool_type}


def _response_format(fmt: pb.ResponseFormat) -> JsonObject:
    fields: dict[str, Any] = {"type": wire(enums.ResponseFormatType, fmt.type)}
    if fmt.HasField("json_schema"):
        spec = fmt.json_schema
        schema: dict[str, Any] = {"name": spec.name}
        if spec.description:
            schema["description"] = spec.description
        if spec.HasField("schema"):
            schema["schema"] = _struct(spec.schema, "response_format.json_schema.schema")
        if spec.HasField("strict"):
            schema["strict"] = spec.strict
        fields["json_schema"] = schema
    return fields


def _reasoning(reasoning: pb.Reasoning) -> JsonObject:
    fields: dict[str, Any] = {}
    if reasoning.effort:
        fields["effort"] = wire(enums.ReasoningEffort, reasoning.effort)
    for name in ("max_tokens", "exclude", "enabled"):
        if reasoning.HasField(name):
            fields[name] = getattr(reasoning, name)
    if reasoning.summary:
        fields["summary"] = wire(enums.ReasoningSummary, reasoning.summary)
    return fields


def _plugin(plugin: pb.Plugin, where: str) -> JsonObject:
    fields: dict[str, Any] = {}
    if plugin.HasField("options"):
        fields = _struct(plugin.options, f"{where}.options")
    fields["id"] = plugin.id
    if plugin.HasField("enabled"):
        fields["enabled"] = plugin.enabled
    return fields


def _present(message: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(message, name) for name in names if message.HasField(name)}


_PERCENTILES = ("p50", "p75", "p90", "p99")


def _performance(value: pb.PerformancePreference) -> float | JsonObject:
    if value.WhichOneof("preference") == "value":
        return value.value
    return _present(value.percentiles, _PERCENTILES)


def provider_body(provider: pb.ProviderConfig) -> JsonObject:
    """OpenRouter's ``provider`` object, holding exactly the preferences that were set."""
    fields: dict[str, Any] = _present(
        provider, ("allow_fallbacks", "require_parameters", "zdr", "enforce_distillable_text")
    )
    for name in ("order", "only", "ignore"):
        if values := getattr(provider, name):
            fields[name] = list(values)
    if provider.data_collection:
        fields["data_collection"] = wire(enums.DataCollection, provider.data_collection)
    if provider.quantizations:
        fields["quantizations"] = [wire(enums.Quantization, q) for q in provider.quantizations]
    sort = provider.WhichOneof("sort")
    if sort == "sort_strategy":
        fields["sort"] = wire(enums.SortStrategy, provider.sort_strategy)
    elif sort == "sort_config":
        config: dict[str, Any] = {}
        if provider.sort_config.by:
            config["by"] = wire(enums.SortStrategy, provider.sort_config.by)
        if provider.sort_config.partition:
            config["partition"] = wire(enums.SortPartition, provider.sort_config.partition)
        fields["sort"] = config
    if provider.HasField("max_price"):
        fields["max_price"] = _present(
            provider.max_price, ("prompt", "completion", "image", "audio", "request")
        )
    if provider.HasField("preferred_min_throughput"):
        fields["preferred_min_throughput"] = _performance(provider.preferred_min_throughput)
    if provider.HasField("preferred_max_latency"):
        fields["preferred_max_latency"] = _performance(provider.preferred_max_latency)
    return fields


_SCALARS = (
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "min_p",
    "top_a",
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "logprobs",
    "top_logprobs",
)


def chat_body(request: pb.ChatRequest, *, stream: bool) -> JsonObject:
    """The typed fields of the OpenRouter body (``extra_body`` excluded; see ``body_dict``),
    keys in the order the API reference lists them."""
    fields: JsonObject = {}
    if request.model:
        fields["model"] = request.model
    if request.models:
        fields["models"] = list(request.models)
    fields["messages"] = [_message(m, f"messages[{i}]") for i, m in enumerate(request.messages)]
    if stream:
        fields["stream"] = True
    if request.tools:
        fields["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(request.tools)]
    if request.HasField("tool_choice"):
        fields["tool_choice"] = _tool_choice(request.tool_choice)
    if request.HasField("response_format"):
        fields["response_format"] = _response_format(request.response_format)
    fields.update(_present(request, _SCALARS))
    if request.stop:
        fields["stop"] = list(request.stop)
    if request.logit_bias:
        fields["logit_bias"] = dict(request.logit_bias)
    if request.HasField("reasoning"):
        fields["reasoning"] = _reasoning(request.reasoning)
    if request.plugins:
        fields["plugins"] = [_plugin(p, f"plugins[{i}]") for i, p in enumerate(request.plugins)]
    for name in ("user", "session_id"):
        if value := getattr(request, name):
            fields[name] = value
    if request.metadata:
        fields["metadata"] = dict(request.metadata)
    if request.modalities:
        fields["modalities"] = [wire(enums.Modality, m) for m in request.modalities]
    if request.service_tier:
        fields["service_tier"] = wire(enums.ServiceTier, request.service_tier)
    if request.HasField("provider"):
        fields["provider"] = provider_body(request.provider)
    return fields


def _extra_fields(request: pb.ChatRequest) -> JsonObject:
    extra = _struct(request.extra_body, "extra_body")
    for key in extra:
        if key in RESERVED_EXTRA_FIELDS:
            raise ExtraBodyConflictError(key)
    return extra


def body_dict(request: pb.ChatRequest, *, stream: bool) -> JsonObject:
    """The full JSON object to send: the typed fields plus ``extra_body`` additions.

    The typed part is a :class:`~routerpc_gateway.openrouter.ChatBody` in its JSON form, built
    directly as plain objects: no model tree is constructed per request just to be dumped
    again. The tests hold every body they make to the model (``extra="forbid"``, literal enum
    values) and to the OpenAPI spec.
    """
    body = chat_body(request, stream=stream)
    if request.HasField("extra_body"):
        body.update(_extra_fields(request))
    return body


def encode_chat(request: pb.ChatRequest, *, stream: bool) -> bytes:
    """The request body bytes for ``POST /chat/completions``: compact UTF-8 JSON, written in one
    pass by pydantic's Rust serializer."""
    return pydantic_core.to_json(body_dict(request, stream=stream))
