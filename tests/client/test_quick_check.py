"""The quick check says "valid" exactly when the exact validation path finds nothing.

``routerpc._quick_check`` compiles the contract's rules into Python and lets a request through
without the engine when it proves every rule holds. Wrong in one direction it would let an
invalid request reach the upstream; wrong in the other it would only be slow, but still
untested. So its verdict is held to the exact path's (``exact_violations``: the Python walk and
protovalidate, itself held to protovalidate alone by test_validation_parity.py) on a request
that sets every field of the contract, changed at every rule's boundaries: lengths counted in
characters (not bytes), bounds and the values just past them, NaN and infinities, every enum
number and some undefined ones, item and pair counts, duplicates, patterns against trailing
newlines, cleared messages and oneof members switched. The mutations are generated from the
descriptors' rule annotations, so a rule added to the contract is probed too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routerpc import pb
from routerpc._gen.buf.validate import validate_pb2
from routerpc._gen.routerpc.v1 import router_service_pb2
from routerpc._quick_check import passes, unsure_rules
from routerpc._validation import exact_violations, field_violations

_JSON = {"google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value"}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def _full_request() -> pb.ChatRequest:
    """A valid request setting every field of every message type the contract reaches."""
    cache = pb.CacheControl(ttl="5m")
    parts = [
        pb.ContentPart(text="look", cache_control=cache),
        pb.ContentPart(image_url=pb.ImageUrl(url="https://example.com/a.png", detail=2)),
        pb.ContentPart(input_audio=pb.InputAudio(data="UklGRg==", format="wav")),
        pb.ContentPart(file=pb.FileInput(filename="a.pdf", file_data="data:x", file_id="f-1")),
        pb.ContentPart(video_url=pb.VideoUrl(url="https://example.com/v.mp4")),
    ]
    details = struct_pb2.ListValue()
    details.extend([{"type": "reasoning.text", "n": 1.5}])
    request = pb.ChatRequest(
        model="openai/gpt-4o",
        models=["anthropic/claude-sonnet-4"],
        messages=[
            pb.Message(role=1, text="be brief", name="ops"),
            pb.Message(role=3, parts=pb.ContentParts(parts=parts)),
            pb.Message(
                role=4,
                tool_calls=[pb.ToolCall(id="call_1", name="lookup", arguments="{}")],
                reasoning="thought",
                refusal="no",
                reasoning_details=details,
            ),
            pb.Message(role=5, text="42", tool_call_id="call_1"),
        ],
        tools=[
            pb.Tool(
                function=pb.FunctionTool(
                    name="lookup", description="d", parameters=_struct({"n": 1.5}), strict=True
                ),
                cache_control=cache,
            ),
            pb.Tool(server=pb.ServerTool(type="openrouter:web_search", parameters=_struct({}))),
        ],
        tool_choice=pb.ToolChoice(function_name="lookup"),
        parallel_tool_calls=True,
        response_format=pb.ResponseFormat(
            type=3,
            json_schema=pb.JsonSchemaFormat(
                name="answer", description="d", schema=_struct({"type": "object"}), strict=True
            ),
        ),
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        frequency_penalty=0.1,
        presence_penalty=-0.1,
        repetition_penalty=1.1,
        min_p=0.05,
        top_a=0.1,
        seed=7,
        max_tokens=256,
        max_completion_tokens=256,
        stop=["END"],
        logit_bias={"50256": -100.0},
        logprobs=True,
        top_logprobs=5,
        reasoning=pb.Reasoning(effort=3, exclude=True, enabled=True, summary=1),
        plugins=[pb.Plugin(id="web", enabled=True, options=_struct({"max_results": 3}))],
        user="u-1",
        session_id="s-1",
        metadata={"team": "search"},
        modalities=[1, 2],
        service_tier=1,
        provider=pb.ProviderConfig(
            order=["openai"],
            allow_fallbacks=True,
            require_parameters=True,
            data_collection=2,
            zdr=True,
            enforce_distillable_text=True,
            only=["openai", "azure"],
            ignore=["deepinfra"],
            quantizations=[7, 9],
            sort_config=pb.SortConfig(by=1, partition=1),
            max_price=pb.MaxPrice(prompt=1, completion=2, image=0.5, audio=0.5, request=0.01),
            preferred_min_throughput=pb.PerformancePreference(value=50),
            preferred_max_latency=pb.PerformancePreference(
                percentiles=pb.PercentileCutoffs(p50=1, p75=2, p90=3, p99=4)
            ),
        ),
        extra_body=_struct({"transforms": ["middle-out"]}),
    )
    request.reasoning.ClearField("max_tokens")  # effort and max_tokens exclude each other
    return request


BASE = _full_request()
_LEFT_OUT = {"routerpc.v1.Reasoning": {"max_tokens"}}  # excluded by a rule; the mutations set it

# Where a message sits in BASE: (field name, index or None) steps from the request.
Path = tuple[tuple[str, int | None], ...]
# (path, field name, what, value): what is "set", "clear", "list", "map", "resize" or "json".
Mutation = tuple[Path, str, str, Any]


def _real_oneof(field: FieldDescriptor) -> Any:
    """The oneof ``field`` belongs to, unless it is the hidden one of an ``optional`` field."""
    oneof = field.containing_oneof
    return None if oneof is None or oneof.name.startswith("_") else oneof


def _rules(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    if options.HasExtension(validate_pb2.field):
        return options.Extensions[validate_pb2.field]
    return None


def _typed(rules: validate_pb2.FieldRules | None) -> Any:
    kind = None if rules is None else rules.WhichOneof("type")
    return None if kind is None else getattr(rules, kind)


def _optional(rules: Any, name: str) -> Any:
    return getattr(rules, name) if rules is not None and rules.HasField(name) else None


_PATTERN_PROBES = [
    "",
    "a",
    "1",
    "123",
    "12a",
    "123\n",
    "a\n",
    "a b",
    "a/b",
    "openai/gpt-4o",
    "a.b:c~d",
    "gen-1_x",
    "é",
    "١٢٣",  # Arabic-Indic digits: not [0-9]
    "x" * 65,
]


def _strings(rules: Any) -> list[str]:
    sizes = {0, 1, 2}
    for name in ("min_len", "max_len"):
        bound = _optional(rules, name)
        if bound is not None:
            sizes |= {bound - 1, bound, bound + 1}
    found = [c * n for n in sorted(s for s in sizes if s >= 0) for c in ("a", "é", "😀")]
    if rules is not None:
        found += [*getattr(rules, "in"), *rules.not_in, "zz"]
        if rules.HasField("pattern"):
            found += _PATTERN_PROBES
    return list(dict.fromkeys(found))


_LIMITS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}


def _numbers(field: FieldDescriptor, rules: Any) -> list[Any]:
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        found = [0.0, -0.0, 1.0, -1.0, 100.5, -100.5, math.nan, math.inf, -math.inf, 1e308]
        for name, outward in (("gte", -math.inf), ("lte", math.inf)):
            bound = _optional(rules, name)
            if bound is not None:
                found += [bound, math.nextafter(bound, outward), math.nextafter(bound, -outward)]
        return found
    low, high = _LIMITS[field.type]
    values = {0, 1, -1, low, high, 2**53, 2**53 + 1, -(2**53) - 1}
    for name in ("gte", "lte"):
        bound = _optional(rules, name)
        if bound is not None:
            values |= {bound - 1, bound, bound + 1}
    return sorted(v for v in values if low <= v <= high)


def _values(field: FieldDescriptor, rules: Any) -> list[Any]:
    """Values for one field (one item of a list or map) around its rules' boundaries."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return _strings(rules)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return [True, False]
    if field.type == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return [*numbers, max(numbers) + 1, -1]
    return _numbers(field, rules)


