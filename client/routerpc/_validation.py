"""One set of validation rules for client and gateway: the protovalidate annotations in the proto.

The builder runs these rules in ``build()`` and the gateway runs them before any I/O, so a request
the gateway would reject never leaves the caller, and both report the same field paths.

The rules run in two places, for speed, with one verdict: protovalidate's native engine checks
a protobuf-py twin of the message (``_twins``), and the contract's message-level CEL rules, which
cost the engine most, are evaluated by one Python walk (``_message_rules``) that also finds
NaN and infinities in JSON fields. Violations come back in the engine's own order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import protovalidate
from google.protobuf import message_factory, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from routerpc._errors import FieldViolation, InvalidArgumentError
from routerpc._gen.buf.validate import validate_pb2
from routerpc._message_rules import MessageRule, python_rules
from routerpc._quick_check import JSON_TYPES, passes
from routerpc._twins import twin_of

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


def _subscript(key: Any) -> str:
    """A list index or map key as a path writes it: ``[2]``, ``['name']``, ``[true]``."""
    return f"[{key!r}]" if isinstance(key, str) else f"[{str(key).lower()}]"


def _path(violation: validate_pb2.Violation) -> str:
    parts: list[str] = []
    for element in violation.field.elements:
        subscript = element.WhichOneof("subscript")
        suffix = "" if subscript is None else _subscript(getattr(element, subscript))
        parts.append(element.field_name + suffix)
    return ".".join(parts)


def _at_rule_field(path: str, rule_id: str) -> str:
    """``path`` extended by the field a message-level rule polices (``_RULE_FIELDS``)."""
    field = _RULE_FIELDS.get(rule_id)
    return path if field is None else ".".join(filter(None, (path, field)))


def _reported(violation: validate_pb2.Violation) -> FieldViolation:
    """An engine violation as the field path, text and reason callers see."""
    return FieldViolation(
        _at_rule_field(_path(violation), violation.rule_id), violation.message, violation.rule_id
    )


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


_NOT_JSON = "must be a finite number (NaN and Infinity are not JSON)"

# Where a violation sits, for ordering: per path element, the field's position in its message's
# declaration and its subscript (-1 for the field itself, the index of a list item, 0 for any
# map entry, whose order the engine keeps).
_Key = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class _Field:
    position: int  # in its message's declaration
    shape: str  # "single", "list" or "map" (a map of messages)
    plan: _Plan | None  # the message type's own plan; None for a JSON value


@dataclass(slots=True)
class _Plan:
    """What the Python walk does on one message type: the message-level rules evaluated here
    (``_message_rules``) and the fields worth entering (JSON values, or messages whose type, or
    a type inside it, has such rules). Built once per type."""

    rules: tuple[MessageRule, ...]
    fields: dict[str, _Field]


_plans: dict[str, _Plan] = {}


def _item_type(field: FieldDescriptor) -> Descriptor | None:
    """The message type of one item of ``field`` (of its values, for a map); None for scalars."""
    kind = field.message_type
    if kind is not None and kind.GetOptions().map_entry:
        return kind.fields_by_name["value"].message_type
    return kind


def _plan(descriptor: Descriptor) -> _Plan:
    found = _plans.get(descriptor.full_name)
    if found is not None:
        return found
    plan = _plans[descriptor.full_name] = _Plan(tuple(python_rules(descriptor)), {})
    for field in descriptor.fields:  # a recursive type sees its own plan, still being filled
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            shape = "map"
        else:
            shape = "list" if field.is_repeated else "single"
        kind = _item_type(field)
        if kind is None:
            continue
        if kind.full_name in JSON_TYPES:
            plan.fields[field.name] = _Field(field.index, shape, None)
        else:
            inner = _plan(kind)
            if inner.rules or inner.fields or inner is plan:
                plan.fields[field.name] = _Field(field.index, shape, inner)
    return plan


_At: TypeAlias = "tuple[_At | None, str, int, int, Any] | None"
"""Where the walk is, as a chain ``(parent, field name, position, ordering subscript, path
subscript)``; ``None`` is the request itself. The path text and ordering key are made from it
only for a violation: the walk visits every message of a conversation and finds none in almost
every request."""


def _path_of(at: _At) -> str:
    parts = []
    while at is not None:
        at, name, _, _, subscript = at
        parts.append(name if subscript is None else name + _subscript(subscript))
    return ".".join(reversed(parts))


def _key_of(at: _At) -> _Key:
    key = []
    while at is not None:
        at, _, position, sub, _ = at
        key.append((position, sub))
    return tuple(reversed(key))


class _Walk:
    """One pass over the set fields a plan names: NaN and infinities in JSON values, and the
    message-level rules evaluated in Python."""

    def __init__(self) -> None:
        self.not_json: list[FieldViolation] = []
        self.broken: list[tuple[_Key, FieldViolation]] = []

    def message(self, message: Any, plan: _Plan, at: _At) -> None:
        for rule in plan.rules:
            if not rule.holds(message):
                where = _at_rule_field(_path_of(at), rule.rule_id)
                self.broken.append((_key_of(at), FieldViolation(where, rule.message, rule.rule_id)))
        fields = plan.fields
        if not fields:
            return
        for descriptor, value in message.ListFields():
            field = fields.get(descriptor.name)
            if field is None:
                continue
            name, position = descriptor.name, field.position
            if field.shape == "single":
                self.item(value, field, (at, name, position, -1, None))
            elif field.shape == "list":
                for index, item in enumerate(value):
                    self.item(item, field, (at, name, position, index, index))
            else:
                for map_key, item in value.items():
                    self.item(item, field, (at, name, position, 0, map_key))

    def item(self, value: Any, field: _Field, at: _At) -> None:
        if field.plan is not None:
            self.message(value, field.plan, at)
            return
        self.not_json += [
            FieldViolation(where, _NOT_JSON, "json.finite")
            for where, number in _json_values(value, _path_of(at))
            if not math.isfinite(number)
        ]


def _engine_key(root: Descriptor, violation: validate_pb2.Violation) -> _Key:
    key = []
    descriptor: Descriptor | None = root
    for element in violation.field.elements:
        if descriptor is None:
            break
        field = descriptor.fields_by_number.get(element.field_number)
        if field is None:
            # A oneof rule names the oneof, which has no number; the engine checks oneofs after
            # the message's own rules and before its fields.
            key.append((-1, -1))
            break
        subscript = element.WhichOneof("subscript")
        sub = -1 if subscript is None else element.index if subscript == "index" else 0
        key.append((field.index, sub))
        descriptor = _item_type(field)
    return tuple(key)


def field_violations(message: Message) -> list[FieldViolation]:
    """Every rule ``message`` breaks, as dotted field paths with a readable description, in the
    engine's order: depth first, a message's own rules before its fields'."""
    if passes(message):
        return []  # proven valid by the compiled check (``_quick_check``)
    return exact_violations(message)


