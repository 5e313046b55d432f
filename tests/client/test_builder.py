"""``ChatRequestBuilder``: immutable steps, each method sets exactly what it names, and ``build()``
rejects what the gateway would reject with ``InvalidArgumentError`` naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from routerpc import (
    ChatRequest,
    ChatRequestBuilder,
    DataCollection,
    ImageDetail,
    InvalidArgumentError,
    Modality,
    ProviderConfig,
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
from routerpc_gateway.convert import encode_chat, provider_body
from routerpc_gateway.openrouter import ProviderBody

Step = Callable[[ChatRequestBuilder], ChatRequestBuilder]


def _hello() -> ChatRequestBuilder:
    return ChatRequestBuilder().with_model("openai/gpt-4o").with_text("Hello!")


def _proto(builder: ChatRequestBuilder) -> pb.ChatRequest:
    """The builder's state (a copy), without validating it."""
    snapshot = pb.ChatRequest()
    snapshot.CopyFrom(builder._request)
    return snapshot


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _list(values: list[Any]) -> struct_pb2.ListValue:
    listed = struct_pb2.ListValue()
    listed.extend(values)
    return listed


def _provider_json(builder: ChatRequestBuilder) -> dict[str, Any]:
    body = provider_body(builder._request.provider)
    # The JSON object is also a valid ProviderBody, and dumps back to itself.
    dumped = ProviderBody.model_validate(body).model_dump(mode="json", exclude_unset=True)
    assert dumped == body
    return body


# Immutability ---------------------------------------------------------------------------------

EVERY_STEP: dict[str, Step] = {
    "with_model": lambda b: b.with_model("anthropic/claude-sonnet-4"),
    "with_fallback_models": lambda b: b.with_fallback_models("a/b"),
    "with_message": lambda b: b.with_message(pb.Message(role=Role.USER, text="x")),
    "with_text": lambda b: b.with_text("more"),
    "with_user": lambda b: b.with_user("more"),
    "with_system": lambda b: b.with_system("sys"),
    "with_developer": lambda b: b.with_developer("dev"),
    "with_assistant": lambda b: b.with_assistant("earlier"),
    "with_tool_result": lambda b: b.with_tool_result("call_1", "{}"),
    "with_image": lambda b: b.with_image("https://x/y.png"),
    "with_file": lambda b: b.with_file(file_id="file-1"),
    "with_audio": lambda b: b.with_audio("UklGRg==", "wav"),
    "with_video": lambda b: b.with_video("https://x/y.mp4"),
    "with_tool": lambda b: b.with_tool("get_weather"),
    "with_server_tool": lambda b: b.with_server_tool("openrouter:web_search"),
    "with_tool_choice": lambda b: b.with_tool_choice("auto"),
    "with_forced_server_tool": lambda b: b.with_forced_server_tool("openrouter:web_search"),
    "with_forced_tool": lambda b: b.with_forced_tool("get_weather"),
    "with_parallel_tool_calls": lambda b: b.with_parallel_tool_calls(False),
    "with_text_format": lambda b: b.with_text_format(),
    "with_json_object": lambda b: b.with_json_object(),
    "with_json_schema": lambda b: b.with_json_schema("s", {"type": "object"}),
    "with_temperature": lambda b: b.with_temperature(0.5),
    "with_top_p": lambda b: b.with_top_p(0.5),
    "with_top_k": lambda b: b.with_top_k(5),
    "with_frequency_penalty": lambda b: b.with_frequency_penalty(0.5),
    "with_presence_penalty": lambda b: b.with_presence_penalty(0.5),
    "with_repetition_penalty": lambda b: b.with_repetition_penalty(1.1),
    "with_min_p": lambda b: b.with_min_p(0.1),
    "with_top_a": lambda b: b.with_top_a(0.1),
    "with_seed": lambda b: b.with_seed(7),
    "with_max_tokens": lambda b: b.with_max_tokens(10),
    "with_max_completion_tokens": lambda b: b.with_max_completion_tokens(10),
    "with_stop": lambda b: b.with_stop("END"),
    "with_logit_bias": lambda b: b.with_logit_bias({1: 2.0}),
    "with_logprobs": lambda b: b.with_logprobs(top=2),
    "with_reasoning": lambda b: b.with_reasoning(effort="low"),
    "with_plugin": lambda b: b.with_plugin("web"),
    "with_end_user": lambda b: b.with_end_user("u-1"),
    "with_session_id": lambda b: b.with_session_id("s-1"),
    "with_metadata": lambda b: b.with_metadata(k="v"),
    "with_modalities": lambda b: b.with_modalities("text"),
    "with_service_tier": lambda b: b.with_service_tier("flex"),
    "with_extra_body": lambda b: b.with_extra_body({"transforms": ["middle-out"]}),
    "with_provider": lambda b: b.with_provider(ProviderConfig(zdr=True)),
    "with_quantizations": lambda b: b.with_quantizations("int4"),
    "with_provider_order": lambda b: b.with_provider_order("openai", allow_fallbacks=False),
    "with_allow_fallbacks": lambda b: b.with_allow_fallbacks(False),
    "with_only_providers": lambda b: b.with_only_providers("openai"),
    "with_ignored_providers": lambda b: b.with_ignored_providers("azure"),
    "with_require_parameters": lambda b: b.with_require_parameters(),
    "with_data_collection": lambda b: b.with_data_collection("deny"),
    "with_zdr": lambda b: b.with_zdr(),
    "with_enforce_distillable_text": lambda b: b.with_enforce_distillable_text(),
    "with_sort": lambda b: b.with_sort("latency", partition="none"),
    "with_max_price": lambda b: b.with_max_price(prompt=1.0),
    "with_preferred_min_throughput": lambda b: b.with_preferred_min_throughput(10),
    "with_preferred_max_latency": lambda b: b.with_preferred_max_latency({"p90": 2.0}),
}


