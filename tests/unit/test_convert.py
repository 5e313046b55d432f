"""Proto → OpenRouter JSON (``routerpc_gateway.convert``), as tables.

Expected wire values are written out literally (from ``shared/reference/openrouter-api.md``),
never derived from the enum names, so a renamed enum member cannot silently change the wire.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from routerpc import (
    ChatRequestBuilder,
    DataCollection,
    ImageDetail,
    Modality,
    Quantization,
    ReasoningEffort,
    ReasoningSummary,
    ResponseFormatType,
    Role,
    ServiceTier,
    SortPartition,
    SortStrategy,
    ToolChoiceMode,
    pb,
)
from routerpc_gateway import convert
from routerpc_gateway.openrouter import ChatBody

ABSENT = object()


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def chat(**fields: Any) -> pb.ChatRequest:
    """A request with one user message plus ``fields`` (not validated: conversion only)."""
    fields.setdefault("messages", [pb.Message(role=Role.USER, text="hi")])
    return pb.ChatRequest(**fields)


def body(request: pb.ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    """The body as sent: the encoded bytes parsed back (and equal to ``body_dict``)."""
    sent: dict[str, Any] = json.loads(convert.encode_chat(request, stream=stream))
    assert sent == convert.body_dict(request, stream=stream)
    assert_matches_model(convert.chat_body(request, stream=stream))
    return sent


def assert_matches_model(typed: dict[str, Any]) -> None:
    """The typed part of a body is a valid ``ChatBody`` (no unknown key, documented enum
    strings, right JSON types) and is exactly that model's JSON form."""
    model = ChatBody.model_validate(typed)
    assert model.model_dump(mode="json", exclude_unset=True, by_alias=True) == typed


