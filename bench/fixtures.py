"""Static upstream bodies and the seed request shared by every part of the benchmark.

One completion, one SSE stream and one endpoints list in OpenRouter's shape, so nginx, the drip
upstream and the echo server all answer the same content and every server under test does the
same conversion work.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from routerpc import pb

MODEL = "openai/gpt-4o"
PROVIDER = "OpenAI"
CREATED = 1_700_000_000
GENERATION_ID = "gen-bench-0000000000000000"
STREAM_PIECES = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?", " Bye."]
"""The ten content pieces of the static stream (one data event each)."""

USAGE: dict[str, Any] = {
    "prompt_tokens": 9,
    "completion_tokens": 10,
    "total_tokens": 19,
    "cost": 0.0001225,
}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def completion() -> dict[str, Any]:
    """A non-streaming chat completion."""
    return {
        "id": GENERATION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "provider": PROVIDER,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
                "native_finish_reason": "stop",
            }
        ],
        "usage": dict(USAGE),
    }


def chunk(content: str, *, first: bool = False, last: bool = False) -> dict[str, Any]:
    """One streamed ``chat.completion.chunk`` carrying ``content``."""
    delta: dict[str, Any] = {"content": content}
    if first:
        delta["role"] = "assistant"
    return {
        "id": GENERATION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "provider": PROVIDER,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "finish_reason": "stop" if last else None,
                "native_finish_reason": "stop" if last else None,
            }
        ],
    }


def usage_chunk() -> dict[str, Any]:
    """The final chunk: no choices, the whole usage."""
    return {
        "id": GENERATION_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "provider": PROVIDER,
        "choices": [],
        "usage": dict(USAGE),
    }


KEEPALIVE = ": OPENROUTER PROCESSING\n\n"
DONE = "data: [DONE]\n\n"


def sse_event(payload: dict[str, Any]) -> str:
    return f"data: {_dumps(payload)}\n\n"


def sse_body() -> str:
    """The whole static stream: keep-alive comment, ten chunks, usage chunk, ``[DONE]``."""
    last = len(STREAM_PIECES) - 1
    events = [
        sse_event(chunk(piece, first=i == 0, last=i == last))
        for i, piece in enumerate(STREAM_PIECES)
    ]
    return KEEPALIVE + "".join(events) + sse_event(usage_chunk()) + DONE


def endpoints() -> dict[str, Any]:
    """``GET /models/openai/gpt-4o/endpoints``: the one endpoint that serves the completions."""
    return {
        "data": {
            "id": MODEL,
            "name": "OpenAI: GPT-4o",
            "endpoints": [
                {
                    "name": "OpenAI: GPT-4o",
                    "provider_name": PROVIDER,
                    "tag": "openai",
                    "quantization": "fp16",
                    "context_length": 128000,
                    "max_completion_tokens": 16384,
                    "pricing": {"prompt": "0.0000025", "completion": "0.00001"},
                    "supported_parameters": ["max_tokens", "temperature", "tools"],
                    "status": 0,
                    "uptime_last_30m": 99.9,
                }
            ],
        }
    }


def completion_json() -> str:
    return _dumps(completion())


def endpoints_json() -> str:
    return _dumps(endpoints())


def request_json(*, stream: bool) -> str:
    """The upstream JSON body the seed request turns into (for the direct-HTTP baseline)."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hello!"}],
        "provider": {"quantizations": ["fp8", "fp16"]},
    }
    if stream:
        body["stream"] = True
    return _dumps(body)


def _enum(message: Any, field: str, name: str) -> Any:
    """An enum value by name (typed Any: the stubs' enum NewTypes take no plain int)."""
    return message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_name[name].number


def seed_request(max_tokens: int | None = None) -> pb.ChatRequest:
    """model openai/gpt-4o, one user message "Hello!", provider quantizations [FP8, FP16]."""
    request = pb.ChatRequest(
        model=MODEL,
        messages=[pb.Message(role=_enum(pb.Message, "role", "ROLE_USER"), text="Hello!")],
        provider=pb.ProviderConfig(
            quantizations=[
                _enum(pb.ProviderConfig, "quantizations", "QUANTIZATION_FP8"),
                _enum(pb.ProviderConfig, "quantizations", "QUANTIZATION_FP16"),
            ]
        ),
    )
    if max_tokens is not None:
        request.max_tokens = max_tokens
    return request


def grpc_frame(message: Any) -> bytes:
    """The gRPC wire frame: uncompressed flag, 4-byte big-endian length, the message."""
    raw: bytes = message.SerializeToString()
    return struct.pack(">BI", 0, len(raw)) + raw
