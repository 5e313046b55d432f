"""The fast validation path reports exactly what protovalidate reports on the full contract.

``field_violations`` evaluates the contract's message-level CEL rules in Python
(``routerpc._message_rules``) and hands protovalidate protobuf-py twins without them. The
reference here is protovalidate alone on the google.protobuf message, every rule of the
descriptor included. Both must agree on every violation, its path, text, reason and order.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from routerpc import FieldViolation, _twins, pb
from routerpc._gen.buf.validate import validate_pb2
from routerpc._message_rules import python_rules, taken_over
from routerpc._validation import _reported, _validator, field_violations, prepare


def _reference(message: Message) -> list[FieldViolation]:
    """protovalidate on the google.protobuf message itself: the contract, every rule."""
    return [
        _reported(validate_pb2.Violation.FromString(violation.proto.to_binary()))
        for violation in _validator.collect_violations(message)
    ]


def _agree(message: Message) -> list[FieldViolation]:
    fast = field_violations(message)
    assert fast == _reference(message), message
    return fast


_ROLES = [0, 1, 2, 3, 4, 5, 99]  # every Role, UNSPECIFIED and one unknown number


def _contents() -> list[dict[str, Any]]:
    text = pb.ContentPart(text="t")
    image = pb.ContentPart(image_url=pb.ImageUrl(url="https://example.com/a.png"))
    file = pb.ContentPart(file=pb.FileInput(filename="a.pdf", file_data="data:x"))
    no_source = pb.ContentPart(file=pb.FileInput(filename="a.pdf"))
    return [
        {},
        {"text": "hi"},
        {"text": ""},
        {"parts": pb.ContentParts(parts=[text])},
        {"parts": pb.ContentParts(parts=[text, image])},
        {"parts": pb.ContentParts(parts=[file, no_source])},
        {"parts": pb.ContentParts()},
    ]


def _message_corpus() -> list[pb.Message]:
    return [
        pb.Message(role=role, tool_call_id=call_id, tool_calls=calls, **content)
        for role, content, call_id, calls in itertools.product(
            _ROLES,
            _contents(),
            ["", "call_1"],
            [[], [pb.ToolCall(id="call_1", name="f")]],
        )
    ]


def test_every_message_level_rule_of_the_contract_is_evaluated_in_python() -> None:
    # A rule edited in the proto stops matching its Python equivalent and falls back to the
    # engine: still correct, only slower. This names it, so _message_rules is updated with it.
    pool = descriptor_pool.Default()
    file = pool.FindFileByName("routerpc/v1/chat.proto")
    missing = []
    for descriptor in file.message_types_by_name.values():
        options = descriptor.GetOptions()
        declared = options.Extensions[validate_pb2.message].cel
        ours = {rule.rule_id for rule in python_rules(descriptor)}
        missing += [f"{descriptor.full_name}: {r.id}" for r in declared if r.id not in ours]
    assert not missing, f"update routerpc/_message_rules.py for {missing}"


def test_a_rule_whose_expression_changed_is_left_to_the_engine() -> None:
    rule = "this.role == 4 || has(this.text) || has(this.parts)"
    assert taken_over("routerpc.v1.Message", "message.content_required", rule)
    assert not taken_over("routerpc.v1.Message", "message.content_required", rule + " || true")
    assert not taken_over("routerpc.v1.Message", "message.no_such_rule", rule)


@pytest.mark.parametrize("message", _message_corpus(), ids=str)
def test_each_chat_message_gets_the_engines_verdict(message: pb.Message) -> None:
    _agree(pb.ChatRequest(model="openai/gpt-4o", messages=[message]))


def test_a_conversation_reports_every_message_in_the_engines_order() -> None:
    corpus = _message_corpus()
    request = pb.ChatRequest(model="openai/gpt-4o", messages=corpus[:100])
    assert len(_agree(request)) > 50


@pytest.mark.parametrize(
    ("top_logprobs", "logprobs"), list(itertools.product([None, 0, 5, 50], [None, False, True]))
)
def test_top_logprobs_rule_matches_the_engine(
    top_logprobs: int | None, logprobs: bool | None
) -> None:
    request = pb.ChatRequest(model="openai/gpt-4o", messages=[pb.Message(role=3, text="hi")])
    if top_logprobs is not None:
        request.top_logprobs = top_logprobs
    if logprobs is not None:
        request.logprobs = logprobs
    _agree(request)


@pytest.mark.parametrize(
    ("kind", "with_schema"), list(itertools.product([0, 1, 2, 3, 9], [False, True]))
)
def test_response_format_rule_matches_the_engine(kind: int, with_schema: bool) -> None:
    response_format = pb.ResponseFormat(type=kind)
    if with_schema:
        response_format.json_schema.name = "answer"
    request = pb.ChatRequest(
        model="openai/gpt-4o",
        messages=[pb.Message(role=3, text="hi")],
        response_format=response_format,
    )
    _agree(request)


@pytest.mark.parametrize(
    ("effort", "max_tokens"), list(itertools.product([0, 1, 3, 9], [None, 0, 1, 4096]))
)
def test_reasoning_rule_matches_the_engine(effort: int, max_tokens: int | None) -> None:
    reasoning = pb.Reasoning(effort=effort)
    if max_tokens is not None:
        reasoning.max_tokens = max_tokens
    request = pb.ChatRequest(
        model="openai/gpt-4o", messages=[pb.Message(role=3, text="hi")], reasoning=reasoning
    )
    _agree(request)


def test_rule_and_field_violations_interleave_as_the_engine_orders_them() -> None:
    request = pb.ChatRequest(
        model="openai/gpt-4o",
        top_logprobs=3,
        temperature=9,
        messages=[
            pb.Message(role=5, text="x"),
            pb.Message(role=1, tool_calls=[pb.ToolCall(id="")]),
            pb.Message(role=1, parts=pb.ContentParts(parts=[pb.ContentPart(file=pb.FileInput())])),
        ],
        response_format=pb.ResponseFormat(type=3),
        reasoning=pb.Reasoning(effort=1, max_tokens=5),
    )
    found = _agree(request)
    assert [v.reason for v in found][:2] == [
        "chat_request.top_logprobs_needs_logprobs",
        "message.tool_call_id_required",
    ]
    assert {"file_input.source", "message.instructions_text_only"} <= {v.reason for v in found}


def test_stream_requests_are_checked_through_their_wrapper() -> None:
    inner = pb.ChatRequest(model="openai/gpt-4o", messages=[pb.Message(role=5, text="x")])
    found = _agree(pb.StreamChatRequest(request=inner))
    assert [v.field for v in found] == ["request.messages[0].tool_call_id"]


def _holder() -> Any:
    """A message type outside the contract holding rule-bearing messages in a map and a list,
    the shapes the contract does not use (yet)."""
    pool = descriptor_pool.Default()
    name = "routerpc_tests/parity_holder.proto"
    try:
        file = pool.FindFileByName(name)
    except KeyError:
        proto = descriptor_pb2.FileDescriptorProto(
            name=name,
            package="routerpc_tests",
            syntax="proto3",
            dependency=["routerpc/v1/chat.proto"],
        )
        holder = proto.message_type.add(name="Holder")
        entry = holder.nested_type.add(name="ByNameEntry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=9, label=1)
        entry.field.add(
            name="value", number=2, type=11, label=1, type_name=".routerpc.v1.Reasoning"
        )
        holder.field.add(
            name="by_name",
            number=1,
            type=11,
            label=3,
            type_name=".routerpc_tests.Holder.ByNameEntry",
        )
        holder.field.add(
            name="listed", number=2, type=11, label=3, type_name=".routerpc.v1.Reasoning"
        )
        holder.field.add(
            name="single", number=3, type=11, label=1, type_name=".routerpc.v1.Reasoning"
        )
        pool.Add(proto)
        file = pool.FindFileByName(name)
    return message_factory.GetMessageClass(file.message_types_by_name["Holder"])


def test_rules_inside_maps_and_lists_of_messages_are_found() -> None:
    holder = _holder()
    both = pb.Reasoning(effort=1, max_tokens=5)
    message = holder(
        by_name={"a": both, "b": pb.Reasoning(effort=1)}, listed=[both, both], single=both
    )
    found = _agree(message)
    assert [v.field for v in found] == ["by_name['a']", "listed[0]", "listed[1]", "single"]


def test_preparing_covers_every_request_type_of_the_service() -> None:
    service = pb.ROUTER_SERVICE_FILE.services_by_name["RouterService"]
    prepared = prepare(method.input_type for method in service.methods)
    assert sorted(prepared) == sorted({m.input_type.full_name for m in service.methods})
    assert "routerpc.v1.StreamChatRequest" in prepared
    # The twins those types need exist now: a first call has nothing left to build.
    built = dict(_twins._files)
    for method in service.methods:
        field_violations(message_factory.GetMessageClass(method.input_type)())
    assert _twins._files == built


_FIRST_USE_FROM_THREADS = """
import threading
from routerpc import pb
from routerpc._validation import field_violations