def at(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(value, dict):
            if step not in value:
                return ABSENT
            value = value[step]
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return ABSENT
    return value


# Enums -------------------------------------------------------------------------------------

WIRE: dict[type[enum.IntEnum], dict[str, str]] = {
    Role: {
        "SYSTEM": "system",
        "DEVELOPER": "developer",
        "USER": "user",
        "ASSISTANT": "assistant",
        "TOOL": "tool",
    },
    ImageDetail: {"AUTO": "auto", "LOW": "low", "HIGH": "high", "ORIGINAL": "original"},
    ToolChoiceMode: {"NONE": "none", "AUTO": "auto", "REQUIRED": "required"},
    ResponseFormatType: {
        "TEXT": "text",
        "JSON_OBJECT": "json_object",
        "JSON_SCHEMA": "json_schema",
    },
    ReasoningEffort: {
        "NONE": "none",
        "MINIMAL": "minimal",
        "LOW": "low",
        "MEDIUM": "medium",
        "HIGH": "high",
        "XHIGH": "xhigh",
        "MAX": "max",
    },
    ReasoningSummary: {"AUTO": "auto", "CONCISE": "concise", "DETAILED": "detailed"},
    Modality: {"TEXT": "text", "IMAGE": "image", "AUDIO": "audio"},
    ServiceTier: {
        "AUTO": "auto",
        "DEFAULT": "default",
        "FAST": "fast",
        "FLEX": "flex",
        "PRIORITY": "priority",
        "SCALE": "scale",
    },
    Quantization: {
        "INT4": "int4",
        "INT8": "int8",
        "FP4": "fp4",
        "MXFP4": "mxfp4",
        "NVFP4": "nvfp4",
        "FP6": "fp6",
        "FP8": "fp8",
        "MXFP8": "mxfp8",
        "FP16": "fp16",
        "BF16": "bf16",
        "FP32": "fp32",
        "UNKNOWN": "unknown",
    },
    DataCollection: {"ALLOW": "allow", "DENY": "deny"},
    SortStrategy: {
        "PRICE": "price",
        "THROUGHPUT": "throughput",
        "LATENCY": "latency",
        "EXACTO": "exacto",
    },
    SortPartition: {"MODEL": "model", "NONE": "none"},
}


def _image(detail: int) -> pb.ChatRequest:
    part = pb.ContentPart(image_url=pb.ImageUrl(url="https://example.com/a.png", detail=detail))
    return chat(messages=[pb.Message(role=Role.USER, parts=pb.ContentParts(parts=[part]))])


PLACES: dict[type[enum.IntEnum], tuple[Callable[[Any], pb.ChatRequest], tuple[Any, ...]]] = {
    Role: (lambda v: chat(messages=[pb.Message(role=v, text="x")]), ("messages", 0, "role")),
    ImageDetail: (_image, ("messages", 0, "content", 0, "image_url", "detail")),
    ToolChoiceMode: (lambda v: chat(tool_choice=pb.ToolChoice(mode=v)), ("tool_choice",)),
    ResponseFormatType: (
        lambda v: chat(response_format=pb.ResponseFormat(type=v)),
        ("response_format", "type"),
    ),
    ReasoningEffort: (lambda v: chat(reasoning=pb.Reasoning(effort=v)), ("reasoning", "effort")),
    ReasoningSummary: (
        lambda v: chat(reasoning=pb.Reasoning(summary=v)),
        ("reasoning", "summary"),
    ),
    Modality: (lambda v: chat(modalities=[v]), ("modalities", 0)),
    ServiceTier: (lambda v: chat(service_tier=v), ("service_tier",)),
    Quantization: (
        lambda v: chat(provider=pb.ProviderConfig(quantizations=[v])),
        ("provider", "quantizations", 0),
    ),
    DataCollection: (
        lambda v: chat(provider=pb.ProviderConfig(data_collection=v)),
        ("provider", "data_collection"),
    ),
    SortStrategy: (
        lambda v: chat(provider=pb.ProviderConfig(sort_strategy=v)),
        ("provider", "sort"),
    ),
    SortPartition: (
        lambda v: chat(provider=pb.ProviderConfig(sort_config=pb.SortConfig(partition=v))),
        ("provider", "sort", "partition"),
    ),
}

ENUM_ROWS = [
    pytest.param(kind, kind[name], text, id=f"{kind.__name__}.{name}")
    for kind, table in WIRE.items()
    for name, text in table.items()
]


@pytest.mark.parametrize(("kind", "member", "text"), ENUM_ROWS)
def test_enum_travels_as_its_lowercase_wire_string(
    kind: type[enum.IntEnum], member: enum.IntEnum, text: str
) -> None:
    assert convert.wire(kind, member) == text
    make, path = PLACES[kind]
    assert at(body(make(member)), path) == text


def _enums_reachable_from(descriptor: Descriptor, seen: set[str], found: set[str]) -> set[str]:
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.enum_type is not None:
            found.add(field.enum_type.name)
        kind = field.message_type
        if kind is not None and kind.full_name not in seen:
            _enums_reachable_from(kind, seen, found)
    return found


def test_the_wire_table_covers_every_enum_value_a_request_can_carry() -> None:
    sent_enums = _enums_reachable_from(pb.ChatRequest.DESCRIPTOR, set(), set())
    sent_enums.discard("NullValue")  # google.protobuf.Struct internals
    assert {kind.__name__ for kind in WIRE} == sent_enums
    for kind, table in WIRE.items():
        assert set(table) == {m.name for m in kind if m}, kind.__name__
    assert set(PLACES) == set(WIRE)


@pytest.mark.parametrize(
    ("request_", "path"),
    [
        pytest.param(_image(0), ("messages", 0, "content", 0, "image_url", "detail"), id="detail"),
        pytest.param(
            chat(reasoning=pb.Reasoning(max_tokens=5)), ("reasoning", "effort"), id="effort"
        ),
        pytest.param(
            chat(reasoning=pb.Reasoning(effort=3)), ("reasoning", "summary"), id="summary"
        ),
        pytest.param(chat(), ("service_tier",), id="service_tier"),
        pytest.param(
            chat(provider=pb.ProviderConfig(zdr=True)),
            ("provider", "data_collection"),
            id="data_collection",
        ),
        pytest.param(
            chat(provider=pb.ProviderConfig(sort_config=pb.SortConfig(partition=1))),
            ("provider", "sort", "by"),
            id="sort.by",
        ),
        pytest.param(
            chat(provider=pb.ProviderConfig(sort_config=pb.SortConfig(by=1))),
            ("provider", "sort", "partition"),
            id="sort.partition",
        ),
        pytest.param(chat(provider=pb.ProviderConfig(zdr=True)), ("provider", "sort"), id="sort"),
    ],
)
def test_unspecified_enum_is_never_sent(request_: pb.ChatRequest, path: tuple[Any, ...]) -> None:
    sent = body(request_)
    assert at(sent, path) is ABSENT
    assert "unspecified" not in json.dumps(sent)


# Presence ----------------------------------------------------------------------------------


def _scaffold() -> pb.ChatRequest:
    """A request with every container an optional scalar lives in, none of them set."""
    return chat(
        messages=[pb.Message(role=Role.ASSISTANT, text="earlier")],
        tools=[pb.Tool(function=pb.FunctionTool(name="f"))],
        response_format=pb.ResponseFormat(
            type=ResponseFormatType.JSON_SCHEMA, json_schema=pb.JsonSchemaFormat(name="n")
        ),
        plugins=[pb.Plugin(id="web")],
    )


PRESENCE: dict[str, tuple[Any, ...]] = {
    "parallel_tool_calls": ("parallel_tool_calls",),
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "top_k": ("top_k",),
    "frequency_penalty": ("frequency_penalty",),
    "presence_penalty": ("presence_penalty",),
    "repetition_penalty": ("repetition_penalty",),
    "min_p": ("min_p",),
    "top_a": ("top_a",),
    "seed": ("seed",),
    "max_tokens": ("max_tokens",),
    "max_completion_tokens": ("max_completion_tokens",),
    "logprobs": ("logprobs",),
    "top_logprobs": ("top_logprobs",),
    "messages[0].reasoning": ("messages", 0, "reasoning"),
    "messages[0].refusal": ("messages", 0, "refusal"),
    "tools[0].function.strict": ("tools", 0, "function", "strict"),
    "response_format.json_schema.strict": ("response_format", "json_schema", "strict"),
    "reasoning.max_tokens": ("reasoning", "max_tokens"),
    "reasoning.exclude": ("reasoning", "exclude"),
    "reasoning.enabled": ("reasoning", "enabled"),
    "plugins[0].enabled": ("plugins", 0, "enabled"),
    "provider.allow_fallbacks": ("provider", "allow_fallbacks"),
    "provider.require_parameters": ("provider", "require_parameters"),
    "provider.zdr": ("provider", "zdr"),
    "provider.enforce_distillable_text": ("provider", "enforce_distillable_text"),
    **{
        f"provider.max_price.{cap}": ("provider", "max_price", cap)
        for cap in ("prompt", "completion", "image", "audio", "request")
    },
    **{
        f"provider.{pref}.percentiles.{p}": ("provider", pref, p)
        for pref in ("preferred_min_throughput", "preferred_max_latency")
        for p in ("p50", "p75", "p90", "p99")
    },
}


def _set(message: Any, dotted: str) -> FieldDescriptor:
    """Set the field at ``dotted`` (``tools[0].function.strict``) to its zero value."""
    *parents, leaf = dotted.split(".")
    for step in parents:
        name, _, index = step.partition("[")
        message = getattr(message, name)
        if index:
            message = message[int(index.rstrip("]"))]
    field: FieldDescriptor = message.DESCRIPTOR.fields_by_name[leaf]
    zero = {
        FieldDescriptor.CPPTYPE_BOOL: False,
        FieldDescriptor.CPPTYPE_DOUBLE: 0.0,
        FieldDescriptor.CPPTYPE_STRING: "",
    }.get(field.cpp_type, 0)
    setattr(message, leaf, zero)
    assert message.HasField(leaf)
    return field


@pytest.mark.parametrize(("dotted", "path"), PRESENCE.items(), ids=list(PRESENCE))
def test_optional_scalar_set_to_zero_or_false_is_sent(dotted: str, path: tuple[Any, ...]) -> None:
    assert at(body(_scaffold()), path) is ABSENT  # unset: not sent

    request = _scaffold()
    field = _set(request, dotted)
    value = at(body(request), path)
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        assert value is False
    elif field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        assert value == ""
    else:
        assert type(value) in (int, float)
        assert value == 0


def _optional_scalars(descriptor: Descriptor, prefix: str, seen: set[str]) -> set[str]:
    seen.add(descriptor.full_name)
    found: set[str] = set()
    for field in descriptor.fields:
        oneof = field.containing_oneof
        proto3_optional = oneof is not None and oneof.name == f"_{field.name}"
        if field.message_type is None and proto3_optional:
            found.add(f"{prefix}{field.name}")
        kind = field.message_type
        if kind is not None and not kind.full_name.startswith("google.protobuf."):
            if kind.GetOptions().map_entry or kind.full_name in seen:
                continue
            index = "[0]" if field.is_repeated else ""
            found |= _optional_scalars(kind, f"{prefix}{field.name}{index}.", set(seen))
    return found


def test_presence_table_covers_every_optional_scalar() -> None:
    every = _optional_scalars(pb.ChatRequest.DESCRIPTOR, "", set())
    # One message, tool and plugin suffice; the percentile cutoffs are reached through both
    # performance preferences.
    assert every == set(PRESENCE)


@pytest.mark.parametrize(
    ("kind", "converted"),
    [
        (pb.ChatRequest, set(convert.CHAT_FIELDS) | convert.LEFT_OUT_OF_CHAT_FIELDS),
        (pb.ProviderConfig, set(convert.PROVIDER_FIELDS)),
        (pb.Message, set(convert.MESSAGE_FIELDS)),
    ],
)
def test_every_field_of_a_message_built_from_its_set_fields_has_a_row(
    kind: Any, converted: set[str]
) -> None:
    # A field added to the contract without a row would be dropped from the body silently.
    assert {field.name for field in kind.DESCRIPTOR.fields} == converted


OPTIONAL_TOP_LEVEL = {
    "parallel_tool_calls": st.booleans(),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "top_k": st.integers(0, 1000),
    "frequency_penalty": st.floats(-2, 2),
    "presence_penalty": st.floats(-2, 2),
    "repetition_penalty": st.floats(0, 2),
    "min_p": st.floats(0, 1),
    "top_a": st.floats(0, 1),
    "seed": st.integers(-(2**53) + 1, 2**53 - 1),
    "max_tokens": st.integers(1, 2**31 - 1),
    "max_completion_tokens": st.integers(1, 2**31 - 1),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 20),
}


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional=OPTIONAL_TOP_LEVEL))  # type: ignore[arg-type]
def test_exactly_the_set_scalars_are_sent_with_their_values(values: dict[str, Any]) -> None:
    sent = body(chat(**values))
    assert set(sent) == {"messages", *values}
    for name, value in values.items():
        assert sent[name] == value
        assert type(sent[name]) is type(value) or isinstance(value, float)