_JSON_VALUES: list[dict[str, Any]] = [
    {"n": 1.5},
    {"n": math.nan},
    {"n": [1, math.inf]},
    {"n": {"m": -math.inf}},
    {"n": "NaN"},
]


def _mutations_of(message: Message, path: Path) -> Iterator[Mutation]:
    for field in message.DESCRIPTOR.fields:
        name = field.name
        rules = _rules(field)
        kind = field.message_type
        if kind is not None and kind.GetOptions().map_entry:
            key, value = kind.fields_by_name["key"], kind.fields_by_name["value"]
            map_rules = _typed(rules)
            key_rules = _typed(map_rules.keys) if map_rules is not None else None
            value_rules = _typed(map_rules.values) if map_rules is not None else None
            old_key, old_value = next(iter(getattr(message, name).items()))
            yield path, name, "map", {}
            for item in _values(key, key_rules):
                yield path, name, "map", {item: old_value}
            for item in _values(value, value_rules):
                yield path, name, "map", {old_key: item}
            most = _optional(map_rules, "max_pairs")
            if most is not None:
                for size in (most, most + 1):
                    yield path, name, "map", {str(i): old_value for i in range(size)}
        elif kind is not None and kind.full_name in _JSON:
            yield path, name, "clear", None
            if kind.full_name == "google.protobuf.Struct":
                for value in _JSON_VALUES:
                    yield path, name, "json", value
            else:
                for value in _JSON_VALUES:
                    yield path, name, "json", [value]
        elif kind is not None and field.is_repeated:
            repeated = _typed(rules)
            sizes = {0, 1, 2}
            for bound in ("min_items", "max_items"):
                limit = _optional(repeated, bound)
                if limit is not None:
                    sizes |= {limit - 1, limit, limit + 1}
            for size in sorted(s for s in sizes if s >= 0):
                yield path, name, "resize", size
        elif kind is not None:
            yield path, name, "clear", None
        elif field.is_repeated:
            repeated = _typed(rules)
            item_rules = _typed(repeated.items) if repeated is not None else None
            items = _values(field, item_rules)
            old = list(getattr(message, name))
            yield path, name, "list", []
            for item in items:
                yield path, name, "list", [item]
                yield path, name, "list", [*old, item]
            yield path, name, "list", old + old  # duplicates
            most = _optional(repeated, "max_items")
            if most is not None:
                distinct = [f"p{i}" if isinstance(old[0], str) else 1 + i % 11 for i in range(200)]
                for size in (most, most + 1):
                    yield path, name, "list", (distinct * 2)[:size]
        else:
            for value in _values(field, _typed(rules)):
                yield path, name, "set", value
            if field.has_presence:
                yield path, name, "clear", None


