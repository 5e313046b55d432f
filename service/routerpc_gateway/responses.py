"""OpenRouter JSON → proto: completions, stream chunks, models and endpoints.

Parsing is lenient about what OpenRouter adds (unknown keys are ignored) and strict about what
callers rely on: a body that is not the documented shape is an error, never a silently empty
answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from routerpc import pb
from routerpc._gen import enums

__all__ = [
    "chat_response",
    "endpoint",
    "generation",
    "model",
    "quantization_of",
    "stream_chunk",
    "usage",
]

_NUMBER = (int, float)  # a constant: ``int | float`` builds a new union at every use
_FINISH = {name.lower(): value for name, value in enums.FinishReason.__members__.items()}


def quantization_of(name: str | None) -> Any:
    """The enum for an upstream quantization string; UNSPECIFIED for none or an unknown one.

    Typed ``Any`` because the proto stubs type enum fields as a NewType no IntEnum satisfies.
    """
    if not name:
        return enums.Quantization.UNSPECIFIED
    return enums.Quantization.__members__.get(name.upper(), enums.Quantization.UNSPECIFIED)


def _finish(value: Any) -> int:
    return int(_FINISH.get(str(value).lower(), 0)) if value else 0


def _int(value: Any) -> int:
    return int(value) if isinstance(value, _NUMBER) and not isinstance(value, bool) else 0


def usage(raw: Mapping[str, Any]) -> pb.Usage:
    """Token counts and cost."""
    result = pb.Usage()
    _fill_usage(result, raw)
    return result


_USAGE_COUNTS = (
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("total_tokens", "total_tokens"),
)
_PROMPT_DETAIL_COUNTS = (
    ("cached_tokens", "cached_tokens"),
    ("cache_write_tokens", "cache_write_tokens"),
    ("audio_tokens", "prompt_audio_tokens"),
)
_COMPLETION_DETAIL_COUNTS = (
    ("reasoning_tokens", "reasoning_tokens"),
    ("audio_tokens", "completion_audio_tokens"),
)
"""Usage counts: (key in the reply's object, ``Usage`` field)."""


def _fill_usage(result: pb.Usage, raw: Mapping[str, Any]) -> None:
    """Write ``raw``'s counts into ``result`` in place (no intermediate message to copy; zero
    counts are the default and are not written)."""
    result.SetInParent()  # present even when every count is zero
    for counts, names in (
        (raw, _USAGE_COUNTS),
        (raw.get("prompt_tokens_details") or {}, _PROMPT_DETAIL_COUNTS),
        (raw.get("completion_tokens_details") or {}, _COMPLETION_DETAIL_COUNTS),
    ):
        for key, name in names:
            value = counts.get(key)
            if value is not None and (count := _int(value)):
                setattr(result, name, count)
    if raw.get("is_byok", False):
        result.is_byok = True
    if isinstance(raw.get("cost"), _NUMBER):
        result.cost = float(raw["cost"])
    cost_details = raw.get("cost_details") or {}
    if isinstance(cost_details.get("upstream_inference_cost"), _NUMBER):
        result.upstream_inference_cost = float(cost_details["upstream_inference_cost"])


def _tool_call(raw: Mapping[str, Any]) -> pb.ToolCall:
    function = raw.get("function") or {}
    return pb.ToolCall(
        id=str(raw.get("id") or ""),
        name=str(function.get("name") or ""),
        arguments=str(function.get("arguments") or ""),
    )


def _list_value(items: list[Any]) -> struct_pb2.ListValue:
    value = struct_pb2.ListValue()
    value.extend(items)
    return value


def _fill_message(message: pb.AssistantMessage, raw: Mapping[str, Any]) -> None:
    message.SetInParent()  # present even when the reply's message is empty
    if calls := raw.get("tool_calls"):
        message.tool_calls.extend([_tool_call(c) for c in calls])
    for name in ("content", "reasoning", "refusal"):
        if isinstance(value := raw.get(name), str):
            setattr(message, name, value)
    for name in ("reasoning_details", "annotations"):
        if isinstance(value := raw.get(name), list):
            getattr(message, name).CopyFrom(_list_value(value))


def _fill_choice_ending(choice: pb.Choice | pb.ChunkChoice, raw: Mapping[str, Any]) -> None:
    """Index and finish reasons, which a completion's choice and a stream event's share."""
    if index := _int(raw.get("index")):
        choice.index = index
    if finish_reason := _finish(raw.get("finish_reason")):
        choice.finish_reason = finish_reason
    if native := raw.get("native_finish_reason"):
        choice.native_finish_reason = str(native)


def _fill_choice(choice: pb.Choice, raw: Mapping[str, Any]) -> None:
    _fill_choice_ending(choice, raw)
    _fill_message(choice.message, raw.get("message") or {})
    if isinstance(raw.get("logprobs"), dict):
        json_format.ParseDict(raw["logprobs"], choice.logprobs)
    error = raw.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        choice.error.code = code if isinstance(code, int) else 0
        choice.error.message = str(error.get("message") or "")


def _shape_error(what: str, error: Exception) -> ValueError:
    return ValueError(f"{what} is not the documented shape ({type(error).__name__}: {error})")


def chat_response(body: Mapping[str, Any], quantization: int = 0) -> pb.ChatResponse:
    """A ``ChatResponse`` from a chat-completions body.

    Raises ``ValueError`` for any body that is not the documented shape, including a nested
    value of the wrong JSON type (``"choices": [null]``), so callers handle one exception.
    """
    try:
        return _chat_response(body, quantization)
    except (AttributeError, TypeError) as error:
        raise _shape_error("completion body", error) from None


_RESPONSE_TEXT = ("id", "model", "provider", "system_fingerprint", "service_tier")


def _fill_top(
    message: pb.ChatResponse | pb.StreamChatResponse,
    body: Mapping[str, Any],
    texts: tuple[str, ...],
    quantization: int,
) -> None:
    """The top-level fields a completion and a stream event share: the text fields named in
    ``texts``, ``created`` and the served quantization (defaults left unwritten)."""
    for name in texts:
        if value := body.get(name):
            setattr(message, name, str(value))
    if created := _int(body.get("created")):
        message.created = created
    if quantization:
        message.quantization = quantization


def _chat_response(body: Mapping[str, Any], quantization: int) -> pb.ChatResponse:
    """Written in place, field by field, defaults left unwritten: building nested messages
    and passing them to constructors copies each one again."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise ValueError("completion body has no choices list")
    response = pb.ChatResponse()
    _fill_top(response, body, _RESPONSE_TEXT, quantization)
    for choice in choices:
        _fill_choice(response.choices.add(), choice)
    if isinstance(body.get("usage"), dict):
        _fill_usage(response.usage, body["usage"])
    return response


def _fill_delta(delta: pb.Delta, raw: Mapping[str, Any]) -> None:
    delta.SetInParent()  # present even when the event's delta is empty
    if role := raw.get("role"):
        delta.role = str(role)
    for name in ("content", "reasoning", "refusal"):
        if isinstance(value := raw.get(name), str):
            setattr(delta, name, value)
    for call in raw.get("tool_calls") or []:
        function = call.get("function") or {}
        delta.tool_calls.add(
            index=_int(call.get("index")),
            id=str(call.get("id") or ""),
            name=str(function.get("name") or ""),
            arguments=str(function.get("arguments") or ""),
        )
    if isinstance(raw.get("reasoning_details"), list):
        delta.reasoning_details.CopyFrom(_list_value(raw["reasoning_details"]))


def stream_chunk(body: Mapping[str, Any], quantization: int = 0) -> pb.StreamChatResponse:
    """A ``StreamChatResponse`` from one SSE data event; ``ValueError`` as ``chat_response``."""
    try:
        return _stream_chunk(body, quantization)
    except (AttributeError, TypeError) as error:
        raise _shape_error("stream chunk", error) from None


_CHUNK_TEXT = ("id", "model", "provider")


def _stream_chunk(body: Mapping[str, Any], quantization: int) -> pb.StreamChatResponse:
    """Written in place, defaults left unwritten, as ``_chat_response``: one event per relayed
    message, so this runs ten times or more per stream."""
    chunk = pb.StreamChatResponse()
    _fill_top(chunk, body, _CHUNK_TEXT, quantization)
    for raw in body.get("choices") or []:
        choice = chunk.choices.add()
        _fill_choice_ending(choice, raw)
        _fill_delta(choice.delta, raw.get("delta") or {})
    if isinstance(body.get("usage"), dict):
        _fill_usage(chunk.usage, body["usage"])
    return chunk


def _pricing(raw: Mapping[str, Any]) -> pb.Pricing:
    names = pb.Pricing.DESCRIPTOR.fields_by_name
    return pb.Pricing(**{k: str(v) for k, v in raw.items() if k in names and v is not None})


def model(raw: Mapping[str, Any]) -> pb.Model:
    """A catalogue ``Model``."""
    architecture = raw.get("architecture") or {}
    return pb.Model(
        id=str(raw.get("id") or ""),
        name=str(raw.get("name") or ""),
        description=str(raw.get("description") or ""),
        context_length=_int(raw.get("context_length")),
        pricing=_pricing(raw.get("pricing") or {}),
        supported_parameters=[str(p) for p in raw.get("supported_parameters") or []],
        input_modalities=[str(m) for m in architecture.get("input_modalities") or []],
        output_modalities=[str(m) for m in architecture.get("output_modalities") or []],
        created=_int(raw.get("created")),
    )


def _percentiles(raw: Any) -> pb.Percentiles | None:
    if not isinstance(raw, Mapping):
        return None
    return pb.Percentiles(
        **{
            k: float(raw[k])
            for k in ("p50", "p75", "p90", "p99")
            if isinstance(raw.get(k), _NUMBER)
        }
    )


def endpoint(raw: Mapping[str, Any]) -> pb.Endpoint:
    """One provider ``Endpoint`` of a model."""
    quantization = raw.get("quantization")
    result = pb.Endpoint(
        name=str(raw.get("name") or ""),
        provider_name=str(raw.get("provider_name") or ""),
        tag=str(raw.get("tag") or ""),
        quantization=quantization_of(quantization),
        quantization_name=str(quantization or ""),
        context_length=_int(raw.get("context_length")),
        pricing=_pricing(raw.get("pricing") or {}),
        supported_parameters=[str(p) for p in raw.get("supported_parameters") or []],
        status=_int(raw.get("status")),
    )
    if isinstance(raw.get("max_completion_tokens"), int):
        result.max_completion_tokens = raw["max_completion_tokens"]
    if isinstance(raw.get("uptime_last_30m"), _NUMBER):
        result.uptime_last_30m = float(raw["uptime_last_30m"])
    for name in ("latency_last_30m", "throughput_last_30m"):
        if (value := _percentiles(raw.get(name))) is not None:
            getattr(result, name).CopyFrom(value)
    return result


def generation(raw: Mapping[str, Any]) -> pb.Generation:
    """A ``Generation`` from ``/generation``'s ``data`` object (every field kept in details)."""
    result = pb.Generation(
        id=str(raw.get("id") or ""),
        model=str(raw.get("model") or ""),
        provider_name=str(raw.get("provider_name") or ""),
        tokens_prompt=_int(raw.get("tokens_prompt")),
        tokens_completion=_int(raw.get("tokens_completion")),
        native_tokens_prompt=_int(raw.get("native_tokens_prompt")),
        native_tokens_completion=_int(raw.get("native_tokens_completion")),
        native_tokens_reasoning=_int(raw.get("native_tokens_reasoning")),
        native_tokens_cached=_int(raw.get("native_tokens_cached")),
        finish_reason=str(raw.get("finish_reason") or ""),
        native_finish_reason=str(raw.get("native_finish_reason") or ""),
        created_at=str(raw.get("created_at") or ""),
        streamed=bool(raw.get("streamed")),
        cancelled=bool(raw.get("cancelled")),
        is_byok=bool(raw.get("is_byok")),
    )
    for source, target in (
        ("total_cost", "total_cost"),
        ("latency", "latency_ms"),
        ("generation_time", "generation_time_ms"),
    ):
        value = raw.get(source)
        if isinstance(value, _NUMBER) and not isinstance(value, bool):
            setattr(result, target, float(value))
    json_format.ParseDict(_finite(dict(raw)), result.details)
    return result


def _finite(value: Any) -> Any:
    """JSON from upstream without NaN/Infinity (a Struct cannot hold them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