# Provider ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        pytest.param(pb.ProviderConfig(sort_strategy=SortStrategy.PRICE), "price", id="price"),
        pytest.param(pb.ProviderConfig(sort_strategy=SortStrategy.EXACTO), "exacto", id="exacto"),
        pytest.param(
            pb.ProviderConfig(
                sort_config=pb.SortConfig(by=SortStrategy.LATENCY, partition=SortPartition.NONE)
            ),
            {"by": "latency", "partition": "none"},
            id="object-by-and-partition",
        ),
        pytest.param(
            pb.ProviderConfig(sort_config=pb.SortConfig(partition=SortPartition.MODEL)),
            {"partition": "model"},
            id="object-partition-only",
        ),
        pytest.param(
            pb.ProviderConfig(sort_config=pb.SortConfig(by=SortStrategy.THROUGHPUT)),
            {"by": "throughput"},
            id="object-by-only",
        ),
        pytest.param(pb.ProviderConfig(sort_config=pb.SortConfig()), {}, id="object-empty"),
        pytest.param(pb.ProviderConfig(zdr=True), ABSENT, id="unset"),
    ],
)
def test_sort_string_form_or_object_form(provider: pb.ProviderConfig, expected: Any) -> None:
    assert at(body(chat(provider=provider)), ("provider", "sort")) == expected


