"""Typed views of what the gateway returns: the proto plus the few answers callers want first."""

from __future__ import annotations

from routerpc import pb
from routerpc._gen.enums import FinishReason, Quantization

__all__ = ["ChatChunk", "ChatResult"]


class ChatResult:
    """A completed chat: ``text``, who served it, and what it cost; ``proto`` holds the rest."""

    __slots__ = ("proto",)

    def __init__(self, proto: pb.ChatResponse) -> None:
        self.proto = proto

    @property
    def text(self) -> str:
        """The first choice's content ("" when the model only called tools)."""
        return self.proto.choices[0].message.content if self.proto.choices else ""

    @property
    def provider(self) -> str:
        """Display name of the provider that served."""
        return self.proto.provider

    @property
    def model(self) -> str:
        """The model that actually served (after fallbacks)."""
        return self.proto.model

    @property
    def quantization(self) -> Quantization:
        """Quantization of the serving endpoint (``UNSPECIFIED`` when unknown)."""
        return Quantization(self.proto.quantization)

    @property
    def usage(self) -> pb.Usage:
        """Token counts and cost."""
        return self.proto.usage

    @property
    def finish_reason(self) -> FinishReason:
        """Why the first choice stopped."""
        if not self.proto.choices:
            return FinishReason.UNSPECIFIED
        return FinishReason(self.proto.choices[0].finish_reason)

    @property
    def tool_calls(self) -> list[pb.ToolCall]:
        """Tool calls of the first choice."""
        return list(self.proto.choices[0].message.tool_calls) if self.proto.choices else []

    def __repr__(self) -> str:
        return (
            f"ChatResult(model={self.model!r}, provider={self.provider!r}, "
            f"quantization={self.quantization.name}, text={self.text!r})"
        )


class ChatChunk:
    """One streamed chunk; ``text`` is its content increment, ``usage`` is set on the last."""

    __slots__ = ("proto",)

    def __init__(self, proto: pb.StreamChatResponse) -> None:
        self.proto = proto

    @property
    def text(self) -> str:
        """Content added by this chunk, across choices."""
        return "".join(c.delta.content for c in self.proto.choices)

    @property
    def reasoning(self) -> str:
        """Reasoning added by this chunk."""
        return "".join(c.delta.reasoning for c in self.proto.choices)

    @property
    def provider(self) -> str:
        """Display name of the provider serving the stream."""
        return self.proto.provider

    @property
    def quantization(self) -> Quantization:
        """Quantization of the serving endpoint, when known."""
        return Quantization(self.proto.quantization)

    @property
    def usage(self) -> pb.Usage | None:
        """Usage and cost; only on the final chunk."""
        return self.proto.usage if self.proto.HasField("usage") else None

    @property
    def finish_reason(self) -> FinishReason:
        """Set on a choice's last chunk."""
        for choice in self.proto.choices:
            if choice.finish_reason:
                return FinishReason(choice.finish_reason)
        return FinishReason.UNSPECIFIED

    def __repr__(self) -> str:
        return f"ChatChunk(text={self.text!r}, usage={self.usage is not None})"
