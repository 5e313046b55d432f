"""One set of validation rules for client and gateway: the protovalidate annotations in the proto.

The builder runs these rules in ``build()`` and the gateway runs them before any I/O, so a request
the gateway would reject never leaves the caller, and both report the same field paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, cast

import protovalidate
from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from routerpc._errors import FieldViolation, InvalidArgumentError
from routerpc._gen.buf.validate import validate_pb2

__all__ = ["VALIDATION_REASON", "field_violations", "validate"]

VALIDATION_REASON = "INVALID_REQUEST"
_validator = protovalidate.Validator()

# A message-level (CEL) rule is reported at the path of the message it sits on, which for
# ChatRequest itself is the empty path: "top_logprobs without logprobs" would name no field at
# all. Rules that police one field name it here, so the violation points at what to fix
# ("messages[2].tool_call_id", not "messages[2]"). Rules about several fields keep the path of
# their message.
_RULE_FIELDS = {
    "chat_request.top_logprobs_needs_logprobs": "top_logprobs",
    "message.tool_call_id_required": "tool_call_id",
    "message.tool_calls_assistant_only": "tool_calls",
    "response_format.json_schema": "json_schema",
}


def _path(violation: validate_pb2.Violation) -> str:
    parts: list[str] = []
    for element in violation.field.elements:
        name = element.field_name
        subscript = element.WhichOneof("subscript")
        if subscript == "index":
            name += f"[{element.index}]"
        elif subscript == "string_key":
            name += f"[{element.string_key!r}]"
        elif subscript is not None:
            name += f"[{str(getattr(element, subscript)).lower()}]"
        parts.append(name)
    return ".".join(parts)


def _json_values(value: Any, where: str) -> Iterator[tuple[str, float]]:
    """Every number inside a google.protobuf Value/Struct/ListValue, with its JSON path."""
    if isinstance(value, struct_pb2.Struct):
        for key, item in value.fields.items():
            yield from _json_values(item, f"{where}.{key}")
    elif isinstance(value, struct_pb2.ListValue):
        for index, item in enumerate(value.values):
            yield from _json_values(item, f"{where}[{index}]")
    elif isinstance(value, struct_pb2.Value):
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            yield where, value.number_value
        elif kind in ("struct_value", "list_value"):
            yield from _json_values(getattr(value, kind), where)


_JSON_TYPES = frozenset(
    {"google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value"}
)
_json_fields: dict[str, frozenset[str]] = {}


def _fields_reaching_json(descriptor: Descriptor) -> frozenset[str]:
    """Names of the message fields of ``descriptor`` that are, or may contain, JSON values.

    Computed once per message type, so a request without any JSON field costs one dict lookup
    per message visited instead of a walk over every field it holds.
    """
    cached = _json_fields.get(descriptor.full_name)
    if cached is not None:
        return cached
    _json_fields[descriptor.full_name] = frozenset()  # a recursive type reaches itself
    names = set()
    for field in descriptor.fields:
        kind = field.message_type
        if kind is None or kind.GetOptions().map_entry:
            continue
        if kind.full_name in _JSON_TYPES or _fields_reaching_json(kind):
            names.add(field.name)
    found = _json_fields[descriptor.full_name] = frozenset(names)
    return found


def _fields(message: Message, prefix: str) -> Iterator[tuple[str, Message]]:
    for name in _fields_reaching_json(cast(Descriptor, message.DESCRIPTOR)):
        value: Any = getattr(message, name)
        if isinstance(value, Message):
            if message.HasField(name):
                yield prefix + name, value
        else:  # a repeated message field
            for index, item in enumerate(value):
                yield f"{prefix}{name}[{index}]", item


def non_finite_numbers(message: Message, prefix: str = "") -> list[FieldViolation]:
    """JSON fields (Struct, ListValue, Value) holding NaN or an infinity.

    The wire format carries them, but they are not JSON, and protobuf cannot even re-serialize
    them into a Struct, so they are reported here, before any rule engine or conversion runs.
    """
    found: list[FieldViolation] = []
    for path, item in _fields(message, prefix):
        if isinstance(item, struct_pb2.Struct | struct_pb2.ListValue | struct_pb2.Value):
            found += [
                FieldViolation(
                    where, "must be a finite number (NaN and Infinity are not JSON)", "json.finite"
                )
                for where, number in _json_values(item, path)
                if not math.isfinite(number)
            ]
        else:
            found += non_finite_numbers(item, path + ".")
    return found


def field_violations(message: Message) -> list[FieldViolation]:
    """Every rule ``message`` breaks, as dotted field paths with a readable description."""
    found = non_finite_numbers(message)
    if found:
        return found  # protovalidate would fail to serialize the message at all
    for violation in _validator.collect_violations(message):
        # protovalidate reports with its own protobuf runtime; re-read it as a google.protobuf
        # message so the rest of the code uses one API.
        proto = validate_pb2.Violation.FromString(violation.proto.to_binary())
        path = _path(proto)
        if proto.rule_id in _RULE_FIELDS:
            path = ".".join(filter(None, (path, _RULE_FIELDS[proto.rule_id])))
        found.append(FieldViolation(path, proto.message, proto.rule_id))
    return found


def validate(message: Message) -> None:
    """Raise :class:`InvalidArgumentError` naming each bad field, or return quietly."""
    violations = field_violations(message)
    if violations:
        fields = ", ".join(dict.fromkeys(v.field or "(request)" for v in violations))
        raise InvalidArgumentError(
            f"invalid {type(message).DESCRIPTOR.name}: {fields}",
            reason=VALIDATION_REASON,
            domain="routerpc.dev",
            field_violations=violations,
        )