def test_every_public_with_method_is_covered_by_the_immutability_table() -> None:
    public = {name for name in dir(ChatRequestBuilder) if name.startswith("with_")}
    assert public == set(EVERY_STEP)


@pytest.mark.parametrize("step", EVERY_STEP.values(), ids=EVERY_STEP.keys())
def test_a_with_call_returns_a_new_builder_and_leaves_the_original_unchanged(step: Step) -> None:
    original = (
        _hello()
        .with_system("Be brief.")
        .with_quantizations("fp8", "fp16")
        .with_metadata(team="core")
        .with_stop("STOP")
        .with_reasoning(effort="high")
        .with_extra_body({"a": 1})
    )
    before = _proto(original)

    changed = step(original)

    assert changed is not original
    assert isinstance(changed, ChatRequestBuilder)
    assert _proto(original) == before
    assert _proto(changed) != before


def test_a_half_built_builder_is_a_template_for_independent_requests() -> None:
    base = ChatRequestBuilder().with_model("openai/gpt-4o").with_system("Be brief.")

    fast = base.with_quantizations(Quantization.FP8).with_text("Hi").build()
    careful = base.with_temperature(0.0).with_text("Think").with_zdr().build()

    assert [m.text for m in fast.proto.messages] == ["Be brief.", "Hi"]
    assert [m.text for m in careful.proto.messages] == ["Be brief.", "Think"]
    assert list(fast.proto.provider.quantizations) == [Quantization.FP8]
    assert not fast.proto.HasField("temperature")
    assert careful.proto.provider == ProviderConfig(zdr=True)
    assert careful.proto.HasField("temperature")
    assert [m.text for m in base._request.messages] == ["Be brief."]
    assert not base._request.HasField("provider")


def test_build_returns_a_new_independent_request_every_time() -> None:
    builder = _hello().with_quantizations("fp8")
    first = builder.build()
    second = builder.build()

    assert first == second
    assert first is not second
    assert first.proto is not second.proto
    assert first.proto is not builder._request

    first.provider = ProviderConfig(zdr=True)
    first.proto.messages.add(role=Role.USER, text="again")
    first.temperature = 1.0

    assert second == builder.build()
    assert list(second.proto.provider.quantizations) == [Quantization.FP8]
    assert len(builder._request.messages) == 1


def test_builder_copies_what_it_is_given() -> None:
    source = pb.ChatRequest(model="m", messages=[pb.Message(role=Role.USER, text="hi")])
    message = pb.Message(role=Role.USER, text="two")
    config = ProviderConfig(order=["openai"])
    schema = _struct({"type": "object"})

    builder = (
        ChatRequestBuilder(source)
        .with_message(message)
        .with_provider(config)
        .with_tool("f", parameters=schema)
    )
    source.model = "changed"
    message.text = "changed"
    config.order.append("changed")
    schema.update({"type": "changed"})

    state = builder._request
    assert state.model == "m"
    assert [m.text for m in state.messages] == ["hi", "two"]
    assert list(state.provider.order) == ["openai"]
    assert state.tools[0].function.parameters == _struct({"type": "object"})


def test_builder_starts_from_a_request_view_or_a_proto() -> None:
    built = _hello().with_temperature(0.3).build()

    from_view = ChatRequestBuilder(built)
    from_proto = ChatRequestBuilder(built.proto)

    assert from_view._request == built.proto
    assert from_proto._request == built.proto
    assert from_view._request is not built.proto
    assert ChatRequestBuilder()._request == pb.ChatRequest()


# Messages -----------------------------------------------------------------------------------


def test_message_methods_append_each_role_in_order() -> None:
    call = pb.ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
    details = [{"type": "reasoning.text", "text": "thinking", "signature": "sig"}]

    state = _proto(
        ChatRequestBuilder()
        .with_system("sys")
        .with_developer("dev")
        .with_user("user", name="ann")
        .with_text("text", name="bob")
        .with_assistant("earlier", reasoning="because", reasoning_details=details)
        .with_assistant(tool_calls=[call])
        .with_tool_result("call_1", '{"temp": 21}')
        .with_message(pb.Message(role=Role.USER, text="by hand", name="carol"))
    )

    assert list(state.messages) == [
        pb.Message(role=Role.SYSTEM, text="sys"),
        pb.Message(role=Role.DEVELOPER, text="dev"),
        pb.Message(role=Role.USER, text="user", name="ann"),
        pb.Message(role=Role.USER, text="text", name="bob"),
        pb.Message(
            role=Role.ASSISTANT,
            text="earlier",
            reasoning="because",
            reasoning_details=_list(details),
        ),
        pb.Message(role=Role.ASSISTANT, tool_calls=[call]),
        pb.Message(role=Role.TOOL, tool_call_id="call_1", text='{"temp": 21}'),
        pb.Message(role=Role.USER, text="by hand", name="carol"),
    ]
    # An assistant turn that only called tools has no content at all (not empty text).
    assert state.messages[5].WhichOneof("content") is None
    assert not state.messages[5].HasField("reasoning")