def test_builder_sort_picks_the_form() -> None:
    string = ChatRequestBuilder().with_text("x").with_sort("latency").build()
    assert body(string.proto)["provider"]["sort"] == "latency"
    obj = ChatRequestBuilder().with_text("x").with_sort("price", partition="none").build()
    assert body(obj.proto)["provider"]["sort"] == {"by": "price", "partition": "none"}


@pytest.mark.parametrize("value", [0, 1, 0.5, 1e-6, 2.25, 1_000_000])
@pytest.mark.parametrize("cap", ["prompt", "completion", "image", "audio", "request"])
def test_max_price_stays_a_json_number(cap: str, value: float) -> None:
    request = chat(provider=pb.ProviderConfig(max_price=pb.MaxPrice(**{cap: value})))
    encoded = convert.encode_chat(request, stream=False).decode()
    sent = json.loads(encoded)["provider"]["max_price"]
    assert sent == {cap: value}
    assert type(sent[cap]) in (int, float)  # never "1"
    assert f'"{cap}":"' not in encoded


def test_max_price_sends_only_the_caps_that_were_set() -> None:
    request = chat(provider=pb.ProviderConfig(max_price=pb.MaxPrice(prompt=1, completion=2)))
    assert body(request)["provider"]["max_price"] == {"prompt": 1, "completion": 2}


