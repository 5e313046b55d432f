"""Rebuild ``proto/buf/validate/validate.proto`` from the pinned protovalidate wheel.

Our protos import ``buf/validate/validate.proto``, which normally comes from the Buf Schema
Registry (``buf.build/bufbuild/protovalidate``). The registry is unreachable from our build
environment and no PyPI package ships the ``.proto`` source. The pinned ``protovalidate`` wheel
does, however, embed the file's serialized ``FileDescriptorProto`` in its generated module
(``protovalidate/_gen/buf/validate/validate_pb.py``, first argument of ``file_desc(...)``). This
script reads that descriptor (without importing the generated module) and prints equivalent
``.proto`` source, so the vendored file is reproducible from a pinned dependency instead of being
copied by hand.

The embedded descriptor carries no ``source_code_info``, so upstream comments are not restored.

    python scripts/vendor_validate_proto.py -o proto/buf/validate/validate.proto
    python scripts/vendor_validate_proto.py --check  # vendored file compiles to the same descriptor
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.resources
import importlib.util
import math
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    field_mask_pb2,
    message_factory,
    text_encoding,
    timestamp_pb2,
    unknown_fields,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
VENDORED = PROTO_ROOT / "buf" / "validate" / "validate.proto"
DIST = "protovalidate"
GENERATED_MODULE = ("_gen", "buf", "validate", "validate_pb.py")
# Well-known files the descriptor may depend on; their descriptors come from google.protobuf.
WELL_KNOWN = (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2)

INDENT = "  "
# Exclusive upper bound of message field numbers, written as ``max`` in ranges.
MAX_FIELD_NUMBER = 1 << 29
MAX_ENUM_NUMBER = (1 << 31) - 1

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALAR_TYPES = {
    _FDP.TYPE_DOUBLE: "double",
    _FDP.TYPE_FLOAT: "float",
    _FDP.TYPE_INT64: "int64",
    _FDP.TYPE_UINT64: "uint64",
    _FDP.TYPE_INT32: "int32",
    _FDP.TYPE_FIXED64: "fixed64",
    _FDP.TYPE_FIXED32: "fixed32",
    _FDP.TYPE_BOOL: "bool",
    _FDP.TYPE_STRING: "string",
    _FDP.TYPE_BYTES: "bytes",
    _FDP.TYPE_UINT32: "uint32",
    _FDP.TYPE_SFIXED32: "sfixed32",
    _FDP.TYPE_SFIXED64: "sfixed64",
    _FDP.TYPE_SINT32: "sint32",
    _FDP.TYPE_SINT64: "sint64",
}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LABELS = {
    _FDP.LABEL_OPTIONAL: "optional",
    _FDP.LABEL_REQUIRED: "required",
    _FDP.LABEL_REPEATED: "repeated",
}


def generated_module_path() -> Path:
    """Locate protovalidate's generated ``validate_pb.py`` without importing protovalidate."""
    spec = importlib.util.find_spec(DIST)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {DIST!r} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*GENERATED_MODULE)
    if not path.is_file():
        raise SystemExit(f"{path} not found; did protovalidate change its layout?")
    return path


def embedded_descriptor(module: Path) -> bytes:
    """Return the bytes literal passed as the first argument of ``file_desc(...)``."""
    found: list[bytes] = []
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"), str(module))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        arg = node.args[0]
        if name == "file_desc" and isinstance(arg, ast.Constant) and isinstance(arg.value, bytes):
            found.append(arg.value)
    if len(found) != 1:
        raise SystemExit(f"expected one file_desc(b'...') call in {module}, found {len(found)}")
    return found[0]


def build_pool(serialized: bytes) -> descriptor_pool.DescriptorPool:
    """A private pool holding the well-known dependencies and the embedded file."""
    pool = descriptor_pool.DescriptorPool()
    for module in WELL_KNOWN:
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(serialized)
    return pool


def default_json_name(name: str) -> str:
    """protoc's default ``json_name``: drop underscores and upper-case the following letter."""
    out: list[str] = []
    upper_next = False
    for char in name:
        if char == "_":
            upper_next = True
        else:
            out.append(char.upper() if upper_next else char)
            upper_next = False
    return "".join(out)


