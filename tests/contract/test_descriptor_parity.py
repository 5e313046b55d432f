"""The Python API keeps up with the contract, and nothing is lost between its representations.

* Every top-level field of ``ChatRequest`` and ``ProviderConfig`` has a builder call that sets
  exactly it; the tables are checked against the descriptors, so a proto field added without
  builder support fails here.
* Arbitrary ``ChatRequest`` protos, generated from the descriptors themselves (every field of
  every ``routerpc.v1`` message they reach), survive view → builder, binary, and JSON round trips.
* The provider helpers send exactly the preferences that were set, never a key that was not.
* The generated ``IntEnum`` mirrors carry the proto numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import routerpc
from routerpc import ChatRequest, ChatRequestBuilder, ProviderConfig, Quantization, pb
from routerpc._gen import enums
from routerpc_gateway.convert import encode_chat, provider_body
from routerpc_gateway.openrouter import ProviderBody

PACKAGE = "routerpc.v1"
STRUCT = "google.protobuf.Struct"
LIST_VALUE = "google.protobuf.ListValue"

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Step = Callable[[ChatRequestBuilder], ChatRequestBuilder]


# Descriptor walking ---------------------------------------------------------------------------


def _is_synthetic(oneof: OneofDescriptor) -> bool:
    """The hidden oneof protoc makes for a proto3 ``optional`` field."""
    return len(oneof.fields) == 1 and oneof.name == f"_{oneof.fields[0].name}"


def _real_oneof(field: FieldDescriptor) -> OneofDescriptor | None:
    oneof = field.containing_oneof
    return None if oneof is None or _is_synthetic(oneof) else oneof


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _reachable(*roots: Descriptor) -> list[Descriptor]:
    """Every routerpc.v1 message reachable from ``roots`` through fields (map entries included)."""
    seen: dict[str, Descriptor] = {}
    stack = list(roots)
    while stack:
        descriptor = stack.pop()
        if descriptor.full_name in seen:
            continue
        seen[descriptor.full_name] = descriptor
        for field in descriptor.fields:
            sub = field.message_type
            if sub is None:
                continue
            if _is_map(field):
                stack += [f.message_type for f in sub.fields if f.message_type is not None]
            elif sub.full_name.startswith(f"{PACKAGE}."):
                stack.append(sub)
    return [d for d in seen.values() if d.full_name.startswith(f"{PACKAGE}.")]


REACHABLE = _reachable(pb.ChatRequest.DESCRIPTOR, pb.ProviderConfig.DESCRIPTOR)
EVERY_FIELD = sorted(
    (descriptor.full_name, field.name) for descriptor in REACHABLE for field in descriptor.fields
)


def test_the_walk_reaches_every_message_a_chat_request_can_hold() -> None:
    names = {d.full_name.removeprefix(f"{PACKAGE}.") for d in REACHABLE}
    assert names == {
        "ChatRequest",
        "Message",
        "ContentParts",
        "ContentPart",
        "ImageUrl",
        "InputAudio",
        "FileInput",
        "VideoUrl",
        "CacheControl",
        "ToolCall",
        "Tool",
        "FunctionTool",
        "ServerTool",
        "ToolChoice",
        "ResponseFormat",
        "JsonSchemaFormat",
        "Reasoning",
        "Plugin",
        "ProviderConfig",
        "SortConfig",
        "MaxPrice",
        "PerformancePreference",
        "PercentileCutoffs",
    }


# Builder reachability tables ------------------------------------------------------------------

# field -> (a builder call that sets it, other fields that call sets by design)
CHAT_REQUEST_SETTERS: dict[str, tuple[Step, frozenset[str]]] = {
    "model": (lambda b: b.with_model("openai/gpt-4o"), frozenset()),
    "models": (lambda b: b.with_fallback_models("anthropic/claude-sonnet-4"), frozenset()),
    "messages": (lambda b: b.with_text("Hello!"), frozenset()),
    "tools": (lambda b: b.with_tool("get_weather"), frozenset()),
    "tool_choice": (lambda b: b.with_tool_choice("auto"), frozenset()),
    "parallel_tool_calls": (lambda b: b.with_parallel_tool_calls(False), frozenset()),
    "response_format": (lambda b: b.with_json_object(), frozenset()),
    "temperature": (lambda b: b.with_temperature(0), frozenset()),
    "top_p": (lambda b: b.with_top_p(0), frozenset()),
    "top_k": (lambda b: b.with_top_k(0), frozenset()),
    "frequency_penalty": (lambda b: b.with_frequency_penalty(0), frozenset()),
    "presence_penalty": (lambda b: b.with_presence_penalty(0), frozenset()),
    "repetition_penalty": (lambda b: b.with_repetition_penalty(0), frozenset()),
    "min_p": (lambda b: b.with_min_p(0), frozenset()),
    "top_a": (lambda b: b.with_top_a(0), frozenset()),
    "seed": (lambda b: b.with_seed(0), frozenset()),
    "max_tokens": (lambda b: b.with_max_tokens(1), frozenset()),
    "max_completion_tokens": (lambda b: b.with_max_completion_tokens(1), frozenset()),
    "stop": (lambda b: b.with_stop("END"), frozenset()),
    "logit_bias": (lambda b: b.with_logit_bias({50256: 0}), frozenset()),
    "logprobs": (lambda b: b.with_logprobs(False), frozenset()),
    "top_logprobs": (lambda b: b.with_logprobs(top=0), frozenset({"logprobs"})),
    "reasoning": (lambda b: b.with_reasoning(exclude=False), frozenset()),
    "plugins": (lambda b: b.with_plugin("web"), frozenset()),
    "user": (lambda b: b.with_end_user("user-1"), frozenset()),
    "session_id": (lambda b: b.with_session_id("session-1"), frozenset()),
    "metadata": (lambda b: b.with_metadata(team="core"), frozenset()),
    "modalities": (lambda b: b.with_modalities("text"), frozenset()),
    "service_tier": (lambda b: b.with_service_tier("auto"), frozenset()),
    "provider": (lambda b: b.with_provider(ProviderConfig()), frozenset()),
    "extra_body": (lambda b: b.with_extra_body({"transforms": []}), frozenset()),
}

PROVIDER_SETTERS: dict[str, Step] = {
    "order": lambda b: b.with_provider_order("anthropic"),
    "allow_fallbacks": lambda b: b.with_allow_fallbacks(False),
    "require_parameters": lambda b: b.with_require_parameters(False),
    "data_collection": lambda b: b.with_data_collection("allow"),
    "zdr": lambda b: b.with_zdr(False),
    "enforce_distillable_text": lambda b: b.with_enforce_distillable_text(False),
    "only": lambda b: b.with_only_providers("openai"),
    "ignore": lambda b: b.with_ignored_providers("azure"),
    "quantizations": lambda b: b.with_quantizations("fp8"),
    "sort_strategy": lambda b: b.with_sort("price"),
    "sort_config": lambda b: b.with_sort("price", partition="model"),
    "max_price": lambda b: b.with_max_price(prompt=0),
    "preferred_min_throughput": lambda b: b.with_preferred_min_throughput(0),
    "preferred_max_latency": lambda b: b.with_preferred_max_latency({"p50": 0}),
}


def _present(message: Message) -> set[str]:
    return {field.name for field, _ in message.ListFields()}


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return message.HasField(field.name)
    return bool(getattr(message, field.name))


def test_every_chat_request_field_has_a_builder_call() -> None:
    assert set(CHAT_REQUEST_SETTERS) == set(pb.ChatRequest.DESCRIPTOR.fields_by_name)


def test_every_provider_config_field_has_a_builder_call() -> None:
    assert set(PROVIDER_SETTERS) == set(pb.ProviderConfig.DESCRIPTOR.fields_by_name)


@pytest.mark.parametrize("name", CHAT_REQUEST_SETTERS)
def test_the_builder_call_for_a_chat_request_field_sets_exactly_it(name: str) -> None:
    step, companions = CHAT_REQUEST_SETTERS[name]
    field = pb.ChatRequest.DESCRIPTOR.fields_by_name[name]

    state = step(ChatRequestBuilder())._request

    assert _is_set(state, field)
    assert _present(state) == {name, *companions}


@pytest.mark.parametrize("name", PROVIDER_SETTERS)
def test_the_builder_call_for_a_provider_field_sets_exactly_it(name: str) -> None:
    field = pb.ProviderConfig.DESCRIPTOR.fields_by_name[name]

    state = PROVIDER_SETTERS[name](ChatRequestBuilder())._request

    assert _present(state) == {"provider"}
    assert _is_set(state.provider, field)
    assert _present(state.provider) == {name}


# Generating arbitrary requests from the descriptors ------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**53), 2**53).map(float)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4)
JSON_LISTS = st.lists(JSON_VALUES, max_size=3)


def _enum_values(enum_type: EnumDescriptor) -> st.SearchStrategy[int]:
    return st.sampled_from([value.number for value in enum_type.values])


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=12)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=False)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_INT32:
        return st.integers(-(2**31), 2**31 - 1)
    if kind == FieldDescriptor.TYPE_INT64:
        return st.integers(-(2**63), 2**63 - 1)
    if kind == FieldDescriptor.TYPE_ENUM:
        return _enum_values(field.enum_type)
    raise NotImplementedError(f"no strategy for {field.full_name} (type {kind}); add one")


def _single(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    sub = field.message_type
    if sub is None:
        return _scalar(field)
    if sub.full_name == STRUCT:
        return JSON_OBJECTS
    if sub.full_name == LIST_VALUE:
        return JSON_LISTS
    if sub.full_name.startswith(f"{PACKAGE}."):
        return st.deferred(lambda: messages(sub))
    raise NotImplementedError(f"no strategy for {field.full_name} ({sub.full_name}); add one")


def _value(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if _is_map(field):
        key, value = (
            field.message_type.fields_by_name["key"],
            field.message_type.fields_by_name["value"],
        )
        return st.dictionaries(_scalar(key), _single(value), max_size=3)
    if field.is_repeated:
        return st.lists(_single(field), max_size=3)
    return _single(field)


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    """Set ``field`` to a drawn value; a drawn empty message or Struct is still marked present."""
    if field.message_type is None:
        if field.is_repeated:
            getattr(message, field.name).extend(value)
        else:
            setattr(message, field.name, value)
        return
    target: Any = getattr(message, field.name)
    if _is_map(field):
        target.update(value)
    elif field.is_repeated:
        for item in value:
            target.add().CopyFrom(item)
    elif field.message_type.full_name == STRUCT:
        target.SetInParent()
        target.update(value)
    elif field.message_type.full_name == LIST_VALUE:
        target.SetInParent()
        target.extend(value)
    else:
        target.CopyFrom(value)


_MESSAGES: dict[str, st.SearchStrategy[Message]] = {}


def messages(descriptor: Descriptor) -> st.SearchStrategy[Message]:
    """Arbitrary messages of ``descriptor``: each field set or not, at most one per real oneof."""
    if descriptor.full_name not in _MESSAGES:
        cls = message_factory.GetMessageClass(descriptor)
        fields = [f for f in descriptor.fields if _real_oneof(f) is None]
        oneofs = [o for o in descriptor.oneofs if not _is_synthetic(o)]
        optional = {f.name: _value(f) for f in fields}
        choices = {
            o.name: st.one_of(*[st.tuples(st.just(f), _value(f)) for f in o.fields]) for o in oneofs
        }

        def build(
            values: dict[str, Any], chosen: dict[str, tuple[FieldDescriptor, Any]]
        ) -> Message:
            message = cls()
            for name, value in values.items():
                _assign(message, descriptor.fields_by_name[name], value)
            for field, value in chosen.values():
                _assign(message, field, value)
            return message

        _MESSAGES[descriptor.full_name] = st.builds(
            build,
            st.fixed_dictionaries({}, optional=optional),
            st.fixed_dictionaries({}, optional=choices),
        )
    return _MESSAGES[descriptor.full_name]


def chat_requests() -> st.SearchStrategy[Any]:
    return messages(pb.ChatRequest.DESCRIPTOR)


def test_the_generator_has_a_strategy_for_every_field_of_every_reachable_message() -> None:
    for descriptor in REACHABLE:
        for field in descriptor.fields:
            assert _value(field) is not None, field.full_name


@pytest.mark.parametrize("descriptor", REACHABLE, ids=lambda d: d.name)
def test_generated_messages_set_every_field_of_their_type(descriptor: Descriptor) -> None:
    # Each message type's strategy sets each of its fields in some example, and a parent field
    # of that type draws from the same strategy; together every reachable field is exercised.
    wanted = set(descriptor.fields_by_name)
    seen: set[str] = set()

    def covered(message: Message) -> bool:
        assert message.DESCRIPTOR is descriptor
        seen.update(field.name for field, _ in message.ListFields())
        return seen >= wanted

    # find() stops at the first example after which every field has been seen, and raises
    # NoSuchExample when 300 examples never get there.
    once = settings(PROPERTY_SETTINGS, max_examples=300, derandomize=True, phases=[Phase.generate])
    find(messages(descriptor), covered, settings=once)

    assert sorted(wanted - seen) == []


@PROPERTY_SETTINGS
@given(chat_requests())
def test_a_request_round_trips_through_the_view_and_the_builder(proto: pb.ChatRequest) -> None:
    view = ChatRequest(proto)
    builder = ChatRequestBuilder(view)

    assert builder._request == proto
    assert builder._request is not proto
    assert ChatRequestBuilder(proto)._request == proto
    assert view == proto
    assert view.copy() == proto


@PROPERTY_SETTINGS
@given(chat_requests())
def test_a_request_round_trips_through_the_binary_encoding(proto: pb.ChatRequest) -> None:
    assert pb.ChatRequest.FromString(proto.SerializeToString()) == proto


@PROPERTY_SETTINGS
@given(chat_requests())
def test_a_request_round_trips_through_proto_json(proto: pb.ChatRequest) -> None:
    text = json_format.MessageToJson(proto)
    assert json_format.Parse(text, pb.ChatRequest()) == proto


# Provider helpers: exactly the keys that were set ---------------------------------------------

SLUGS = st.lists(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(/[a-z]{1,6})?", fullmatch=True),
    min_size=1,
    max_size=4,
    unique=True,
)
PRICES = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
THRESHOLD = PRICES | st.fixed_dictionaries(
    {}, optional={p: PRICES for p in ("p50", "p75", "p90", "p99")}
).filter(bool)
SORT = st.one_of(
    st.tuples(st.sampled_from(["price", "throughput", "latency", "exacto"]), st.none()),
    st.tuples(
        st.sampled_from(["price", "throughput", "latency", "exacto", None]),
        st.sampled_from(["model", "none"]),
    ),
)
PREFERENCES: dict[str, st.SearchStrategy[Any]] = {
    "order": SLUGS,
    "allow_fallbacks": st.booleans(),
    "require_parameters": st.booleans(),
    "data_collection": st.sampled_from(["allow", "deny"]),
    "zdr": st.booleans(),
    "enforce_distillable_text": st.booleans(),
    "only": SLUGS,
    "ignore": SLUGS,
    "quantizations": st.lists(
        st.sampled_from([q for q in Quantization if q]), min_size=1, max_size=12, unique=True
    ),
    "sort": SORT,
    "max_price": st.fixed_dictionaries(
        {}, optional={c: PRICES for c in ("prompt", "completion", "image", "audio", "request")}
    ).filter(bool),
    "preferred_min_throughput": THRESHOLD,
    "preferred_max_latency": THRESHOLD,
}
APPLY: dict[str, Callable[[ChatRequestBuilder, Any], ChatRequestBuilder]] = {
    "order": lambda b, v: b.with_provider_order(*v),
    "allow_fallbacks": lambda b, v: b.with_allow_fallbacks(v),
    "require_parameters": lambda b, v: b.with_require_parameters(v),
    "data_collection": lambda b, v: b.with_data_collection(v),
    "zdr": lambda b, v: b.with_zdr(v),
    "enforce_distillable_text": lambda b, v: b.with_enforce_distillable_text(v),
    "only": lambda b, v: b.with_only_providers(*v),
    "ignore": lambda b, v: b.with_ignored_providers(*v),
    "quantizations": lambda b, v: b.with_quantizations(*v),
    "sort": lambda b, v: b.with_sort(v[0], partition=v[1]),
    "max_price": lambda b, v: b.with_max_price(**v),
    "preferred_min_throughput": lambda b, v: b.with_preferred_min_throughput(v),
    "preferred_max_latency": lambda b, v: b.with_preferred_max_latency(v),
}


def _expected_json(key: str, value: Any) -> Any:
    if key == "quantizations":
        return [q.name.lower() for q in value]
    if key == "sort":
        by, partition = value
        if partition is None:
            return by
        return {"by": by, "partition": partition} if by else {"partition": partition}
    if key in ("max_price", "preferred_min_throughput", "preferred_max_latency"):
        return {k: float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)
    return value


def test_provider_preference_tables_cover_every_openrouter_provider_key() -> None:
    assert set(PREFERENCES) == set(APPLY)
    wire_keys = {name for name in pb.ProviderConfig.DESCRIPTOR.fields_by_name if "sort" not in name}
    assert set(PREFERENCES) == wire_keys | {"sort"}


@PROPERTY_SETTINGS
@given(st.fixed_dictionaries({}, optional=PREFERENCES), st.data())
def test_provider_helpers_send_exactly_the_preferences_that_were_set(
    chosen: dict[str, Any], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(sorted(chosen)))
    builder = ChatRequestBuilder().with_model("openai/gpt-4o").with_text("Hello!")
    for key in order:
        builder = APPLY[key](builder, chosen[key])

    request = builder.build()
    provider = provider_body(request.proto.provider)
    assert ProviderBody.model_validate(provider).model_dump(mode="json", exclude_unset=True) == (
        provider
    )

    assert set(provider) == set(chosen)
    for key, value in chosen.items():
        assert provider[key] == _expected_json(key, value), key
    body = json.loads(encode_chat(request.proto, stream=False))
    assert ("provider" in body) == bool(chosen)
    if chosen:
        assert body["provider"] == provider
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in provider.values())


# Enum mirrors ---------------------------------------------------------------------------------

OPENROUTER_QUANTIZATIONS = {
    "int4",
    "int8",
    "fp4",
    "mxfp4",
    "nvfp4",
    "fp6",
    "fp8",
    "mxfp8",
    "fp16",
    "bf16",
    "fp32",
    "unknown",
}


def test_quantization_is_openrouters_twelve_values_plus_unspecified_with_proto_numbers() -> None:
    proto_enum = pb.ProviderConfig.DESCRIPTOR.fields_by_name["quantizations"].enum_type

    assert routerpc.Quantization is enums.Quantization
    assert {m.name.lower() for m in Quantization if m} == OPENROUTER_QUANTIZATIONS
    assert len(Quantization) == 13
    assert Quantization.UNSPECIFIED == 0
    assert {m.name: m.value for m in Quantization} == {
        v.name.removeprefix("QUANTIZATION_"): v.number for v in proto_enum.values
    }
    assert proto_enum.full_name == f"{PACKAGE}.Quantization"


def _proto_enums() -> list[EnumDescriptor]:
    files = {pb.ChatRequest.DESCRIPTOR.file, pb.ProviderConfig.DESCRIPTOR.file}
    files.add(pb.ROUTER_SERVICE_FILE)
    return [e for f in files for e in f.enum_types_by_name.values()]


@pytest.mark.parametrize("enum_type", _proto_enums(), ids=lambda e: e.name)
def test_every_proto_enum_has_an_exported_intenum_mirror_with_the_same_numbers(
    enum_type: EnumDescriptor,
) -> None:
    mirror = getattr(enums, enum_type.name)
    prefix = "".join(f"_{c}" if c.isupper() else c.upper() for c in enum_type.name).lstrip("_")

    assert getattr(routerpc, enum_type.name) is mirror
    assert {m.name: m.value for m in mirror} == {
        v.name.removeprefix(f"{prefix}_"): v.number for v in enum_type.values
    }
