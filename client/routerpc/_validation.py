"""One set of validation rules for client and gateway: the protovalidate annotations in the proto.

The builder runs these rules in ``build()`` and the gateway runs them before any I/O, so a request
the gateway would reject never leaves the caller, and both report the same field paths.
"""

from __future__ import annotations

import protovalidate
from google.protobuf.message import Message

from routerpc._errors import FieldViolation, InvalidArgumentError
from routerpc._gen.buf.validate import validate_pb2

__all__ = ["VALIDATION_REASON", "field_violations", "validate"]

VALIDATION_REASON = "INVALID_REQUEST"
_validator = protovalidate.Validator()


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


def field_violations(message: Message) -> list[FieldViolation]:
    """Every rule ``message`` breaks, as dotted field paths with a readable description."""
    found = []
    for violation in _validator.collect_violations(message):
        # protovalidate reports with its own protobuf runtime; re-read it as a google.protobuf
        # message so the rest of the code uses one API.
        proto = validate_pb2.Violation.FromString(violation.proto.to_binary())
        found.append(FieldViolation(_path(proto), proto.message, proto.rule_id))
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
