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
from collections.abc import Callable, Iterable
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
    for field, value in message.ListFields():  # only the set fields; see FieldTable
        name = field.name
        if name == "text":
            fields["content"] = value
        elif name == "parts":
            fields["content"] = [_part(p) for p in value.parts]
        elif name == "tool_calls":
            fields["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in value
            ]
        elif name == "reasoning_details":
            fields["reasoning_details"] = _plain(
                json_format.MessageToDict(value), f"{where}.reasoning_details"
            )
        elif name in _MESSAGE_SCALARS:
            fields[name] = value
    return fields


_MESSAGE_SCALARS = frozenset({"name", "tool_call_id", "reasoning", "refusal"})
MESSAGE_FIELDS = frozenset(
    {"role", "text", "parts", "tool_calls", "reasoning_details"} | _MESSAGE_SCALARS
)
"""Every ``Message`` field ``_message`` writes (tests/unit/test_convert.py holds it to the
contract)."""


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


def _same(value: Any) -> Any:
    return value


def _enum(kind: type[enum.IntEnum]) -> Callable[[int], str]:
    return lambda value: wire(kind, value)


def _enums(kind: type[enum.IntEnum]) -> Callable[[Iterable[int]], list[str]]:
    return lambda values: [wire(kind, value) for value in values]


def _indexed(
    convert: Callable[[Any, str], JsonObject], name: str
) -> Callable[[Iterable[Any]], list[JsonObject]]:
    """A list converter whose items know their own path (``tools[2]``) for error messages."""
    return lambda items: [convert(item, f"{name}[{i}]") for i, item in enumerate(items)]


def _sort_config(config: pb.SortConfig) -> JsonObject:
    fields: dict[str, Any] = {}
    if config.by:
        fields["by"] = wire(enums.SortStrategy, config.by)
    if config.partition:
        fields["partition"] = wire(enums.SortPartition, config.partition)
    return fields


def _max_price(price: pb.MaxPrice) -> JsonObject:
    return _present(price, ("prompt", "completion", "image", "audio", "request"))


FieldTable: TypeAlias = dict[str, tuple[str, Callable[[Any], Any]]]
"""Per proto field: its JSON key, and how its value (as ``ListFields`` gives it) is written.

Bodies are built from ``ListFields()``, which visits only the fields that are set (explicit
presence, non-zero enums, non-empty lists and maps: the "never send an unset field" rule
exactly), instead of asking each field of a mostly empty message whether it is set: that was
about 40% of the instructions of building the seed request's body. Every field of these
messages has a row or is named as left out (tests/unit/test_convert.py checks both)."""

PROVIDER_FIELDS: FieldTable = {
    "order": ("order", list),
    "allow_fallbacks": ("allow_fallbacks", _same),
    "require_parameters": ("require_parameters", _same),
    "data_collection": ("data_collection", _enum(enums.DataCollection)),
    "zdr": ("zdr", _same),
    "enforce_distillable_text": ("enforce_distillable_text", _same),
    "only": ("only", list),
    "ignore": ("ignore", list),
    "quantizations": ("quantizations", _enums(enums.Quantization)),
    "sort_strategy": ("sort", _enum(enums.SortStrategy)),
    "sort_config": ("sort", _sort_config),
    "max_price": ("max_price", _max_price),
    "preferred_min_throughput": ("preferred_min_throughput", _performance),
    "preferred_max_latency": ("preferred_max_latency", _performance),
}


def _set_fields(message: Any, table: FieldTable) -> JsonObject:
    fields: JsonObject = {}
    for field, value in message.ListFields():
        row = table.get(field.name)
        if row is not None:
            key, convert = row
            fields[key] = convert(value)
    return fields


def provider_body(provider: pb.ProviderConfig) -> JsonObject:
    """OpenRouter's ``provider`` object, holding exactly the preferences that were set."""
    return _set_fields(provider, PROVIDER_FIELDS)


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
    "model",
    "user",
    "session_id",
)

CHAT_FIELDS: FieldTable = {
    **{name: (name, _same) for name in _SCALARS},
    "models": ("models", list),
    "messages": ("messages", _indexed(_message, "messages")),
    "tools": ("tools", _indexed(_tool, "tools")),
    "tool_choice": ("tool_choice", _tool_choice),
    "response_format": ("response_format", _response_format),
    "stop": ("stop", list),
    "logit_bias": ("logit_bias", dict),
    "reasoning": ("reasoning", _reasoning),
    "plugins": ("plugins", _indexed(_plugin, "plugins")),
    "metadata": ("metadata", dict),
    "modalities": ("modalities", _enums(enums.Modality)),
    "service_tier": ("service_tier", _enum(enums.ServiceTier)),
    "provider": ("provider", provider_body),
}
LEFT_OUT_OF_CHAT_FIELDS = frozenset({"extra_body"})
"""Merged by ``body_dict`` after its keys are checked, not converted field by field."""


def chat_body(request: pb.ChatRequest, *, stream: bool) -> JsonObject:
    """The typed fields of the OpenRouter body (``extra_body`` excluded; see ``body_dict``),
    keys in the contract's field order; ``messages`` always, ``stream`` only when true."""
    fields = _set_fields(request, CHAT_FIELDS)
    fields.setdefault("messages", [])
    if stream:
        fields["stream"] = True
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