def test_assistant_tool_call_round_trip_is_valid_and_encoded_as_openai_tool_calls() -> None:
    call = pb.ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
    request = (
        _hello()
        .with_tool("get_weather", parameters={"type": "object"})
        .with_assistant(tool_calls=[call])
        .with_tool_result("call_1", "21C")
        .build()
    )

    body = encode_chat(request.proto, stream=False)
    assert (
        b'{"role":"assistant","tool_calls":[{"id":"call_1","type":"function",'
        b'"function":{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]}'
    ) in body
    assert b'{"role":"tool","content":"21C","tool_call_id":"call_1"}' in body


def test_content_parts_for_user_system_developer_and_tool_messages() -> None:
    parts = [
        pb.ContentPart(text="look", cache_control=pb.CacheControl(ttl="1h")),
        pb.ContentPart(image_url=pb.ImageUrl(url="https://x/cat.png")),
    ]

    state = _proto(
        ChatRequestBuilder()
        .with_user(parts)
        .with_system(parts[:1])
        .with_developer(parts[:1])
        .with_tool_result("call_9", parts[:1])
    )

    assert state.messages[0] == pb.Message(role=Role.USER, parts=pb.ContentParts(parts=parts))
    assert state.messages[1] == pb.Message(role=Role.SYSTEM, parts=pb.ContentParts(parts=parts[:1]))
    assert state.messages[2].role == Role.DEVELOPER
    assert state.messages[2].WhichOneof("content") == "parts"
    assert state.messages[3] == pb.Message(
        role=Role.TOOL, tool_call_id="call_9", parts=pb.ContentParts(parts=parts[:1])
    )


def test_with_image_appends_a_user_message_with_optional_text_and_detail() -> None:
    state = _proto(
        ChatRequestBuilder()
        .with_image("https://x/cat.png", text="What is this?", detail="high")
        .with_image("data:image/png;base64,AAAA", detail=ImageDetail.ORIGINAL)
        .with_image("https://x/dog.png")
    )

    assert state.messages[0] == pb.Message(
        role=Role.USER,
        parts=pb.ContentParts(
            parts=[
                pb.ContentPart(text="What is this?"),
                pb.ContentPart(
                    image_url=pb.ImageUrl(url="https://x/cat.png", detail=ImageDetail.HIGH)
                ),
            ]
        ),
    )
    assert list(state.messages[1].parts.parts) == [
        pb.ContentPart(
            image_url=pb.ImageUrl(url="data:image/png;base64,AAAA", detail=ImageDetail.ORIGINAL)
        )
    ]
    assert list(state.messages[2].parts.parts) == [
        pb.ContentPart(image_url=pb.ImageUrl(url="https://x/dog.png"))
    ]


def test_with_file_audio_and_video_append_user_messages_with_those_parts() -> None:
    state = _proto(
        ChatRequestBuilder()
        .with_file(file_data="data:application/pdf;base64,JVBE", filename="a.pdf", text="Sum up")
        .with_file(file_id="file-123")
        .with_audio("UklGRg==", "wav", text="Transcribe")
        .with_audio("SUQz", "mp3")
        .with_video("https://x/clip.mp4", text="Describe")
        .with_video("data:video/mp4;base64,AAAA")
    )

    def parts(index: int) -> list[pb.ContentPart]:
        message = state.messages[index]
        assert message.role == Role.USER
        return list(message.parts.parts)

    assert parts(0) == [
        pb.ContentPart(text="Sum up"),
        pb.ContentPart(
            file=pb.FileInput(file_data="data:application/pdf;base64,JVBE", filename="a.pdf")
        ),
    ]
    assert parts(1) == [pb.ContentPart(file=pb.FileInput(file_id="file-123"))]
    assert parts(2) == [
        pb.ContentPart(text="Transcribe"),
        pb.ContentPart(input_audio=pb.InputAudio(data="UklGRg==", format="wav")),
    ]
    assert parts(3) == [pb.ContentPart(input_audio=pb.InputAudio(data="SUQz", format="mp3"))]
    assert parts(4) == [
        pb.ContentPart(text="Describe"),
        pb.ContentPart(video_url=pb.VideoUrl(url="https://x/clip.mp4")),
    ]
    assert parts(5) == [pb.ContentPart(video_url=pb.VideoUrl(url="data:video/mp4;base64,AAAA"))]
    _hello().with_message(state.messages[0]).with_message(state.messages[1]).build()


# Tools and output format --------------------------------------------------------------------