def _locations(message: Message, path: Path = ()) -> Iterator[tuple[Path, Message]]:
    """Every routerpc message inside ``message`` (itself first), with its path."""
    yield path, message
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None or kind.full_name in _JSON or kind.GetOptions().map_entry:
            continue
        if field.is_repeated:
            for index, item in enumerate(value):
                yield from _locations(item, (*path, (field.name, index)))
        else:
            yield from _locations(value, (*path, (field.name, None)))


MUTATIONS: list[Mutation] = [
    mutation for path, message in _locations(BASE) for mutation in _mutations_of(message, path)
]


def _apply(request: pb.ChatRequest, mutation: Mutation) -> None:
    path, name, what, value = mutation
    target: Any = request
    for step, index in path:
        target = getattr(target, step)
        if index is not None:
            target = target[index]
    if what == "set":
        setattr(target, name, value)
    elif what == "clear":
        target.ClearField(name)
    elif what == "list":
        del getattr(target, name)[:]
        getattr(target, name).extend(value)
    elif what == "map":
        getattr(target, name).clear()
        getattr(target, name).update(value)
    elif what == "json":
        json = getattr(target, name)
        json.Clear()
        json.update(value) if isinstance(value, dict) else json.extend(value)
    else:
        items = getattr(target, name)
        first = type(items[0])()
        first.CopyFrom(items[0])
        del items[:]
        items.extend([first] * value)


