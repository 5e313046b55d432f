"""``ChatRequest``, the mutable view ``build()`` returns: assignment replaces a field's whole value,
``None`` clears it, unknown names are refused, and it equals the proto it wraps."""

from __future__ import annotations

import copy
import pickle

import pytest
from google.protobuf import struct_pb2

from routerpc import (
    ChatRequest,
    ChatRequestBuilder,
    InvalidArgumentError,
    ProviderConfig,
    Quantization,
    ReasoningEffort,
    ResponseFormatType,
    Role,
    pb,
)


def _request() -> ChatRequest:
    return (
        ChatRequestBuilder()
        .with_model("openai/gpt-4o")
        .with_system("Be brief.")
        .with_text("Hello!")
        .with_stop("END")
        .with_metadata(team="core", env="prod")
        .with_reasoning(max_tokens=512, exclude=True)
        .with_json_object()
        .with_zdr()
        .build()
    )


# Message fields ------------------------------------------------------------------------------


def test_assigning_provider_copies_the_config_in() -> None:
    request = _request()
    config = ProviderConfig(quantizations=[Quantization.FP8, Quantization.FP16])

    request.provider = config

    assert request.proto.provider == config
    assert request.provider == config
    # It replaced the earlier provider (zdr) rather than merging into it.
    assert not request.proto.provider.HasField("zdr")
    # A copy: later changes to either side stay on that side.
    config.quantizations.append(Quantization.INT4)
    assert list(request.proto.provider.quantizations) == [Quantization.FP8, Quantization.FP16]
    request.provider.only.append("openai")
    assert list(config.only) == []


def test_assigning_none_to_provider_clears_it() -> None:
    request = _request()
    assert request.proto.HasField("provider")

    request.provider = None

    assert not request.proto.HasField("provider")
    assert request.proto.provider == ProviderConfig()


def test_assigning_an_empty_provider_marks_it_present() -> None:
    request = _request()
    request.provider = None
    request.provider = ProviderConfig()
    assert request.proto.HasField("provider")


def test_assigning_other_message_fields_replaces_them() -> None:
    request = _request()

    request.reasoning = pb.Reasoning(effort=ReasoningEffort.LOW)
    request.response_format = pb.ResponseFormat(
        type=ResponseFormatType.JSON_SCHEMA,
        json_schema=pb.JsonSchemaFormat(name="answer"),
    )
    request.tool_choice = pb.ToolChoice(function_name="get_weather")

    assert request.proto.reasoning == pb.Reasoning(effort=ReasoningEffort.LOW)
    assert not request.proto.reasoning.HasField("max_tokens")
    assert not request.proto.reasoning.HasField("exclude")
    assert request.proto.response_format.json_schema.name == "answer"
    assert request.proto.tool_choice.function_name == "get_weather"
    request.validate()


def test_assigning_none_clears_message_and_scalar_fields() -> None:
    request = _request()
    request.temperature = 0.5

    request.reasoning = None
    request.response_format = None
    request.temperature = None

    assert not request.proto.HasField("reasoning")
    assert not request.proto.HasField("response_format")
    assert not request.proto.HasField("temperature")


def test_assigning_a_struct_field_replaces_it() -> None:
    request = _request()
    first = struct_pb2.Struct()
    first.update({"a": 1, "b": 2})
    second = struct_pb2.Struct()
    second.update({"c": 3})

    request.extra_body = first
    request.extra_body = second

    assert dict(request.proto.extra_body.items()) == {"c": 3}


def test_assigning_scalar_fields_sets_them() -> None:
    request = _request()

    request.model = "anthropic/claude-sonnet-4"
    request.temperature = 0.0
    request.seed = 7
    request.user = "user-1"
    request.service_tier = 3

    assert request.proto.model == "anthropic/claude-sonnet-4"
    assert request.model == "anthropic/claude-sonnet-4"
    assert request.proto.HasField("temperature")
    assert request.proto.temperature == 0.0
    assert request.proto.seed == 7
    assert request.proto.user == "user-1"
    assert request.proto.service_tier == 3