def exact_violations(message: Message) -> list[FieldViolation]:
    """:func:`field_violations` without the quick check: the Python walk and the engine."""
    root = cast(Descriptor, message.DESCRIPTOR)
    walk = _Walk()
    walk.message(message, _plan(root), None)
    if walk.not_json:
        # Not JSON, and protobuf cannot even re-serialize them into a Struct: reported on
        # their own, before the engine or any conversion sees the message.
        return walk.not_json
    found = walk.broken
    ours = len(found)
    for violation in _validator.collect_violations(twin_of(message)):
        # protovalidate reports with its own protobuf runtime; re-read it as a google.protobuf
        # message so the rest of the code uses one API.
        proto = validate_pb2.Violation.FromString(violation.proto.to_binary())
        found.append((_engine_key(root, proto), _reported(proto)))
    if ours and len(found) > 1:
        found.sort(key=lambda pair: pair[0])  # stable: same place, engine's order kept
    return [violation for _, violation in found]


def prepare(descriptors: Iterable[Descriptor]) -> list[str]:
    """Do the first-use work of validating these message types now: build their twins and let
    the engine compile their rules (10-40 ms per request type, paid otherwise by the first call
    of each). Returns the full names prepared."""
    names = []
    for descriptor in descriptors:
        field_violations(message_factory.GetMessageClass(descriptor)())
        names.append(descriptor.full_name)
    return names


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
