"""A quick yes-or-unsure check of the contract's rules, compiled into Python from its annotations.

Why: almost every request is valid, and proving that was the largest part of the gateway's own
work per call (the twin's parse, the engine, and the walk over message rules and JSON values).
This check walks the message once, with each field's rules compiled into plain comparisons, and
answers either "every rule holds" or "not sure". Only "not sure" pays for the exact path
(``_validation``), which names the violations in the engine's words and order.

How it stays the contract: the rules are read from the same ``buf.validate`` annotations the
engine reads, and only rule kinds whose meaning is plain are compiled (lengths, bounds, ``in``
and ``not_in``, defined enums, item counts, uniqueness, required fields and oneofs, and anchored
patterns made of ASCII classes, whose meaning is the same in Python's ``re`` and in RE2). Any
other rule (a field CEL expression, a well-known string format, an ``ignore`` setting, a
message rule ``_message_rules`` does not evaluate) makes its field, or its whole message type,
"not sure": slower, never wrong. A differential test holds the verdict to protovalidate's on
every boundary of every rule in the contract; another test fails when a rule stops compiling.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from routerpc._gen.buf.validate import validate_pb2
from routerpc._message_rules import python_rules

__all__ = ["JSON_TYPES", "passes", "unsure_rules"]

_Check = Callable[[Any], bool]

JSON_TYPES = frozenset(
    {"google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value"}
)
"""The message types that hold JSON values, whose numbers must be finite."""
_TYPED_RULES = frozenset(
    f.name for f in validate_pb2.FieldRules.DESCRIPTOR.oneofs_by_name["type"].fields
)
"""A field's rules of its type (``string``, ``repeated``...); the rest of ``FieldRules`` is a
CEL expression, an ignore setting or ``required``."""

# Anchored patterns built from ASCII literals and bracket classes of ASCII letters, digits and a
# few punctuation marks: for these, Python's fullmatch and RE2's search agree (no \d, \s or
# \w, whose classes differ; no unescaped dot; RE2's $ never matches before a final newline, and
# fullmatch does not either).
_SIMPLE_ELEMENT = r"(?:\[[A-Za-z0-9_.:~/-]+\]|[A-Za-z0-9_/:~-])(?:[+*?]|\{\d+(?:,\d*)?\})?"
_SIMPLE_PATTERN = re.compile(rf"\^(?:{_SIMPLE_ELEMENT})+\$")


def _unsure(value: Any) -> bool:
    return False


def _finite_json(value: Any) -> bool:
    """Whether a google.protobuf Struct, ListValue or Value holds no NaN or infinity."""
    if isinstance(value, struct_pb2.Struct):
        return all(_finite_json(item) for item in value.fields.values())
    if isinstance(value, struct_pb2.ListValue):
        return all(_finite_json(item) for item in value.values)
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return math.isfinite(value.number_value)
    if kind in ("struct_value", "list_value"):
        return _finite_json(getattr(value, kind))
    return True


@dataclass(eq=False)
class _TypeCheck:
    """What the check does on one message type. ``checks`` run on the fields a message lists
    (set ones); ``needed`` run on fields whose default value breaks a rule, set or not;
    ``required`` fields and oneofs must be set; ``rules`` are the message-level rules."""

    full_name: str
    checks: dict[FieldDescriptor, _Check] = field(default_factory=dict)
    needed: list[tuple[str, _Check]] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    oneofs: list[str] = field(default_factory=list)
    rules: list[_Check] = field(default_factory=list)
    opaque: bool = False
    unsure: list[str] = field(default_factory=list)  # rules not compiled, for the tests

    def is_trivial(self) -> bool:
        return not (
            self.checks or self.needed or self.required or self.oneofs or self.rules or self.opaque
        )

    def passes(self, message: Any) -> bool:
        if self.opaque:
            return False
        checks = self.checks
        if checks:
            for descriptor, value in message.ListFields():
                check = checks.get(descriptor)  # by the descriptor: its name is a new str
                if check is not None and not check(value):
                    return False
        for name, check in self.needed:
            if not check(getattr(message, name)):
                return False
        for holds in self.rules:
            if not holds(message):
                return False
        for name in self.required:
            if not message.HasField(name):
                return False
        return not self.oneofs or all(message.WhichOneof(name) is not None for name in self.oneofs)


class _Compiler:
    """Builds the checks of a message type and of every type inside it."""

    def __init__(self, known: dict[str, _TypeCheck]) -> None:
        self.known = known
        self.built: dict[str, _TypeCheck] = {}
        self.building: set[str] = set()

    def type_check(self, descriptor: Descriptor) -> _TypeCheck:
        name = descriptor.full_name
        found = self.known.get(name) or self.built.get(name)
        if found is not None:
            return found  # a recursive type sees its own check, still being filled
        check = self.built[name] = _TypeCheck(name)
        self.building.add(name)
        self._message_rules(descriptor, check)
        for oneof in descriptor.oneofs:
            options = oneof.GetOptions()
            if options.HasExtension(validate_pb2.oneof):
                rules = options.Extensions[validate_pb2.oneof]
                if rules.required:
                    check.oneofs.append(oneof.name)
        for field_descriptor in descriptor.fields:
            self._field(field_descriptor, check)
        self.building.discard(name)
        return check

    def _message_rules(self, descriptor: Descriptor, check: _TypeCheck) -> None:
        options = descriptor.GetOptions()
        if not options.HasExtension(validate_pb2.message):
            return
        rules = options.Extensions[validate_pb2.message]
        ours = python_rules(descriptor)
        check.rules = [rule.holds for rule in ours]
        taken = {rule.rule_id for rule in ours}
        left = [rule.id for rule in rules.cel if rule.id not in taken]
        other = [f.name for f, _ in rules.ListFields() if f.name != "cel"]
        if left or other:
            check.opaque = True
            check.unsure += [f"{descriptor.full_name}: {name}" for name in left + other]

    def _field(self, descriptor: FieldDescriptor, check: _TypeCheck) -> None:
        options = descriptor.GetOptions()
        rules = (
            options.Extensions[validate_pb2.field]
            if options.HasExtension(validate_pb2.field)
            else None
        )
        where = descriptor.full_name
        compiled = self._value_check(descriptor, rules, check, where)
        if rules is not None and rules.required:
            if descriptor.has_presence and not descriptor.is_repeated:
                check.required.append(descriptor.name)
            else:
                check.unsure.append(f"{where}: required")
                compiled = _unsure
        if compiled is None:
            return
        if not descriptor.has_presence and not compiled(_default(descriptor)):
            check.needed.append((descriptor.name, compiled))
        else:
            check.checks[descriptor] = compiled

    def _value_check(
        self,
        descriptor: FieldDescriptor,
        rules: validate_pb2.FieldRules | None,
        owner: _TypeCheck,
        where: str,
    ) -> _Check | None:
        """The check of this field's whole value (the list or map, for those); None when
        nothing can be wrong with it."""
        if rules is not None and self._leftover(rules, {*_TYPED_RULES, "required"}, owner, where):
            return _unsure
        kind = None if rules is None else rules.WhichOneof("type")
        entry = descriptor.message_type
        if entry is not None and entry.GetOptions().map_entry:
            if kind not in (None, "map"):
                return self._unsure(owner, where, str(kind))
            return self._map(None if rules is None else rules.map, entry, owner, where)
        if descriptor.is_repeated:
            item = self._single(descriptor, None, owner, where)
            if kind == "repeated":
                assert rules is not None
                return self._repeated(rules.repeated, descriptor, item, owner, where)
            if kind is not None:
                return self._unsure(owner, where, kind)
            return None if item is None else _all_items(item)
        return self._single(descriptor, rules, owner, where)

    def _single(
        self,
        descriptor: FieldDescriptor,
        rules: validate_pb2.FieldRules | None,
        owner: _TypeCheck,
        where: str,
    ) -> _Check | None:
        """The check of one value of this field (one item of a list or map)."""
        message_type = descriptor.message_type
        if message_type is not None:
            if rules is not None and rules.WhichOneof("type") is not None:
                return self._unsure(owner, where, str(rules.WhichOneof("type")))
            if message_type.full_name in JSON_TYPES:
                return _finite_json
            inner = self.type_check(message_type)
            if inner.full_name in self.building:  # not filled yet: it may well have rules
                return inner.passes
            return None if inner.is_trivial() else inner.passes
        if rules is None or rules.WhichOneof("type") is None:
            return None
        kind = rules.WhichOneof("type")
        scalar = getattr(rules, str(kind))
        if kind == "string" and descriptor.type == FieldDescriptor.TYPE_STRING:
            return self._string(scalar, owner, where)
        if kind == "enum" and descriptor.type == FieldDescriptor.TYPE_ENUM:
            return self._enum(scalar, descriptor, owner, where)
        if (kind, descriptor.type) in _NUMBER_KINDS:
            return self._number(scalar, owner, where)
        return self._unsure(owner, where, str(kind))

    @staticmethod
    def _unsure(owner: _TypeCheck, where: str, what: str) -> _Check:
        owner.unsure.append(f"{where}: {what}")
        return _unsure

    @staticmethod
    def _leftover(rules: Message, known: Iterable[str], owner: _TypeCheck, where: str) -> bool:
        """Records the rules set in ``rules`` that are not in ``known`` (for a field's rules: a
        CEL expression, an ignore setting and the like); True if there are any."""
        other = [f.name for f, _ in rules.ListFields() if f.name not in known]
        owner.unsure += [f"{where}: {name}" for name in other]
        return bool(other)

    def _string(self, rules: validate_pb2.StringRules, owner: _TypeCheck, where: str) -> _Check:
        known = ("min_len", "max_len", "in", "not_in", "pattern")
        if self._leftover(rules, known, owner, where):
            return _unsure
        pattern = rules.pattern if rules.HasField("pattern") else None
        if pattern is not None and not _SIMPLE_PATTERN.fullmatch(pattern):
            return self._unsure(owner, where, f"pattern {pattern!r}")
        low = rules.min_len if rules.HasField("min_len") else 0
        high = rules.max_len if rules.HasField("max_len") else None
        allowed = frozenset(getattr(rules, "in")) or None
        refused = frozenset(rules.not_in)
        matches = None if pattern is None else re.compile(pattern, re.ASCII).fullmatch

        def check(value: str) -> bool:
            size = len(value)
            return (
                size >= low
                and (high is None or size <= high)
                and (allowed is None or value in allowed)
                and value not in refused
                and (matches is None or matches(value) is not None)
            )

        return check

    def _enum(
        self,
        rules: validate_pb2.EnumRules,
        descriptor: FieldDescriptor,
        owner: _TypeCheck,
        where: str,
    ) -> _Check:
        if self._leftover(rules, ("defined_only", "in", "not_in"), owner, where):
            return _unsure
        allowed = set(getattr(rules, "in")) or None
        if rules.defined_only:
            assert descriptor.enum_type is not None
            defined = {value.number for value in descriptor.enum_type.values}
            allowed = defined if allowed is None else allowed & defined
        refused = frozenset(rules.not_in)
        if allowed is None:
            return lambda value: value not in refused
        permitted = frozenset(allowed - refused)
        return permitted.__contains__

    def _number(self, rules: Any, owner: _TypeCheck, where: str) -> _Check:
        if self._leftover(rules, ("gte", "lte", "finite"), owner, where):
            return _unsure
        low = rules.gte if rules.HasField("gte") else None
        high = rules.lte if rules.HasField("lte") else None
        if low is not None and high is not None and high < low:
            return self._unsure(owner, where, "an exclusive range")
        finite = bool(getattr(rules, "finite", False))

        def check(value: Any) -> bool:
            if finite and not math.isfinite(value):
                return False
            return (low is None or value >= low) and (high is None or value <= high)

        return check

    def _repeated(
        self,
        rules: validate_pb2.RepeatedRules,
        descriptor: FieldDescriptor,
        item: _Check | None,
        owner: _TypeCheck,
        where: str,
    ) -> _Check:
        if rules.HasField("items"):
            if self._leftover(rules.items, _TYPED_RULES, owner, where):
                item = _unsure
            else:
                item = self._single(descriptor, rules.items, owner, where)
        if self._leftover(rules, ("min_items", "max_items", "unique", "items"), owner, where):
            return _unsure
        if rules.unique and descriptor.message_type is not None:
            return self._unsure(owner, where, "unique messages")
        low = rules.min_items
        high = rules.max_items if rules.HasField("max_items") else None
        unique = rules.unique

        def check(values: Any) -> bool:
            values = values[:]  # a list: walked once here, not once per question below
            size = len(values)
            if size < low or (high is not None and size > high):
                return False
            if unique and len(set(values)) != size:
                return False
            if item is not None:
                for value in values:
                    if not item(value):
                        return False
            return True

        return check

    def _map(
        self, rules: validate_pb2.MapRules | None, entry: Descriptor, owner: _TypeCheck, where: str
    ) -> _Check | None:
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        keys = self._single(key, None, owner, where)
        values = self._single(value, None, owner, where)
        low, high = 0, None
        if rules is not None:
            known = ("min_pairs", "max_pairs", "keys", "values")
            if self._leftover(rules, known, owner, where):
                return _unsure
            if rules.HasField("keys"):
                beyond = self._leftover(rules.keys, _TYPED_RULES, owner, where)
                keys = _unsure if beyond else self._single(key, rules.keys, owner, where)
            if rules.HasField("values"):
                beyond = self._leftover(rules.values, _TYPED_RULES, owner, where)
                values = _unsure if beyond else self._single(value, rules.values, owner, where)
            low = rules.min_pairs
            high = rules.max_pairs if rules.HasField("max_pairs") else None
        pairs = _map_items(keys, values)
        if low == 0 and high is None:
            return pairs

        def check(mapping: Any) -> bool:
            size = len(mapping)
            if size < low or (high is not None and size > high):
                return False
            return pairs is None or pairs(mapping)

        return check


_NUMBER_KINDS = frozenset(
    {
        ("double", FieldDescriptor.TYPE_DOUBLE),
        ("float", FieldDescriptor.TYPE_FLOAT),
        ("int32", FieldDescriptor.TYPE_INT32),
        ("int64", FieldDescriptor.TYPE_INT64),
        ("uint32", FieldDescriptor.TYPE_UINT32),
        ("uint64", FieldDescriptor.TYPE_UINT64),
    }
)


def _all_items(item: _Check) -> _Check:
    return lambda values: all(item(value) for value in values)


def _map_items(keys: _Check | None, values: _Check | None) -> _Check | None:
    if keys is None and values is None:
        return None

    def check(mapping: Any) -> bool:
        for key, value in mapping.items():
            if keys is not None and not keys(key):
                return False
            if values is not None and not values(value):
                return False
        return True

    return check


def _default(descriptor: FieldDescriptor) -> Any:
    """The value a field without presence reads as when it is not set."""
    if descriptor.is_repeated:
        entry = descriptor.message_type
        return {} if entry is not None and entry.GetOptions().map_entry else []
    return descriptor.default_value


_checks: dict[str, _TypeCheck] = {}
_compiling = threading.Lock()  # a type is published only once it and all inside it are built


def _type_check(descriptor: Descriptor) -> _TypeCheck:
    found = _checks.get(descriptor.full_name)
    if found is None:
        with _compiling:
            compiler = _Compiler(_checks)
            found = compiler.type_check(descriptor)
            _checks.update(compiler.built)
    return found


_by_class: dict[type, _TypeCheck] = {}


def passes(message: Message) -> bool:
    """True when ``message`` meets every rule of its type (and of every message inside it);
    False when it may not, and only the exact path can tell."""
    check = _by_class.get(type(message))  # by class: reading DESCRIPTOR.full_name costs more
    if check is None:
        check = _by_class[type(message)] = _type_check(cast(Descriptor, message.DESCRIPTOR))
    return check.passes(message)


def unsure_rules(descriptor: Descriptor) -> list[str]:
    """The rules of ``descriptor`` and the types inside it that this check leaves to the exact
    path; empty when it decides every request of this type on its own."""
    _type_check(descriptor)
    seen: set[str] = set()
    found: list[str] = []

    def visit(kind: Descriptor) -> None:
        if kind.full_name in seen:
            return
        seen.add(kind.full_name)
        found.extend(_checks[kind.full_name].unsure)
        for item in kind.fields:
            if item.message_type is not None and item.message_type.full_name in _checks:
                visit(item.message_type)

    visit(descriptor)
    return found