def _mutated(*mutations: Mutation) -> pb.ChatRequest:
    request = pb.ChatRequest()
    request.CopyFrom(BASE)
    for mutation in mutations:
        with contextlib.suppress(IndexError):  # an earlier mutation emptied the list
            _apply(request, mutation)
    return request


def _assert_same_verdict(request: Message) -> bool:
    exact = exact_violations(request)
    assert passes(request) is (exact == []), (request, exact)
    assert field_violations(request) == exact
    return exact == []


def test_the_full_request_is_valid_and_sets_every_field_of_the_contract() -> None:
    assert exact_violations(BASE) == []
    assert passes(BASE)
    seen: dict[str, set[str]] = {}
    for _, message in _locations(BASE):
        seen.setdefault(message.DESCRIPTOR.full_name, set()).update(
            field.name for field, _ in message.ListFields()
        )
    for name, fields in seen.items():
        # A oneof holds one member per message; the mutations set the others (next test).
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
        outside_oneofs = {f.name for f in descriptor.fields if _real_oneof(f) is None}
        assert fields >= outside_oneofs - _LEFT_OUT.get(name, set()), name
        for oneof in descriptor.oneofs:
            if _real_oneof(oneof.fields[0]) is not None:
                assert fields & {f.name for f in oneof.fields}, oneof.full_name
    assert set(seen) == _reachable(pb.ChatRequest.DESCRIPTOR)


def _reachable(descriptor: Descriptor, found: set[str] | None = None) -> set[str]:
    """The routerpc message types (map entries aside) a message of ``descriptor`` can hold."""
    found = set() if found is None else found
    if descriptor.full_name not in found and descriptor.full_name.startswith("routerpc."):
        if not descriptor.GetOptions().map_entry:
            found.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.message_type is not None:
                _reachable(field.message_type, found)
    return found


def test_every_rule_of_every_request_type_is_compiled() -> None:
    # A rule the quick check cannot compile sends every request of its type down the exact
    # path: still correct, only slower. This names it, so _quick_check is extended with it.
    for method in router_service_pb2.DESCRIPTOR.services_by_name["RouterService"].methods:
        assert unsure_rules(method.input_type) == [], method.full_name


def test_the_mutation_catalogue_reaches_every_rule_and_both_verdicts() -> None:
    probed = {(path, name) for path, name, _, _ in MUTATIONS}
    assert len(MUTATIONS) > 1000
    # Every field (oneof members too) at every place its type occurs in the request is probed.
    for path, message in _locations(BASE):
        for field in message.DESCRIPTOR.fields:
            assert (path, field.name) in probed, (path, field.name)


@pytest.mark.parametrize("chunk", range(8))
def test_each_boundary_mutation_gets_the_exact_paths_verdict(chunk: int) -> None:
    verdicts = [_assert_same_verdict(_mutated(m)) for m in MUTATIONS[chunk::8]]
    assert True in verdicts
    assert False in verdicts


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.sampled_from(MUTATIONS), min_size=2, max_size=5))
def test_combined_mutations_get_the_exact_paths_verdict(mutations: list[Mutation]) -> None:
    _assert_same_verdict(_mutated(*mutations))


def test_a_stream_request_is_checked_through_its_wrapper() -> None:
    assert _assert_same_verdict(pb.StreamChatRequest(request=BASE))
    assert not _assert_same_verdict(pb.StreamChatRequest())  # request is required
    broken = _mutated(((), "temperature", "set", 2.5))
    assert not _assert_same_verdict(pb.StreamChatRequest(request=broken))