def test_with_tool_offers_a_function_with_schema_and_strictness() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

    state = _proto(
        ChatRequestBuilder()
        .with_tool("get_weather", description="Weather now", parameters=schema, strict=True)
        .with_tool("ping")
    )

    assert list(state.tools) == [
        pb.Tool(
            function=pb.FunctionTool(
                name="get_weather",
                description="Weather now",
                parameters=_struct(schema),
                strict=True,
            )
        ),
        pb.Tool(function=pb.FunctionTool(name="ping")),
    ]
    assert not state.tools[1].function.HasField("parameters")
    assert not state.tools[1].function.HasField("strict")


def test_with_server_tool_offers_an_openrouter_tool_with_parameters() -> None:
    state = _proto(
        ChatRequestBuilder()
        .with_server_tool("openrouter:web_search", {"max_results": 3})
        .with_server_tool("openrouter:datetime", _struct({"timezone": "UTC"}))
        .with_server_tool("openrouter:image_generation")
    )

    assert list(state.tools) == [
        pb.Tool(
            server=pb.ServerTool(
                type="openrouter:web_search", parameters=_struct({"max_results": 3})
            )
        ),
        pb.Tool(
            server=pb.ServerTool(
                type="openrouter:datetime", parameters=_struct({"timezone": "UTC"})
            )
        ),
        pb.Tool(server=pb.ServerTool(type="openrouter:image_generation")),
    ]
    assert not state.tools[2].server.HasField("parameters")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", ToolChoiceMode.NONE),
        ("auto", ToolChoiceMode.AUTO),
        ("REQUIRED", ToolChoiceMode.REQUIRED),
        (ToolChoiceMode.AUTO, ToolChoiceMode.AUTO),
    ],
)
def test_with_tool_choice_sets_the_mode(mode: Any, expected: ToolChoiceMode) -> None:
    state = _proto(ChatRequestBuilder().with_tool_choice(mode))
    assert state.tool_choice == pb.ToolChoice(mode=expected)


def test_forced_tool_and_mode_replace_each_other() -> None:
    forced = ChatRequestBuilder().with_tool_choice("required").with_forced_tool("get_weather")
    assert _proto(forced).tool_choice == pb.ToolChoice(function_name="get_weather")

    back = forced.with_tool_choice("none")
    assert _proto(back).tool_choice == pb.ToolChoice(mode=ToolChoiceMode.NONE)


@pytest.mark.parametrize("enabled", [True, False])
def test_with_parallel_tool_calls_sets_an_explicit_value(enabled: bool) -> None:
    state = _proto(ChatRequestBuilder().with_parallel_tool_calls(enabled))
    assert state.HasField("parallel_tool_calls")
    assert state.parallel_tool_calls is enabled
    assert _proto(ChatRequestBuilder().with_parallel_tool_calls()).parallel_tool_calls is True


def test_response_format_methods_set_each_format_and_the_last_wins() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}

    text = _proto(ChatRequestBuilder().with_text_format())
    json_object = _proto(ChatRequestBuilder().with_json_object())
    json_schema = _proto(
        ChatRequestBuilder()
        .with_json_object()
        .with_json_schema("answer", schema, description="One answer", strict=True)
    )
    loose = _proto(ChatRequestBuilder().with_json_schema("answer", _struct(schema)))
    back = _proto(ChatRequestBuilder().with_json_schema("answer", schema).with_text_format())

    assert text.response_format == pb.ResponseFormat(type=ResponseFormatType.TEXT)
    assert json_object.response_format == pb.ResponseFormat(type=ResponseFormatType.JSON_OBJECT)
    assert json_schema.response_format == pb.ResponseFormat(
        type=ResponseFormatType.JSON_SCHEMA,
        json_schema=pb.JsonSchemaFormat(
            name="answer", description="One answer", schema=_struct(schema), strict=True
        ),
    )
    assert loose.response_format.json_schema.schema == _struct(schema)
    assert not loose.response_format.json_schema.HasField("strict")
    assert back.response_format == pb.ResponseFormat(type=ResponseFormatType.TEXT)
    assert not back.response_format.HasField("json_schema")


# Sampling -----------------------------------------------------------------------------------

SAMPLING = [
    ("with_temperature", "temperature", 0.7),
    ("with_top_p", "top_p", 0.9),
    ("with_top_k", "top_k", 40),
    ("with_frequency_penalty", "frequency_penalty", -1.5),
    ("with_presence_penalty", "presence_penalty", 1.5),
    ("with_repetition_penalty", "repetition_penalty", 1.1),
    ("with_min_p", "min_p", 0.05),
    ("with_top_a", "top_a", 0.2),
    ("with_seed", "seed", -42),
    ("with_max_tokens", "max_tokens", 256),
    ("with_max_completion_tokens", "max_completion_tokens", 512),
]


@pytest.mark.parametrize(("method", "field", "value"), SAMPLING, ids=[s[1] for s in SAMPLING])
def test_sampling_methods_set_their_field(method: str, field: str, value: float) -> None:
    request = getattr(_hello(), method)(value).build()

    assert request.proto.HasField(field)
    assert getattr(request.proto, field) == pytest.approx(value)
    assert f'"{field}":'.encode() in encode_chat(request.proto, stream=False)