request = pb.ChatRequest(model="openai/gpt-4o", messages=[pb.Message(role=5, text="x")])
barrier = threading.Barrier(8)
verdicts = []

def first_validation():
    barrier.wait()
    verdicts.append([v.reason for v in field_violations(request)])

threads = [threading.Thread(target=first_validation) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(verdicts)
"""


def test_first_validations_racing_in_threads_all_get_the_verdict() -> None:
    # A fresh interpreter: the twins are built by whichever thread comes first.
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_USE_FROM_THREADS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([["message.tool_call_id_required"]] * 8)


def test_a_oneof_left_empty_is_reported_where_the_engine_reports_it() -> None:
    # A required oneof's violation names the oneof, which has no field number: it once made
    # the exact path fail with a KeyError instead of reporting the field.
    request = pb.ChatRequest(
        model="openai/gpt-4o",
        top_logprobs=2,
        messages=[pb.Message(role=3, text="hi")],
        tools=[
            pb.Tool(cache_control=pb.CacheControl(ttl="2h")),
            pb.Tool(function=pb.FunctionTool(name="ok")),
            pb.Tool(),
        ],
        tool_choice=pb.ToolChoice(),
    )
    found = _agree(request)
    assert [v.field for v in found] == [
        "top_logprobs",
        "tools[0].tool",
        "tools[0].cache_control.ttl",
        "tools[2].tool",
        "tool_choice.choice",
    ]
