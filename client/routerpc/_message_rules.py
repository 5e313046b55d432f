"""The contract's message-level CEL rules, evaluated in Python as well as by the engine.

Why: protovalidate evaluates a message-level rule by turning the whole message (``this``, with
everything nested in it) into a CEL value first. For the seed request those rules were four
fifths of the validation time, and the cost grows with every message of a conversation (about
11 microseconds per ``Message``, on top of the request-level rule converting the whole request
once more).

How it stays the contract's rule: each entry below names the rule id *and* the exact CEL
expression it was written for. A rule is taken over only when the descriptor carries that id
with that very expression, and its message text is read from the descriptor; a rule edited in
the proto (or a new one) no longer matches and stays with the engine, untouched. The twin
messages handed to the engine (``_twins``) drop exactly the rules taken over here. A parity test
compares both paths on an exhaustive corpus of the fields these rules read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor

from routerpc._gen.buf.validate import validate_pb2

__all__ = ["MessageRule", "python_rules"]

_ASSISTANT, _TOOL, _SYSTEM, _DEVELOPER, _JSON_SCHEMA = 4, 5, 1, 2, 3


def _text_parts_only(message: Any) -> bool:
    return all(part.HasField("text") for part in message.parts.parts)


# (message type, rule id) -> (the CEL expression it evaluates, the same test in Python)
_EQUIVALENTS: dict[tuple[str, str], tuple[str, Callable[[Any], bool]]] = {
    ("routerpc.v1.FileInput", "file_input.source"): (
        "this.file_data != '' || this.file_id != ''",
        lambda m: m.file_data != "" or m.file_id != "",
    ),
    ("routerpc.v1.Message", "message.content_required"): (
        "this.role == 4 || has(this.text) || has(this.parts)",
        lambda m: m.role == _ASSISTANT or m.HasField("text") or m.HasField("parts"),
    ),
    ("routerpc.v1.Message", "message.tool_call_id_required"): (
        "this.role != 5 || this.tool_call_id != ''",
        lambda m: m.role != _TOOL or m.tool_call_id != "",
    ),
    ("routerpc.v1.Message", "message.instructions_text_only"): (
        "(this.role != 1 && this.role != 2) || !has(this.parts) || "
        "this.parts.parts.all(p, has(p.text))",
        lambda m: (
            m.role not in (_SYSTEM, _DEVELOPER) or not m.HasField("parts") or _text_parts_only(m)
        ),
    ),
    ("routerpc.v1.Message", "message.tool_calls_assistant_only"): (
        "this.role == 4 || size(this.tool_calls) == 0",
        lambda m: m.role == _ASSISTANT or len(m.tool_calls) == 0,
    ),
    ("routerpc.v1.ResponseFormat", "response_format.json_schema"): (
        "(this.type == 3) == has(this.json_schema)",
        lambda m: (m.type == _JSON_SCHEMA) == m.HasField("json_schema"),
    ),
    ("routerpc.v1.Reasoning", "reasoning.effort_or_max_tokens"): (
        "!(this.effort != 0 && has(this.max_tokens))",
        lambda m: not (m.effort != 0 and m.HasField("max_tokens")),
    ),
    ("routerpc.v1.ChatRequest", "chat_request.top_logprobs_needs_logprobs"): (
        "!has(this.top_logprobs) || (has(this.logprobs) && this.logprobs)",
        lambda m: not m.HasField("top_logprobs") or (m.HasField("logprobs") and m.logprobs),
    ),
}


@dataclass(frozen=True, slots=True)
class MessageRule:
    """One message-level rule of the contract, evaluated here instead of by the engine."""

    rule_id: str
    message: str
    holds: Callable[[Any], bool]


def _equivalent(type_name: str, rule_id: str, expression: str) -> Callable[[Any], bool] | None:
    """The Python test written for exactly this rule, if there is one."""
    found = _EQUIVALENTS.get((type_name, rule_id))
    return found[1] if found is not None and found[0] == expression else None


def python_rules(descriptor: Descriptor) -> list[MessageRule]:
    """The message-level rules of ``descriptor`` that match an equivalent here, in the order
    the contract declares them."""
    options = descriptor.GetOptions()
    if not options.HasExtension(validate_pb2.message):
        return []
    found = []
    for rule in options.Extensions[validate_pb2.message].cel:
        holds = _equivalent(descriptor.full_name, rule.id, rule.expression)
        if holds is not None:
            found.append(MessageRule(rule.id, rule.message, holds))
    return found


def taken_over(type_name: str, rule_id: str, expression: str) -> bool:
    """Whether the engine may skip this rule because :func:`python_rules` evaluates it."""
    return _equivalent(type_name, rule_id, expression) is not None