@pytest.mark.parametrize("pref", ["preferred_min_throughput", "preferred_max_latency"])
@pytest.mark.parametrize(
    ("preference", "expected"),
    [
        pytest.param(pb.PerformancePreference(value=50), 50, id="number"),
        pytest.param(pb.PerformancePreference(value=0), 0, id="number-zero"),
        pytest.param(
            pb.PerformancePreference(
                percentiles=pb.PercentileCutoffs(p50=1, p75=2, p90=3, p99=4.5)
            ),
            {"p50": 1, "p75": 2, "p90": 3, "p99": 4.5},
            id="all-percentiles",
        ),
        pytest.param(
            pb.PerformancePreference(percentiles=pb.PercentileCutoffs(p90=20)),
            {"p90": 20},
            id="one-percentile",
        ),
        pytest.param(
            pb.PerformancePreference(percentiles=pb.PercentileCutoffs()), {}, id="no-percentile"
        ),
    ],
)
def test_preferred_performance_number_or_percentiles(
    pref: str, preference: pb.PerformancePreference, expected: Any
) -> None:
    sent = body(chat(provider=pb.ProviderConfig(**{pref: preference})))["provider"][pref]
    assert sent == expected
    if not isinstance(expected, dict):
        assert type(sent) in (int, float)


def test_provider_lists_and_enums() -> None:
    provider = pb.ProviderConfig(
        order=["anthropic", "deepinfra/turbo"],
        only=["anthropic"],
        ignore=["azure"],
        quantizations=[Quantization.FP8, Quantization.BF16, Quantization.UNKNOWN],
        data_collection=DataCollection.DENY,
    )
    assert body(chat(provider=provider))["provider"] == {
        "order": ["anthropic", "deepinfra/turbo"],
        "only": ["anthropic"],
        "ignore": ["azure"],
        "quantizations": ["fp8", "bf16", "unknown"],
        "data_collection": "deny",
    }


def test_empty_provider_is_an_empty_object_and_unset_provider_is_absent() -> None:
    assert body(chat(provider=pb.ProviderConfig()))["provider"] == {}
    assert "provider" not in body(chat())


# Messages and content parts ------------------------------------------------------------------

PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        pytest.param(pb.ContentPart(text="hi"), {"type": "text", "text": "hi"}, id="text"),
        pytest.param(pb.ContentPart(text=""), {"type": "text", "text": ""}, id="text-empty"),
        pytest.param(
            pb.ContentPart(text="hi", cache_control=pb.CacheControl()),
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
            id="text-cached",
        ),
        pytest.param(
            pb.ContentPart(text="hi", cache_control=pb.CacheControl(ttl="1h")),
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            id="text-cached-1h",
        ),
        pytest.param(
            pb.ContentPart(image_url=pb.ImageUrl(url=PNG)),
            {"type": "image_url", "image_url": {"url": PNG}},
            id="image",
        ),
        pytest.param(
            pb.ContentPart(image_url=pb.ImageUrl(url=PNG, detail=ImageDetail.ORIGINAL)),
            {"type": "image_url", "image_url": {"url": PNG, "detail": "original"}},
            id="image-detail",
        ),
        pytest.param(
            pb.ContentPart(input_audio=pb.InputAudio(data="UklGRg==", format="wav")),
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            id="audio",
        ),
        pytest.param(
            pb.ContentPart(
                file=pb.FileInput(filename="a.pdf", file_data="https://example.com/a.pdf")
            ),
            {
                "type": "file",
                "file": {"filename": "a.pdf", "file_data": "https://example.com/a.pdf"},
            },
            id="file-data",
        ),
        pytest.param(
            pb.ContentPart(file=pb.FileInput(file_id="file-1")),
            {"type": "file", "file": {"file_id": "file-1"}},
            id="file-id",
        ),
        pytest.param(
            pb.ContentPart(video_url=pb.VideoUrl(url="https://example.com/v.mp4")),
            {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
            id="video",
        ),
    ],
)
def test_content_part(part: pb.ContentPart, expected: dict[str, Any]) -> None:
    message = pb.Message(role=Role.USER, parts=pb.ContentParts(parts=[part]))
    assert body(chat(messages=[message]))["messages"] == [{"role": "user", "content": [expected]}]