@pytest.mark.parametrize(
    "request_",
    [
        pb.ListEndpointsRequest(model="openai/gpt-4o"),
        pb.ListEndpointsRequest(model="openai/gpt-4o\n"),
        pb.ListEndpointsRequest(model="openai"),
        pb.GetGenerationRequest(id="gen-123:abc"),
        pb.GetGenerationRequest(id="gen 123"),
        pb.GetGenerationRequest(id="x" * 257),
        pb.ListModelsRequest(supported_parameters=["tools"]),
        pb.ListModelsRequest(supported_parameters=[""]),
        pb.ListModelsRequest(supported_parameters=["t"] * 33),
    ],
    ids=str,
)
def test_the_other_request_types_get_the_exact_paths_verdict(request_: Message) -> None:
    _assert_same_verdict(request_)


# Rules the quick check does not compile -------------------------------------------------------


def _test_type(name: str, fill: Callable[[descriptor_pb2.DescriptorProto], None]) -> Descriptor:
    """``routerpc_tests.<name>``, a message type outside the contract whose fields ``fill``
    adds; its file is added to the default pool on first use."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindMessageTypeByName(f"routerpc_tests.{name}")
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"routerpc_tests/{name.lower()}.proto",
        package="routerpc_tests",
        syntax="proto3",
        dependency=["buf/validate/validate.proto"],
    )
    fill(proto.message_type.add(name=name))
    pool.Add(proto)
    return pool.FindMessageTypeByName(f"routerpc_tests.{name}")


def _uncompiled_fields(message: descriptor_pb2.DescriptorProto) -> None:
    """Every field has a rule the check leaves to the exact path: a well-known string format, a
    pattern with a class RE2 and Python read differently, and a field CEL expression."""
    email = message.field.add(name="email", number=1, type=9, label=1)
    email.options.Extensions[validate_pb2.field].string.email = True
    digits = message.field.add(name="digits", number=2, type=9, label=1)
    digits.options.Extensions[validate_pb2.field].string.pattern = r"^\d*$"
    even = message.field.add(name="even", number=3, type=5, label=1)
    rule = even.options.Extensions[validate_pb2.field].cel.add()
    rule.id, rule.message, rule.expression = "even", "must be even", "this % 2 == 0"


def test_rules_outside_the_compiled_kinds_are_named_and_left_to_the_exact_path() -> None:
    descriptor = _test_type("Uncompiled", _uncompiled_fields)
    cls = message_factory.GetMessageClass(descriptor)

    assert sorted(unsure_rules(descriptor)) == [
        "routerpc_tests.Uncompiled.digits: pattern '^\\\\d*$'",
        "routerpc_tests.Uncompiled.email: email",
        "routerpc_tests.Uncompiled.even: cel",
    ]
    valid = cls(email="a@example.com", digits="123", even=2)
    assert not passes(valid)  # not sure: the exact path decides, and finds nothing
    assert field_violations(valid) == []
    wrong = cls(email="nope", digits="١٢٣", even=3)
    assert {v.reason for v in field_violations(wrong)} == {"string.email", "string.pattern", "even"}


def _tree_fields(tree: descriptor_pb2.DescriptorProto) -> None:
    """A recursive type: a rule sits below a field of its own type, which the check compiles
    while that type is still being built."""
    tree.field.add(name="child", number=1, type=11, label=1, type_name=".routerpc_tests.Tree")
    name = tree.field.add(name="name", number=2, type=9, label=1)
    name.options.Extensions[validate_pb2.field].string.min_len = 1


def test_a_rule_inside_a_recursive_type_is_checked_at_every_depth() -> None:
    tree = _test_type("Tree", _tree_fields)
    cls = message_factory.GetMessageClass(tree)
    assert unsure_rules(tree) == []

    assert _assert_same_verdict(cls(name="a", child=cls(name="b", child=cls(name="c"))))
    assert not _assert_same_verdict(cls(name="a", child=cls(name="b", child=cls(name=""))))