@pytest.mark.parametrize(
    ("method", "field"),
    [
        ("with_temperature", "temperature"),
        ("with_top_p", "top_p"),
        ("with_top_k", "top_k"),
        ("with_frequency_penalty", "frequency_penalty"),
        ("with_presence_penalty", "presence_penalty"),
        ("with_repetition_penalty", "repetition_penalty"),
        ("with_min_p", "min_p"),
        ("with_top_a", "top_a"),
        ("with_seed", "seed"),
    ],
)
def test_zero_is_an_explicit_setting_that_is_sent(method: str, field: str) -> None:
    request = getattr(_hello(), method)(0).build()

    assert request.proto.HasField(field)
    assert f'"{field}":0'.encode() in encode_chat(request.proto, stream=False)


def test_with_stop_appends_sequences() -> None:
    state = _proto(ChatRequestBuilder().with_stop("a", "b").with_stop("c"))
    assert list(state.stop) == ["a", "b", "c"]


def test_with_logit_bias_keys_token_ids_as_decimal_strings() -> None:
    state = _proto(ChatRequestBuilder().with_logit_bias({50256: -100, "42": 5.5}))
    assert dict(state.logit_bias) == {"50256": -100.0, "42": 5.5}
    _hello().with_logit_bias({50256: -100}).build()


def test_with_logprobs_sets_logprobs_and_optionally_top_logprobs() -> None:
    plain = _proto(ChatRequestBuilder().with_logprobs())
    top = _proto(ChatRequestBuilder().with_logprobs(top=5))
    off = _proto(ChatRequestBuilder().with_logprobs(False))

    assert plain.logprobs is True
    assert not plain.HasField("top_logprobs")
    assert (top.logprobs, top.top_logprobs) == (True, 5)
    assert off.HasField("logprobs")
    assert off.logprobs is False


def test_with_reasoning_sets_only_the_given_options() -> None:
    by_effort = _proto(
        ChatRequestBuilder().with_reasoning(effort="high", exclude=True, summary="concise")
    )
    by_budget = _proto(ChatRequestBuilder().with_reasoning(max_tokens=2048, enabled=True))
    by_member = _proto(
        ChatRequestBuilder().with_reasoning(
            effort=ReasoningEffort.XHIGH, summary=ReasoningSummary.DETAILED, enabled=False
        )
    )

    assert by_effort.reasoning == pb.Reasoning(
        effort=ReasoningEffort.HIGH, exclude=True, summary=ReasoningSummary.CONCISE
    )
    assert not by_effort.reasoning.HasField("max_tokens")
    assert not by_effort.reasoning.HasField("enabled")
    assert by_budget.reasoning == pb.Reasoning(max_tokens=2048, enabled=True)
    assert by_budget.reasoning.effort == ReasoningEffort.UNSPECIFIED
    assert by_member.reasoning == pb.Reasoning(
        effort=ReasoningEffort.XHIGH, summary=ReasoningSummary.DETAILED, enabled=False
    )
    assert by_member.reasoning.HasField("enabled")


# Request metadata ---------------------------------------------------------------------------


def test_with_plugin_sets_id_enabled_and_options() -> None:
    state = _proto(
        ChatRequestBuilder()
        .with_plugin("web", max_results=3, engine="exa")
        .with_plugin("file-parser", enabled=False)
        .with_plugin("response-healing", enabled=True, pdf={"engine": "mistral-ocr"})
    )

    assert list(state.plugins) == [
        pb.Plugin(id="web", options=_struct({"max_results": 3, "engine": "exa"})),
        pb.Plugin(id="file-parser", enabled=False),
        pb.Plugin(
            id="response-healing", enabled=True, options=_struct({"pdf": {"engine": "mistral-ocr"}})
        ),
    ]
    assert not state.plugins[0].HasField("enabled")
    assert not state.plugins[1].HasField("options")


def test_identity_metadata_modalities_and_service_tier() -> None:
    state = _proto(
        ChatRequestBuilder()
        .with_end_user("user-7")
        .with_session_id("session-9")
        .with_metadata({"team": "core"}, env="prod")
        .with_metadata(env="staging", region="eu")
        .with_modalities("text", Modality.IMAGE)
        .with_service_tier("flex")
    )

    assert state.user == "user-7"
    assert state.session_id == "session-9"
    assert dict(state.metadata) == {"team": "core", "env": "staging", "region": "eu"}
    assert list(state.modalities) == [Modality.TEXT, Modality.IMAGE]
    assert state.service_tier == ServiceTier.FLEX
    assert _proto(ChatRequestBuilder().with_service_tier(ServiceTier.PRIORITY)).service_tier == (
        ServiceTier.PRIORITY
    )


def test_model_fallback_models_and_extra_body() -> None:
    state = _proto(
        ChatRequestBuilder()
        .with_model("openai/gpt-4o")
        .with_model("openai/gpt-4o:nitro")
        .with_fallback_models("anthropic/claude-sonnet-4", "google/gemini-2.5-pro")
        .with_extra_body({"transforms": ["middle-out"], "nested": {"a": 1}})
        .with_extra_body(_struct({"usage": {"include": True}}))
    )

    assert state.model == "openai/gpt-4o:nitro"
    assert list(state.models) == ["anthropic/claude-sonnet-4", "google/gemini-2.5-pro"]
    assert state.extra_body == _struct(
        {"transforms": ["middle-out"], "nested": {"a": 1}, "usage": {"include": True}}
    )