def test_every_part_kind_has_a_row() -> None:
    kinds = {f.name for f in pb.ContentPart.DESCRIPTOR.oneofs_by_name["part"].fields}
    assert kinds == {"text", "image_url", "input_audio", "file", "video_url"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            pb.Message(role=Role.USER, text="hi", name="alice"),
            {"role": "user", "content": "hi", "name": "alice"},
            id="user-text-name",
        ),
        pytest.param(
            pb.Message(role=Role.SYSTEM, text=""),
            {"role": "system", "content": ""},
            id="system-empty-text",
        ),
        pytest.param(
            pb.Message(
                role=Role.ASSISTANT,
                tool_calls=[pb.ToolCall(id="call_1", name="add", arguments='{"a":1}')],
            ),
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a":1}'},
                    }
                ],
            },
            id="assistant-tool-calls-no-content",
        ),
        pytest.param(
            pb.Message(role=Role.ASSISTANT, text="no", reasoning="why", refusal="no"),
            {"role": "assistant", "content": "no", "reasoning": "why", "refusal": "no"},
            id="assistant-reasoning-refusal",
        ),
        pytest.param(
            pb.Message(role=Role.TOOL, text="4", tool_call_id="call_1"),
            {"role": "tool", "content": "4", "tool_call_id": "call_1"},
            id="tool-result",
        ),
    ],
)
def test_message(message: pb.Message, expected: dict[str, Any]) -> None:
    assert body(chat(messages=[message]))["messages"] == [expected]


def test_reasoning_details_go_back_unchanged() -> None:
    details = [
        {
            "type": "reasoning.text",
            "text": "t",
            "signature": "sig",
            "format": "anthropic-claude-v1",
        },
        {"type": "reasoning.encrypted", "data": "ZW5j", "id": "rs_1"},
    ]
    request = ChatRequestBuilder().with_text("q").with_assistant("a", reasoning_details=details)
    sent = body(request.with_text("next").build().proto)
    assert sent["messages"][1]["reasoning_details"] == details


# Tools, tool choice, response format -------------------------------------------------------

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}


@pytest.mark.parametrize(
    ("tool", "expected"),
    [
        pytest.param(
            pb.Tool(function=pb.FunctionTool(name="f")),
            {"type": "function", "function": {"name": "f"}},
            id="function-minimal",
        ),
        pytest.param(
            pb.Tool(
                function=pb.FunctionTool(
                    name="get_weather",
                    description="Weather",
                    parameters=struct(PARAMETERS),
                    strict=True,
                )
            ),
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": PARAMETERS,
                    "strict": True,
                },
            },
            id="function-full",
        ),
        pytest.param(
            pb.Tool(function=pb.FunctionTool(name="f"), cache_control=pb.CacheControl(ttl="5m")),
            {
                "type": "function",
                "function": {"name": "f"},
                "cache_control": {"type": "ephemeral", "ttl": "5m"},
            },
            id="function-cached",
        ),
        pytest.param(
            pb.Tool(server=pb.ServerTool(type="openrouter:datetime")),
            {"type": "openrouter:datetime"},
            id="server-minimal",
        ),
        pytest.param(
            pb.Tool(
                server=pb.ServerTool(
                    type="openrouter:web_search",
                    parameters=struct({"max_results": 3, "engine": "exa"}),
                )
            ),
            {"type": "openrouter:web_search", "parameters": {"max_results": 3, "engine": "exa"}},
            id="server-parameters",
        ),
    ],
)
def test_tool(tool: pb.Tool, expected: dict[str, Any]) -> None:
    assert body(chat(tools=[tool]))["tools"] == [expected]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        pytest.param(pb.ToolChoice(mode=ToolChoiceMode.NONE), "none", id="none"),
        pytest.param(pb.ToolChoice(mode=ToolChoiceMode.AUTO), "auto", id="auto"),
        pytest.param(pb.ToolChoice(mode=ToolChoiceMode.REQUIRED), "required", id="required"),
        pytest.param(
            pb.ToolChoice(function_name="get_weather"),
            {"type": "function", "function": {"name": "get_weather"}},
            id="function",
        ),
        pytest.param(
            pb.ToolChoice(server_tool_type="openrouter:web_search"),
            {"type": "openrouter:web_search"},
            id="server-tool",
        ),
    ],
)
def test_tool_choice(choice: pb.ToolChoice, expected: Any) -> None:
    assert body(chat(tool_choice=choice))["tool_choice"] == expected


