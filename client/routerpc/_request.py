"""``ChatRequest``: what ``ChatRequestBuilder.build()`` returns.

A generated protobuf message refuses assignment to a message field (``request.provider = cfg``
raises ``AttributeError``), yet that assignment is how callers attach routing preferences to a
built request. This class is a thin mutable view over the ``routerpc.v1.ChatRequest`` proto that
accepts it: assigning a message field copies the value in, assigning ``None`` clears it, and every
other attribute reads and writes the proto directly. There is no second model to drift from the
proto; ``.proto`` is the message itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from routerpc import pb
from routerpc._validation import validate

__all__ = ["ChatRequest"]

_FIELDS = pb.ChatRequest.DESCRIPTOR.fields_by_name


class ChatRequest:
    """A chat request, ready to send; mutate it like the proto it wraps."""

    __slots__ = ("_proto",)
    _proto: pb.ChatRequest

    def __init__(self, proto: pb.ChatRequest | None = None) -> None:
        object.__setattr__(self, "_proto", proto if proto is not None else pb.ChatRequest())

    @property
    def proto(self) -> pb.ChatRequest:
        """The underlying ``routerpc.v1.ChatRequest`` message (shared, not copied)."""
        return self._proto

    @property
    def provider(self) -> pb.ProviderConfig:
        """Provider routing preferences."""
        return self._proto.provider

    @provider.setter
    def provider(self, value: pb.ProviderConfig | None) -> None:
        _assign(self._proto, "provider", value)

    @property
    def model(self) -> str:
        """Model slug."""
        model: str = self._proto.model
        return model

    @model.setter
    def model(self, value: str) -> None:
        self._proto.model = value

    def validate(self) -> None:
        """Check the gateway's rules locally; raise ``InvalidArgumentError`` naming the fields."""
        validate(self._proto)

    def copy(self) -> ChatRequest:
        """An independent deep copy."""
        clone = pb.ChatRequest()
        clone.CopyFrom(self._proto)
        return ChatRequest(clone)

    def __getattr__(self, name: str) -> Any:
        # Only fields and proto methods are delegated: a private or dunder name (``_proto`` before
        # ``__init__`` ran, ``__deepcopy__``, ``__reduce_ex__`` ...) must not reach the proto, or
        # copy and pickle recurse forever or hand back a bare proto instead of a ChatRequest.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._proto, name)

    def __copy__(self) -> ChatRequest:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> ChatRequest:
        return self.copy()

    def __reduce__(self) -> tuple[type[ChatRequest], tuple[pb.ChatRequest]]:
        return (ChatRequest, (self._proto,))

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        elif name in _FIELDS:
            _assign(self._proto, name, value)
        else:
            raise AttributeError(f"ChatRequest has no field {name!r}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChatRequest):
            other = other._proto
        if isinstance(other, pb.ChatRequest):
            return bool(self._proto == other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChatRequest<{self._proto}>".replace("\n", " ").strip()


def _assign(message: Message, name: str, value: Any) -> None:
    """Set field ``name`` the way Python assignment reads: replace the whole value."""
    field = message.DESCRIPTOR.fields_by_name[name]
    if value is None:
        message.ClearField(name)
    elif field.is_repeated:
        _replace_repeated(message, name, value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, name).CopyFrom(value)
    else:
        setattr(message, name, value)


def _replace_repeated(message: Message, name: str, values: Iterable[Any]) -> None:
    target = getattr(message, name)
    # Read the new value before clearing: it may be (a view of) the field itself, as in
    # ``request.stop = request.stop`` or ``request.metadata = request.metadata``.
    if isinstance(values, dict) or hasattr(target, "keys"):
        pairs = dict(values)
        target.clear()
        target.update(pairs)
        return
    items = [_detached(item) for item in values]
    del target[:]
    if items and isinstance(items[0], Message):
        for item in items:
            target.add().CopyFrom(item)
    else:
        target.extend(items)


def _detached(item: Any) -> Any:
    """A message element copied out of its container, so clearing the container keeps it."""
    if isinstance(item, Message):
        clone = type(item)()
        clone.CopyFrom(item)
        return clone
    return item