def quote(value: str | bytes) -> str:
    """A protobuf string literal; strings keep UTF-8 and single quotes (CEL uses them a lot)."""
    if isinstance(value, bytes):
        return '"' + text_encoding.CEscape(value, as_utf8=False) + '"'
    out: list[str] = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def format_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


class ProtoWriter:
    """Turns a ``FileDescriptorProto`` (plus a pool that knows its extensions) into source."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto, pool: Any) -> None:
        if file.syntax not in ("", "proto2", "proto3"):
            raise SystemExit(f"unsupported syntax {file.syntax!r} (editions are not handled)")
        self.file = file
        self.pool = pool
        self.proto3 = file.syntax == "proto3"
        self.lines: list[str] = []
        self.depth = 0
        self.symbols = self._collect_symbols()

    # -- name resolution -------------------------------------------------------------------

    def _collect_symbols(self) -> set[str]:
        """Full names of every package prefix and type visible to the file."""
        symbols: set[str] = set()

        def add_messages(prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
            for message in messages:
                full = f"{prefix}.{message.name}" if prefix else message.name
                symbols.add(full)
                symbols.update(f"{full}.{enum.name}" for enum in message.enum_type)
                add_messages(full, message.nested_type)

        files = [self.file]
        for module in WELL_KNOWN:
            proto = descriptor_pb2.FileDescriptorProto()
            module.DESCRIPTOR.CopyToProto(proto)
            files.append(proto)
        for proto in files:
            parts = proto.package.split(".") if proto.package else []
            symbols.update(".".join(parts[: i + 1]) for i in range(len(parts)))
            prefix = proto.package
            symbols.update(f"{prefix}.{e.name}" if prefix else e.name for e in proto.enum_type)
            add_messages(prefix, proto.message_type)
        return symbols

    def _resolve(self, name: str, scope: str) -> str | None:
        """Resolve a relative type name the way protoc does: innermost scope first."""
        first, _, rest = name.partition(".")
        scope_parts = scope.split(".") if scope else []
        for size in range(len(scope_parts), -1, -1):
            prefix = ".".join(scope_parts[:size])
            candidate = f"{prefix}.{first}" if prefix else first
            if candidate in self.symbols:
                return f"{candidate}.{rest}" if rest else candidate
        return None

    def type_ref(self, full_name: str, scope: str) -> str:
        """The shortest name that still resolves to ``full_name`` from ``scope``."""
        target = full_name.lstrip(".")
        parts = target.split(".")
        for start in range(len(parts) - 1, -1, -1):
            candidate = ".".join(parts[start:])
            if self._resolve(candidate, scope) == target:
                return candidate
        return "." + target

    # -- options ---------------------------------------------------------------------------

    def option_entries(self, options: Message) -> list[tuple[str, str]]:
        """(name, value) pairs for every set option, extensions included, in number order.

        A message-valued extension is split one level, as upstream writes it:
        ``(buf.validate.predefined).cel = {...}`` once per ``cel`` entry.
        """
        full_name = options.DESCRIPTOR.full_name
        cls = message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))
        parsed = cls.FromString(options.SerializeToString())
        if len(unknown_fields.UnknownFieldSet(parsed)):
            raise SystemExit(f"{full_name} has options this script cannot name")
        entries: list[tuple[str, str]] = []
        for field, value in parsed.ListFields():
            if (
                field.is_extension
                and field.type == FieldDescriptor.TYPE_MESSAGE
                and not field.is_repeated
                and value.ListFields()
            ):
                entries.extend(self.sub_entries(f"({field.full_name})", value))
                continue
            name = f"({field.full_name})" if field.is_extension else field.name
            values = value if field.is_repeated else [value]
            entries.extend((name, self.value_text(field, item)) for item in values)
        return entries

    def sub_entries(self, prefix: str, value: Message) -> list[tuple[str, str]]:
        if len(unknown_fields.UnknownFieldSet(value)):
            raise SystemExit(f"{prefix} has unknown fields")
        entries: list[tuple[str, str]] = []
        for field, item in value.ListFields():
            part = f"({field.full_name})" if field.is_extension else field.name
            name = f"{prefix}.{part}"
            items = item if field.is_repeated else [item]
            entries.extend((name, self.value_text(field, element)) for element in items)
        return entries

    def value_text(self, field: FieldDescriptor, value: Any) -> str:
        """An option value: a scalar literal or a text-format ``{ ... }`` aggregate."""
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            body = self.aggregate(value)
            if not body:
                return "{}"
            return "{\n" + "\n".join(INDENT + line for line in body) + "\n}"
        if field.type == FieldDescriptor.TYPE_ENUM:
            enum = field.enum_type
            if enum is None:
                raise SystemExit(f"{field.full_name}: enum type not found")
            return str(enum.values_by_number[value].name)
        if field.type == FieldDescriptor.TYPE_BOOL:
            return "true" if value else "false"
        if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            return quote(value)
        if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            return format_float(value)
        return str(value)

    def aggregate(self, message: Message) -> list[str]:
        """Text-format lines for a message (``name: value`` / ``name { ... }``)."""
        if len(unknown_fields.UnknownFieldSet(message)):
            raise SystemExit(f"{message.DESCRIPTOR.full_name} value has unknown fields")
        lines: list[str] = []
        for field, value in message.ListFields():
            name = f"[{field.full_name}]" if field.is_extension else field.name
            for item in value if field.is_repeated else [value]:
                if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
                    body = self.aggregate(item)
                    lines.append(f"{name} {{")
                    lines.extend(INDENT + line for line in body)
                    lines.append("}")
                else:
                    lines.append(f"{name}: {self.value_text(field, item)}")
        return lines

    def statement_options(self, options: Message, has_options: bool) -> None:
        """``option name = value;`` lines for a file, message, enum or oneof."""
        if not has_options:
            return
        for name, value in self.option_entries(options):
            self.emit(f"option {name} = {value};")

    def compact_options(self, entries: Sequence[tuple[str, str]]) -> str:
        """Bracketed ``[a = b, ...]`` suffix; multi-line when any value spans lines."""
        if not entries:
            return ""
        parts = [f"{name} = {value}" for name, value in entries]
        if len(parts) == 1 or all("\n" not in part for part in parts):
            return " [" + ", ".join(parts) + "]"
        body = ",\n".join(INDENT + part.replace("\n", "\n" + INDENT) for part in parts)
        return " [\n" + body + "\n]"  # emit() indents every line to the current depth

    # -- output ----------------------------------------------------------------------------

    def emit(self, line: str = "") -> None:
        if not line:
            self.lines.append("")
            return
        pad = INDENT * self.depth
        self.lines.append(pad + line.replace("\n", "\n" + pad))

    def open(self, header: str) -> None:
        self.emit(header + " {")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.emit("}")

    def field_entries(self, field: descriptor_pb2.FieldDescriptorProto) -> list[tuple[str, str]]:
        entries: list[tuple[str, str]] = []
        if field.HasField("default_value"):
            entries.append(("default", self.default_value(field)))
        if field.HasField("json_name") and field.json_name != default_json_name(field.name):
            entries.append(("json_name", quote(field.json_name)))
        if field.HasField("options"):
            entries.extend(self.option_entries(field.options))
        return entries

    def default_value(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        value = field.default_value
        if field.type == _FDP.TYPE_STRING:
            return quote(value)
        if field.type == _FDP.TYPE_BYTES:
            return '"' + value + '"'  # already C-escaped in the descriptor
        return value  # numbers, true/false, inf/nan and enum value names are written verbatim

    def field(
        self,
        field: descriptor_pb2.FieldDescriptorProto,
        scope: str,
        *,
        in_oneof: bool = False,
        map_entries: dict[str, descriptor_pb2.DescriptorProto] | None = None,
    ) -> None:
        if field.type == _FDP.TYPE_GROUP:
            raise SystemExit(f"group field {field.name!r} is not supported")
        map_entry = (map_entries or {}).get(field.type_name.lstrip("."))
        if map_entry is not None:
            key, value = map_entry.field
            type_text = f"map<{self.field_type(key, scope)}, {self.field_type(value, scope)}>"
            label = ""
        else:
            type_text = self.field_type(field, scope)
            label = self.label(field, in_oneof)
        prefix = f"{label} " if label else ""
        options = self.compact_options(self.field_entries(field))
        self.emit(f"{prefix}{type_text} {field.name} = {field.number}{options};")

    def label(self, field: descriptor_pb2.FieldDescriptorProto, in_oneof: bool) -> str:
        if in_oneof:
            return ""
        if self.proto3:
            if field.label == _FDP.LABEL_REPEATED:
                return "repeated"
            return "optional" if field.proto3_optional else ""
        return _LABELS[field.label]

    def field_type(self, field: descriptor_pb2.FieldDescriptorProto, scope: str) -> str:
        if field.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_ENUM):
            return self.type_ref(field.type_name, scope)
        return _SCALAR_TYPES[field.type]

    def extensions(
        self, extensions: Sequence[descriptor_pb2.FieldDescriptorProto], scope: str
    ) -> None:
        """``extend`` blocks, one per run of consecutive extensions of the same message."""
        index = 0
        while index < len(extensions):
            extendee = extensions[index].extendee
            self.open(f"extend {self.type_ref(extendee, scope)}")
            while index < len(extensions) and extensions[index].extendee == extendee:
                self.field(extensions[index], scope)
                index += 1
            self.close()
            self.emit()

    def ranges(self, keyword: str, ranges: Sequence[Any], *, inclusive_end: bool) -> None:
        """``reserved``/``extensions`` statements; option-less ranges share one statement."""
        limit = MAX_ENUM_NUMBER if inclusive_end else MAX_FIELD_NUMBER - 1
        plain: list[str] = []
        for item in ranges:
            last = item.end if inclusive_end else item.end - 1
            text = str(item.start)
            if last != item.start:
                text += f" to {'max' if last == limit else last}"
            if keyword == "extensions" and item.HasField("options"):
                options = self.compact_options(self.option_entries(item.options))
                self.emit(f"{keyword} {text}{options};")
            else:
                plain.append(text)
        if plain:
            self.emit(f"{keyword} {', '.join(plain)};")

    def reserved_names(self, names: Sequence[str]) -> None:
        if names:
            self.emit("reserved " + ", ".join(quote(name) for name in names) + ";")

    def enum(self, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self.open(f"enum {enum.name}")
        self.statement_options(enum.options, enum.HasField("options"))
        for value in enum.value:
            options = ""
            if value.HasField("options"):
                options = self.compact_options(self.option_entries(value.options))
            self.emit(f"{value.name} = {value.number}{options};")
        self.ranges("reserved", enum.reserved_range, inclusive_end=True)
        self.reserved_names(enum.reserved_name)
        self.close()

    def message(self, message: descriptor_pb2.DescriptorProto, parent: str) -> None:
        scope = f"{parent}.{message.name}" if parent else message.name
        self.open(f"message {message.name}")
        self.statement_options(message.options, message.HasField("options"))
        map_entries = {
            f"{scope}.{nested.name}": nested
            for nested in message.nested_type
            if nested.options.map_entry
        }
        real_oneofs = {
            field.oneof_index
            for field in message.field
            if field.HasField("oneof_index") and not field.proto3_optional
        }
        done: set[int] = set()
        fields = list(message.field)
        index = 0
        while index < len(fields):
            field = fields[index]
            oneof = field.oneof_index if field.HasField("oneof_index") else None
            if oneof is None or oneof not in real_oneofs:
                self.field(field, scope, map_entries=map_entries)
                index += 1
                continue
            if oneof in done:
                raise SystemExit(f"{scope}: fields of oneof #{oneof} are not contiguous")
            done.add(oneof)
            decl = message.oneof_decl[oneof]
            self.open(f"oneof {decl.name}")
            self.statement_options(decl.options, decl.HasField("options"))
            while (
                index < len(fields)
                and fields[index].HasField("oneof_index")
                and fields[index].oneof_index == oneof
            ):
                self.field(fields[index], scope, in_oneof=True)
                index += 1
            self.close()
        for enum in message.enum_type:
            self.emit()
            self.enum(enum)
        for nested in message.nested_type:
            if not nested.options.map_entry:
                self.emit()
                self.message(nested, scope)
        if message.extension:
            self.emit()
            self.extensions(message.extension, scope)
            self.lines.pop()  # extensions() leaves a trailing blank line
        self.ranges("extensions", message.extension_range, inclusive_end=False)
        self.ranges("reserved", message.reserved_range, inclusive_end=False)
        self.reserved_names(message.reserved_name)
        self.close()

    def render(self, header: Sequence[str]) -> str:
        file = self.file
        self.lines.extend(f"// {line}".rstrip() for line in header)
        self.emit()
        self.emit(f'syntax = "{file.syntax or "proto2"}";')
        self.emit()
        if file.package:
            self.emit(f"package {file.package};")
            self.emit()
        public = set(file.public_dependency)
        weak = set(file.weak_dependency)
        for number, dependency in enumerate(file.dependency):
            kind = "public " if number in public else "weak " if number in weak else ""
            self.emit(f"import {kind}{quote(dependency)};")
        if file.dependency:
            self.emit()
        if file.HasField("options"):
            self.statement_options(file.options, True)
            self.emit()
        self.extensions(file.extension, file.package)
        for message in file.message_type:
            self.message(message, file.package)
            self.emit()
        for enum in file.enum_type:
            self.enum(enum)
            self.emit()
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n"


def header_lines(version: str) -> list[str]:
    return [
        f"Derived from the protovalidate {version} wheel (PyPI): buf/validate/validate.proto as",
        "embedded in protovalidate/_gen/buf/validate/validate_pb.py.",
        "",
        "Copyright 2023-2026 Buf Technologies, Inc.",
        "Licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).",
        "",
        "DO NOT EDIT. Regenerate with: python scripts/vendor_validate_proto.py -o",
        "proto/buf/validate/validate.proto",
        "The embedded descriptor has no source info, so upstream comments are not included.",
    ]


def load() -> tuple[bytes, str]:
    return embedded_descriptor(generated_module_path()), importlib.metadata.version(DIST)


def render(serialized: bytes, version: str) -> str:
    file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    return ProtoWriter(file, build_pool(serialized)).render(header_lines(version))


def compile_descriptor(proto_root: Path, relative: str) -> descriptor_pb2.FileDescriptorProto:
    """Compile ``relative`` with grpc_tools' bundled protoc and return its descriptor."""
    include = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_root}", f"-I{include}"]
        command += [f"--descriptor_set_out={out}", str(proto_root / relative)]
        if subprocess.run(command, check=False).returncode != 0:
            raise SystemExit(f"protoc failed on {relative}")
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (compiled,) = (f for f in descriptor_set.file if f.name == relative)
    return compiled


def check(serialized: bytes, path: Path) -> int:
    """0 when ``path`` compiles to exactly the embedded descriptor (source info ignored)."""
    expected = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    relative = "buf/validate/validate.proto"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / relative).parent.mkdir(parents=True)
        (root / relative).write_bytes(path.read_bytes())
        actual = compile_descriptor(root, relative)
    for proto in (expected, actual):
        proto.ClearField("source_code_info")
    if actual.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    ):
        print(f"{path}: compiles to the descriptor embedded in {DIST} (same canonical bytes)")
        return 0
    print(f"{path}: compiled descriptor differs from the embedded one", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument(
        "--check",
        nargs="?",
        const=VENDORED,
        type=Path,
        metavar="PROTO",
        help=f"check that PROTO (default: {VENDORED.relative_to(ROOT)}) compiles to the embedded "
        "descriptor",
    )
    args = parser.parse_args(argv)
    serialized, version = load()
    if args.check is not None:
        return check(serialized, args.check)
    text = render(serialized, version)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