def test_no_tools_no_tool_choice() -> None:
    sent = body(chat())
    assert "tools" not in sent
    assert "tool_choice" not in sent


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        pytest.param(pb.ResponseFormat(type=ResponseFormatType.TEXT), {"type": "text"}, id="text"),
        pytest.param(
            pb.ResponseFormat(type=ResponseFormatType.JSON_OBJECT),
            {"type": "json_object"},
            id="json-object",
        ),
        pytest.param(
            pb.ResponseFormat(
                type=ResponseFormatType.JSON_SCHEMA,
                json_schema=pb.JsonSchemaFormat(
                    name="weather", description="d", schema=struct(PARAMETERS), strict=True
                ),
            ),
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "weather",
                    "description": "d",
                    "schema": PARAMETERS,
                    "strict": True,
                },
            },
            id="json-schema-full",
        ),
        pytest.param(
            pb.ResponseFormat(
                type=ResponseFormatType.JSON_SCHEMA,
                json_schema=pb.JsonSchemaFormat(name="n", schema=struct({"type": "object"})),
            ),
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
            id="json-schema-minimal",
        ),
    ],
)
def test_response_format(fmt: pb.ResponseFormat, expected: dict[str, Any]) -> None:
    sent = body(chat(response_format=fmt))["response_format"]
    assert sent == expected
    assert "schema_" not in json.dumps(sent)


def test_json_schema_key_is_schema_through_the_builder() -> None:
    request = ChatRequestBuilder().with_text("x").with_json_schema("n", PARAMETERS).build()
    encoded = convert.encode_chat(request.proto, stream=False).decode()
    assert '"schema":{' in encoded
    assert "schema_" not in encoded


# Reasoning, plugins, top-level lists and maps ----------------------------------------------


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        pytest.param(pb.Reasoning(), {}, id="empty"),
        pytest.param(
            pb.Reasoning(effort=ReasoningEffort.HIGH, summary=ReasoningSummary.CONCISE),
            {"effort": "high", "summary": "concise"},
            id="effort-summary",
        ),
        pytest.param(
            pb.Reasoning(max_tokens=2048, exclude=True, enabled=True),
            {"max_tokens": 2048, "exclude": True, "enabled": True},
            id="budget",
        ),
        pytest.param(pb.Reasoning(enabled=False), {"enabled": False}, id="disabled"),
    ],
)
def test_reasoning(reasoning: pb.Reasoning, expected: dict[str, Any]) -> None:
    assert body(chat(reasoning=reasoning))["reasoning"] == expected


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        pytest.param(pb.Plugin(id="moderation"), {"id": "moderation"}, id="bare"),
        pytest.param(
            pb.Plugin(id="context-compression", enabled=False),
            {"id": "context-compression", "enabled": False},
            id="disabled",
        ),
        pytest.param(
            pb.Plugin(
                id="web",
                enabled=True,
                options=struct({"max_results": 3, "engine": "exa", "include_domains": ["a.b"]}),
            ),
            {
                "id": "web",
                "enabled": True,
                "max_results": 3,
                "engine": "exa",
                "include_domains": ["a.b"],
            },
            id="options-next-to-id",
        ),
        pytest.param(
            pb.Plugin(id="file-parser", options=struct({"pdf": {"engine": "mistral-ocr"}})),
            {"id": "file-parser", "pdf": {"engine": "mistral-ocr"}},
            id="nested-options",
        ),
        pytest.param(
            pb.Plugin(id="web", enabled=False, options=struct({"id": "evil", "enabled": True})),
            {"id": "web", "enabled": False},
            id="typed-fields-win-over-options",
        ),
    ],
)
def test_plugin_options_merge_next_to_id(plugin: pb.Plugin, expected: dict[str, Any]) -> None:
    assert body(chat(plugins=[plugin]))["plugins"] == [expected]


def test_plugin_options_from_the_builder() -> None:
    request = ChatRequestBuilder().with_text("x").with_plugin("web", max_results=2).build()
    assert body(request.proto)["plugins"] == [{"id": "web", "max_results": 2}]


def test_lists_and_maps() -> None:
    request = chat(
        model="openai/gpt-4o",
        models=["a/b", "c/d"],
        stop=["\n", "END"],
        logit_bias={"50256": -100, "7": 2.5},
        metadata={"team": "search"},
        modalities=[Modality.TEXT, Modality.IMAGE],
        user="user-1",
        session_id="s-1",
        service_tier=ServiceTier.FLEX,
    )
    sent = body(request)
    assert {k: v for k, v in sent.items() if k != "messages"} == {
        "model": "openai/gpt-4o",
        "models": ["a/b", "c/d"],
        "stop": ["\n", "END"],
        "logit_bias": {"50256": -100, "7": 2.5},
        "metadata": {"team": "search"},
        "modalities": ["text", "image"],
        "user": "user-1",
        "session_id": "s-1",
        "service_tier": "flex",
    }