# Provider routing ---------------------------------------------------------------------------


def test_with_quantizations_takes_members_and_names_and_replaces_the_list() -> None:
    builder = (
        ChatRequestBuilder()
        .with_quantizations("int4")
        .with_quantizations("fp8", Quantization.FP16, "BF16")
    )
    assert list(_proto(builder).provider.quantizations) == [
        Quantization.FP8,
        Quantization.FP16,
        Quantization.BF16,
    ]
    assert _provider_json(builder) == {"quantizations": ["fp8", "fp16", "bf16"]}


def test_provider_list_helpers_replace_their_list_and_leave_the_rest() -> None:
    builder = (
        ChatRequestBuilder()
        .with_quantizations("fp8")
        .with_provider_order("together")
        .with_provider_order("anthropic", "deepinfra/turbo", allow_fallbacks=False)
        .with_only_providers("x")
        .with_only_providers("anthropic", "openai")
        .with_ignored_providers("y")
        .with_ignored_providers("azure")
    )

    assert _proto(builder).provider == ProviderConfig(
        quantizations=[Quantization.FP8],
        order=["anthropic", "deepinfra/turbo"],
        allow_fallbacks=False,
        only=["anthropic", "openai"],
        ignore=["azure"],
    )
    assert not _proto(ChatRequestBuilder().with_provider_order("a")).provider.HasField(
        "allow_fallbacks"
    )


def test_provider_flag_helpers_set_explicit_values() -> None:
    on = _proto(
        ChatRequestBuilder()
        .with_allow_fallbacks(True)
        .with_require_parameters()
        .with_zdr()
        .with_enforce_distillable_text()
        .with_data_collection("deny")
    )
    off = _proto(
        ChatRequestBuilder()
        .with_allow_fallbacks(False)
        .with_require_parameters(False)
        .with_zdr(False)
        .with_enforce_distillable_text(False)
        .with_data_collection(DataCollection.ALLOW)
    )

    assert on.provider == ProviderConfig(
        allow_fallbacks=True,
        require_parameters=True,
        zdr=True,
        enforce_distillable_text=True,
        data_collection=DataCollection.DENY,
    )
    assert off.provider == ProviderConfig(
        allow_fallbacks=False,
        require_parameters=False,
        zdr=False,
        enforce_distillable_text=False,
        data_collection=DataCollection.ALLOW,
    )
    for name in ("allow_fallbacks", "require_parameters", "zdr", "enforce_distillable_text"):
        assert off.provider.HasField(name), name


def test_with_sort_strategy_alone_is_the_string_form() -> None:
    builder = ChatRequestBuilder().with_sort("price")

    assert _proto(builder).provider.WhichOneof("sort") == "sort_strategy"
    assert _proto(builder).provider.sort_strategy == SortStrategy.PRICE
    assert _provider_json(builder) == {"sort": "price"}


def test_with_sort_and_a_partition_is_the_object_form() -> None:
    both = ChatRequestBuilder().with_sort(SortStrategy.THROUGHPUT, partition="none")
    partition_only = ChatRequestBuilder().with_sort(partition=SortPartition.MODEL)

    assert _proto(both).provider.sort_config == pb.SortConfig(
        by=SortStrategy.THROUGHPUT, partition=SortPartition.NONE
    )
    assert _provider_json(both) == {"sort": {"by": "throughput", "partition": "none"}}
    assert _proto(partition_only).provider.WhichOneof("sort") == "sort_config"
    assert _provider_json(partition_only) == {"sort": {"partition": "model"}}


def test_a_later_sort_replaces_the_earlier_form() -> None:
    to_string = ChatRequestBuilder().with_sort("price", partition="model").with_sort("latency")
    to_object = ChatRequestBuilder().with_sort("latency").with_sort("exacto", partition="none")

    assert _provider_json(to_string) == {"sort": "latency"}
    assert _provider_json(to_object) == {"sort": {"by": "exacto", "partition": "none"}}


def test_with_max_price_sets_only_the_given_caps_as_numbers() -> None:
    builder = ChatRequestBuilder().with_max_price(prompt=1, completion=2.5, request=0)
    every = ChatRequestBuilder().with_max_price(
        prompt=1, completion=2, image=0.01, audio=0.02, request=0.5
    )

    price = _proto(builder).provider.max_price
    assert price == pb.MaxPrice(prompt=1, completion=2.5, request=0)
    assert not price.HasField("image")
    assert not price.HasField("audio")
    assert _provider_json(builder) == {
        "max_price": {"prompt": 1.0, "completion": 2.5, "request": 0.0}
    }
    assert _proto(every).provider.max_price == pb.MaxPrice(
        prompt=1, completion=2, image=0.01, audio=0.02, request=0.5
    )