# Repeated and map fields --------------------------------------------------------------------


def test_assigning_stop_replaces_the_list() -> None:
    request = _request()

    request.stop = ["a", "b"]
    assert list(request.proto.stop) == ["a", "b"]

    request.stop = ("c",)
    assert list(request.proto.stop) == ["c"]

    request.stop = []
    assert list(request.proto.stop) == []


def test_assigning_messages_replaces_the_conversation() -> None:
    request = _request()
    new = [
        pb.Message(role=Role.USER, text="one"),
        pb.Message(role=Role.ASSISTANT, text="two"),
        pb.Message(role=Role.USER, text="three"),
    ]

    request.messages = new

    assert list(request.proto.messages) == new
    new[0].text = "changed"
    assert request.proto.messages[0].text == "one"


def test_assigning_metadata_replaces_the_map() -> None:
    request = _request()

    request.metadata = {"only": "this"}
    assert dict(request.proto.metadata) == {"only": "this"}

    request.metadata = {}
    assert dict(request.proto.metadata) == {}


def test_assigning_a_field_its_own_value_keeps_it() -> None:
    request = _request()
    before = request.copy()

    request.stop = request.stop
    request.messages = request.messages
    request.metadata = request.metadata
    request.provider = request.provider
    request.reasoning = request.reasoning

    assert request == before


def test_assigning_a_field_from_its_own_elements_keeps_them() -> None:
    request = _request()

    request.messages = reversed(request.messages)
    request.stop = [*request.stop, "MORE"]

    assert [m.text for m in request.proto.messages] == ["Hello!", "Be brief."]
    assert list(request.proto.stop) == ["END", "MORE"]


# Unknown names, reads, equality --------------------------------------------------------------


@pytest.mark.parametrize("name", ["provider_config", "quantizations", "temprature", "proto"])
def test_assigning_an_unknown_attribute_raises_attribute_error(name: str) -> None:
    request = _request()
    before = request.copy()

    with pytest.raises(AttributeError):
        setattr(request, name, 1)

    assert request == before


def test_reading_an_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = _request().no_such_field


def test_reads_and_proto_methods_go_to_the_proto() -> None:
    request = _request()

    assert request.messages is not None
    assert [m.text for m in request.messages] == ["Be brief.", "Hello!"]
    assert request.HasField("provider")
    assert request.SerializeToString() == request.proto.SerializeToString()


def test_a_view_equals_its_proto_and_an_equal_view() -> None:
    request = _request()
    same = pb.ChatRequest()
    same.CopyFrom(request.proto)

    assert request == same
    assert same == request
    assert request == ChatRequest(same)
    assert request == request.copy()
    assert (request != same) is False

    same.temperature = 1.0
    assert request != same
    assert request != ChatRequest(same)
    assert request != "not a request"
    assert request != pb.ProviderConfig()


def test_a_view_is_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(_request())


def test_proto_is_the_wrapped_message_and_copy_is_independent() -> None:
    proto = pb.ChatRequest(model="m")
    view = ChatRequest(proto)
    assert view.proto is proto

    clone = view.copy()
    clone.model = "other"
    assert proto.model == "m"


@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda r: pickle.loads(pickle.dumps(r))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_copy_deepcopy_and_pickle_give_an_equal_independent_view(duplicate: object) -> None:
    request = _request()

    clone = duplicate(request)  # type: ignore[operator]

    assert isinstance(clone, ChatRequest)
    assert clone == request
    assert clone.proto is not request.proto
    clone.temperature = 1.5
    assert not request.proto.HasField("temperature")


def test_validate_checks_the_current_state() -> None:
    request = _request()
    request.validate()

    request.provider = ProviderConfig(quantizations=[Quantization.UNSPECIFIED])

    with pytest.raises(InvalidArgumentError) as info:
        request.validate()
    assert [v.field for v in info.value.field_violations] == ["provider.quantizations[0]"]