def test_empty_strings_lists_and_maps_are_not_sent() -> None:
    assert body(chat(model="", user="", session_id="")) == {
        "messages": [{"role": "user", "content": "hi"}]
    }


# Stream and extra_body ---------------------------------------------------------------------


def test_stream_is_sent_only_for_streams() -> None:
    assert "stream" not in body(chat(), stream=False)
    assert body(chat(), stream=True)["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_extra_body_adds_fields_the_contract_does_not_name(stream: bool) -> None:
    request = chat(
        model="openai/gpt-4o",
        temperature=0.0,
        extra_body=struct({"transforms": ["middle-out"], "usage": {"include": True}}),
    )
    sent = body(request, stream=stream)
    assert sent["transforms"] == ["middle-out"]
    assert sent["usage"] == {"include": True}
    assert sent["temperature"] == 0.0
    assert sent["model"] == "openai/gpt-4o"


@pytest.mark.parametrize(
    "key", ["temperature", "model", "messages", "provider", "top_p", "max_tokens", "models"]
)
def test_extra_body_may_not_set_a_field_the_contract_names(key: str) -> None:
    request = chat(extra_body=struct({key: 1, "transforms": ["middle-out"]}))
    with pytest.raises(convert.ExtraBodyConflictError) as raised:
        convert.body_dict(request, stream=False)
    assert raised.value.key == key
    assert raised.value.field == f"extra_body.{key}"
    assert "typed field" in raised.value.description


@pytest.mark.parametrize("key", ["stream", "stream_options"])
@pytest.mark.parametrize("stream", [False, True])
def test_extra_body_may_not_decide_streaming(key: str, stream: bool) -> None:
    value: Any = {"include_usage": True} if key == "stream_options" else (not stream)
    request = chat(extra_body=struct({key: value, "transforms": ["middle-out"]}))
    with pytest.raises(convert.ExtraBodyConflictError) as raised:
        convert.body_dict(request, stream=stream)
    assert raised.value.key == key
    assert isinstance(raised.value, ValueError)
    with pytest.raises(convert.ExtraBodyConflictError):
        convert.encode_chat(request, stream=stream)


def test_reserved_extra_fields_are_streaming_plus_every_contract_field() -> None:
    assert {"stream", "stream_options", "provider", "temperature", "messages"} <= (
        convert.RESERVED_EXTRA_FIELDS
    )
    assert "transforms" not in convert.RESERVED_EXTRA_FIELDS


def test_extra_body_from_the_builder() -> None:
    request = (
        ChatRequestBuilder()
        .with_text("x")
        .with_temperature(0.3)
        .with_extra_body({"verbosity": "low"})
        .build()
    )
    sent = body(request.proto)
    assert sent["verbosity"] == "low"
    assert sent["temperature"] == 0.3


# Encoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [None, {"transforms": ["middle-out"]}], ids=["typed", "extra"])
def test_encode_chat_is_compact_utf8_json_of_body_dict(extra: dict[str, Any] | None) -> None:
    request = ChatRequestBuilder().with_model("m/x").with_text("héllo \u2603").build().proto
    if extra is not None:
        request.extra_body.update(extra)
    encoded = convert.encode_chat(request, stream=True)
    body = convert.body_dict(request, stream=True)
    assert encoded == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert b": " not in encoded
    assert b", " not in encoded
    assert json.loads(encoded)["messages"][0]["content"] == "héllo \u2603"
    assert "héllo \u2603".encode() in encoded  # UTF-8, not \u escapes
    assert ("transforms" in body) == (extra is not None)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "place",
    [
        lambda s: chat(extra_body=s),
        lambda s: chat(tools=[pb.Tool(function=pb.FunctionTool(name="f", parameters=s))]),
        lambda s: chat(plugins=[pb.Plugin(id="web", options=s)]),
    ],
    ids=["extra_body", "tool-parameters", "plugin-options"],
)
def test_non_finite_numbers_in_json_fields_are_refused_not_sent(
    place: Callable[[struct_pb2.Struct], pb.ChatRequest], bad: float
) -> None:
    """JSON has no NaN or Infinity: conversion raises instead of writing an invalid body.

    (The servicer must turn this into INVALID_ARGUMENT; see the report that added this test.)
    """
    with pytest.raises(ValueError, match=r"NaN|Infinity"):
        convert.encode_chat(place(struct({"x": bad})), stream=False)