@pytest.mark.parametrize(
    ("method", "field"),
    [
        ("with_preferred_min_throughput", "preferred_min_throughput"),
        ("with_preferred_max_latency", "preferred_max_latency"),
    ],
)
def test_performance_preferences_as_a_number_or_percentiles(method: str, field: str) -> None:
    number = getattr(ChatRequestBuilder(), method)(50)
    percentiles = getattr(ChatRequestBuilder(), method)({"p50": 40, "p90": 1.5})
    replaced = getattr(number, method)({"p99": 3})

    assert getattr(_proto(number).provider, field) == pb.PerformancePreference(value=50)
    assert getattr(_proto(percentiles).provider, field) == pb.PerformancePreference(
        percentiles=pb.PercentileCutoffs(p50=40, p90=1.5)
    )
    assert not getattr(_proto(percentiles).provider, field).percentiles.HasField("p75")
    assert _provider_json(number) == {field: 50.0}
    assert _provider_json(percentiles) == {field: {"p50": 40.0, "p90": 1.5}}
    assert _provider_json(replaced) == {field: {"p99": 3.0}}


def test_provider_helpers_accumulate_and_with_provider_replaces_them_all() -> None:
    accumulated = ChatRequestBuilder().with_quantizations("fp8").with_zdr().with_sort("price")
    replaced = accumulated.with_provider(ProviderConfig(only=["openai"]))

    assert _provider_json(accumulated) == {
        "quantizations": ["fp8"],
        "zdr": True,
        "sort": "price",
    }
    assert _proto(replaced).provider == ProviderConfig(only=["openai"])


# build() validation -------------------------------------------------------------------------


def _with_view(change: Callable[[ChatRequest], None]) -> ChatRequestBuilder:
    """A builder holding a request changed through the view (for states no helper produces)."""
    view = ChatRequest(_proto(_hello()))
    change(view)
    return ChatRequestBuilder(view)


def _set(**fields: Any) -> Callable[[ChatRequest], None]:
    def change(view: ChatRequest) -> None:
        for name, value in fields.items():
            setattr(view, name, value)

    return change


INVALID: list[Any] = [
    pytest.param(_hello().with_temperature(2.5), ["temperature"], id="temperature-2.5"),
    pytest.param(_hello().with_temperature(-0.1), ["temperature"], id="temperature-negative"),
    pytest.param(_hello().with_top_p(1.5), ["top_p"], id="top_p-1.5"),
    pytest.param(
        _hello().with_frequency_penalty(-2.5), ["frequency_penalty"], id="frequency_penalty-low"
    ),
    pytest.param(
        _hello().with_frequency_penalty(2.01), ["frequency_penalty"], id="frequency_penalty-high"
    ),
    pytest.param(
        _hello().with_presence_penalty(-2.01), ["presence_penalty"], id="presence_penalty-low"
    ),
    pytest.param(
        _hello().with_presence_penalty(2.5), ["presence_penalty"], id="presence_penalty-high"
    ),
    pytest.param(
        _hello().with_repetition_penalty(2.5), ["repetition_penalty"], id="repetition_penalty"
    ),
    pytest.param(_hello().with_logprobs(top=21), ["top_logprobs"], id="top_logprobs-21"),
    pytest.param(
        _hello().with_logprobs(False, top=5), ["top_logprobs"], id="top_logprobs-logprobs-false"
    ),
    pytest.param(
        _with_view(_set(top_logprobs=5)), ["top_logprobs"], id="top_logprobs-without-logprobs"
    ),
    pytest.param(_hello().with_stop("a", "b", "c", "d", "e"), ["stop"], id="five-stops"),
    pytest.param(ChatRequestBuilder().with_model("openai/gpt-4o"), ["messages"], id="no-messages"),
    pytest.param(
        _hello().with_metadata({f"k{i}": "v" for i in range(17)}),
        ["metadata"],
        id="metadata-17-pairs",
    ),
    pytest.param(
        _hello().with_metadata({"k" * 65: "v"}), [f"metadata[{'k' * 65!r}]"], id="metadata-key-65"
    ),
    pytest.param(
        _hello().with_metadata(key="v" * 513), ["metadata['key']"], id="metadata-value-513"
    ),
    pytest.param(
        _hello().with_quantizations(Quantization.UNSPECIFIED),
        ["provider.quantizations[0]"],
        id="quantization-unspecified",
    ),
    pytest.param(
        _hello().with_quantizations("unspecified"),
        ["provider.quantizations[0]"],
        id="quantization-unspecified-by-name",
    ),
    pytest.param(
        _hello().with_provider(ProviderConfig(quantizations=[Quantization.FP8, 99])),
        ["provider.quantizations[1]"],
        id="quantization-undefined-number",
    ),
    pytest.param(
        _hello().with_tool_result("", "21C"),
        ["messages[1].tool_call_id"],
        id="tool-message-without-tool-call-id",
    ),
    pytest.param(
        _with_view(_set(response_format=pb.ResponseFormat(type=ResponseFormatType.JSON_SCHEMA))),
        ["response_format.json_schema"],
        id="json-schema-format-without-schema",
    ),
    pytest.param(
        _with_view(
            _set(
                response_format=pb.ResponseFormat(
                    type=ResponseFormatType.JSON_OBJECT,
                    json_schema=pb.JsonSchemaFormat(name="x", schema=_struct({})),
                )
            )
        ),
        ["response_format.json_schema"],
        id="json-schema-with-another-format",
    ),
    pytest.param(
        _hello().with_reasoning(effort="high", max_tokens=1024),
        ["reasoning"],
        id="reasoning-effort-and-max-tokens",
    ),
    pytest.param(
        _hello().with_temperature(3).with_top_p(2),
        ["temperature", "top_p"],
        id="two-fields",
    ),
]


