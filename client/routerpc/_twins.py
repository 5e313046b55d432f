"""protobuf-py twins of the generated google.protobuf messages, for the validator.

protovalidate's engine is native (Rust), but it reads a google.protobuf message one field at a
time through Python, which made validation the largest per-call cost of the gateway. It reads
a message of the protobuf-py runtime (the one protovalidate itself is built on) natively, about
three times faster even counting the extra parse. So each generated message type gets a twin
class there, built at first use from the very same descriptors (the contract stays the single
source of truth), and a message is validated as its twin: ``twin_of(message)``.

The twins are plain classes handed to protobuf-py's ``file_desc``, the entry point its own
generated modules use; well-known types and protovalidate's rules come from their packages.
Their descriptors lack the message-level rules ``_message_rules`` evaluates in Python (and only
those), so the engine does not evaluate them a second time.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, cast

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.message import Message as GoogleMessage
from protobuf import DescFile
from protobuf import Message as TwinMessage
from protobuf._codegen import file_desc

from routerpc._gen.buf.validate import validate_pb2
from routerpc._message_rules import taken_over

__all__ = ["twin_class", "twin_of"]

_files: dict[str, DescFile] = {}
_classes: dict[str, type[TwinMessage]] = {}
_building = threading.Lock()  # the sync client may validate from several threads at once


def _shipped(name: str) -> DescFile | None:
    """A file protobuf-py or protovalidate already ships (well-known types, validate.proto)."""
    if name.startswith("google/protobuf/"):
        module = "protobuf.wkt." + name.removesuffix(".proto").replace("/", ".") + "_pb"
    elif name == "buf/validate/validate.proto":
        module = "protovalidate._gen.buf.validate.validate_pb"
    else:
        return None
    return cast(DescFile, importlib.import_module(module).desc())


def _stubs(messages: Any, prefix: str, into: dict[str, type[TwinMessage]]) -> None:
    for message in messages:
        if message.GetOptions().map_entry:
            continue  # map entries are no classes of their own
        into[prefix + message.name] = type(message.name, (TwinMessage,), {})
        _stubs(message.nested_types, f"{prefix}{message.name}.", into)


def _drop_taken_over(messages: Any, prefix: str) -> None:
    for message in messages:
        name = prefix + message.name
        options = message.options
        if options.HasExtension(validate_pb2.message):
            rules = options.Extensions[validate_pb2.message].cel
            kept = [r for r in rules if not taken_over(name, r.id, r.expression)]
            del rules[:]
            rules.extend(kept)
        _drop_taken_over(message.nested_type, name + ".")


def _file(descriptor: FileDescriptor) -> DescFile:
    found = _files.get(descriptor.name) or _shipped(descriptor.name)
    if found is None:
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        _drop_taken_over(proto.message_type, f"{proto.package}." if proto.package else "")
        stubs: dict[str, type[TwinMessage]] = {}
        _stubs(descriptor.message_types_by_name.values(), "", stubs)
        found = file_desc(
            proto.SerializeToString(), [_file(d) for d in descriptor.dependencies], stubs
        )
        package = f"{descriptor.package}." if descriptor.package else ""
        _classes.update({package + name: stub for name, stub in stubs.items()})
    _files[descriptor.name] = found
    return found


def twin_class(descriptor: Descriptor) -> type[TwinMessage]:
    """The protobuf-py class of the message type ``descriptor`` (built once per file)."""
    found = _classes.get(descriptor.full_name)
    if found is None:
        with _building:
            _file(descriptor.file)
        found = _classes[descriptor.full_name]
    return found


def twin_of(message: GoogleMessage) -> TwinMessage:
    """``message`` as its protobuf-py twin: the same bytes, read by the other runtime."""
    kind = cast(Descriptor, message.DESCRIPTOR)
    return twin_class(kind).from_binary(message.SerializeToString())