@pytest.mark.parametrize(("builder", "fields"), INVALID)
def test_build_rejects_invalid_requests_naming_each_field(
    builder: ChatRequestBuilder, fields: list[str]
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        builder.build()

    error = info.value
    assert isinstance(error, ValueError)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_REQUEST"
    assert sorted({v.field for v in error.field_violations}) == sorted(fields)
    for violation in error.field_violations:
        assert violation.description
        assert violation.reason
        assert violation.field in str(error)


def test_every_invalid_case_is_valid_without_its_fault() -> None:
    # The cases above differ from a valid request only in the named field.
    _hello().build()
    _hello().with_temperature(2).with_top_p(1).with_logprobs(top=20).build()
    _hello().with_frequency_penalty(-2).with_presence_penalty(2).build()
    _hello().with_stop("a", "b", "c", "d").build()
    _hello().with_metadata({f"k{i}": "v" * 512 for i in range(16)}).build()
    _hello().with_metadata({"k" * 64: "v"}).build()
    _hello().with_quantizations(*[q for q in Quantization if q]).build()
    _hello().with_tool_result("call_1", "21C").build()
    _hello().with_json_schema("x", {}).build()
    _hello().with_reasoning(effort="high").build()
    _hello().with_reasoning(max_tokens=1024).build()


# Enum coercion ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fp8", "FP8", "Fp8", Quantization.FP8, 7])
def test_quantization_accepts_a_member_a_number_or_its_name_in_any_case(name: Any) -> None:
    state = _proto(ChatRequestBuilder().with_quantizations(name))
    assert list(state.provider.quantizations) == [Quantization.FP8]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (lambda b: b.with_data_collection("DENY"), ("data_collection", DataCollection.DENY)),
        (lambda b: b.with_service_tier("Priority"), ("service_tier", ServiceTier.PRIORITY)),
        (lambda b: b.with_sort("THROUGHPUT"), ("sort_strategy", SortStrategy.THROUGHPUT)),
    ],
)
def test_other_enums_accept_names_in_any_case(step: Step, expected: tuple[str, int]) -> None:
    state = _proto(step(ChatRequestBuilder()))
    field, value = expected
    holder = state.provider if state.HasField("provider") else state
    assert getattr(holder, field) == value


@pytest.mark.parametrize(
    ("step", "kind", "bad"),
    [
        (lambda b: b.with_quantizations("fp8", "fp7"), "Quantization", "fp7"),
        (lambda b: b.with_data_collection("maybe"), "DataCollection", "maybe"),
        (lambda b: b.with_sort("cheapest"), "SortStrategy", "cheapest"),
        (lambda b: b.with_sort("price", partition="all"), "SortPartition", "all"),
        (lambda b: b.with_tool_choice("sometimes"), "ToolChoiceMode", "sometimes"),
        (lambda b: b.with_reasoning(effort="extreme"), "ReasoningEffort", "extreme"),
        (lambda b: b.with_modalities("smell"), "Modality", "smell"),
        (lambda b: b.with_image("https://x", detail="4k"), "ImageDetail", "4k"),
    ],
)
def test_an_unknown_enum_name_is_a_clear_value_error_at_the_call(
    step: Step, kind: str, bad: str
) -> None:
    with pytest.raises(ValueError, match=rf"unknown {kind} '{bad}'; expected one of ") as info:
        step(_hello())

    assert not isinstance(info.value, InvalidArgumentError)
    if kind == "Quantization":
        assert "fp8, fp16, bf16, fp32, unknown" in str(info.value)
        assert "unspecified" not in str(info.value)


def test_an_undefined_enum_number_given_to_a_helper_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="99"):
        ChatRequestBuilder().with_quantizations(99)


def test_with_forced_server_tool_sets_the_server_tool_choice() -> None:
    request = ChatRequestBuilder().with_text("hi").with_forced_server_tool("openrouter:web_search")
    choice = request.build().proto.tool_choice
    assert choice.WhichOneof("choice") == "server_tool_type"
    assert choice.server_tool_type == "openrouter:web_search"


@pytest.mark.parametrize(("cache", "ttl"), [(True, ""), ("5m", "5m"), ("1h", "1h")])
def test_cached_system_prompt_becomes_one_text_part_with_cache_control(
    cache: Any, ttl: str
) -> None:
    request = ChatRequestBuilder().with_system("Be brief.", cache=cache).with_text("hi").build()
    (part,) = request.proto.messages[0].parts.parts
    assert part.text == "Be brief."
    assert part.HasField("cache_control")
    assert part.cache_control.ttl == ttl


def test_with_tool_cache_puts_cache_control_on_that_tool() -> None:
    request = ChatRequestBuilder().with_text("hi").with_tool("a").with_tool("b", cache="1h")
    tools = request.build().proto.tools
    assert not tools[0].HasField("cache_control")
    assert tools[1].cache_control.ttl == "1h"


def test_with_sort_without_strategy_or_partition_is_refused() -> None:
    with pytest.raises(ValueError, match="with_sort needs"):
        ChatRequestBuilder().with_sort()
