"""What the echo model answers, and OpenRouter's JSON shapes for unary bodies and stream chunks.

The answer is deterministic (``Echo: <last user text>``) so that tests can assert on content,
token counts and cost without a model. If the request demands a function tool (``tool_choice``
naming it or ``"required"``, or the last user text saying ``call <toolname>``) the answer is a
single tool call with ``{}`` arguments instead. When ``max_tokens``/``max_completion_tokens`` is
smaller than the echo, the content is cut to that many tokens and ``finish_reason`` is ``length``,
as a real model would do.

Everything here is pure: the wire (timing, flushing, faults that break the wire) is
``delivery.py``'s job.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import time
from dataclasses import dataclass, replace
from typing import Any

from .chat_request import ChatRequest
from .routing import Candidate
from .usage import CHARS_PER_TOKEN, Usage, count_tokens

_ID_ALPHABET = string.ascii_letters + string.digits
_PIECES = re.compile(r"\s*\S+\s*|\s+")
_FILLER = "lorem ipsum dolor sit amet "


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Answer:
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str

    @property
    def text_for_usage(self) -> str:
        calls = "".join(call.name + call.arguments for call in self.tool_calls)
        return (self.content or "") + calls


@dataclass(frozen=True)
class Completion:
    """One generation: who served it, what it says and what it cost."""

    id: str
    created: int
    served_by: Candidate
    answer: Answer
    usage: Usage

    @property
    def model(self) -> str:
        return self.served_by.model.id

    @property
    def provider(self) -> str:
        return self.served_by.endpoint.provider_name


def new_generation_id() -> str:
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))
    return f"gen-{int(time.time())}-{suffix}"


def echo_answer(request: ChatRequest, size_bytes: int | None = None) -> Answer:
    """The deterministic answer; ``size_bytes`` pads the content for the ``oversized`` fault."""
    if request.tool_call is not None and size_bytes is None:
        digest = hashlib.sha256(request.last_user_text.encode()).hexdigest()[:24]
        call = ToolCall(id=f"call_{digest}", name=request.tool_call, arguments="{}")
        return Answer(content=None, tool_calls=(call,), finish_reason="tool_calls")
    content = f"Echo: {request.last_user_text}"
    if size_bytes is not None:
        repeats = size_bytes // len(_FILLER) + 1
        return Answer(content=(_FILLER * repeats)[:size_bytes], tool_calls=(), finish_reason="stop")
    limit = request.max_output_tokens
    if limit is not None and count_tokens(content) > limit:
        return Answer(
            content=content[: limit * CHARS_PER_TOKEN], tool_calls=(), finish_reason="length"
        )
    return Answer(content=content, tool_calls=(), finish_reason="stop")


def build_completion(request: ChatRequest, served_by: Candidate, answer: Answer) -> Completion:
    return Completion(
        id=new_generation_id(),
        created=int(time.time()),
        served_by=served_by,
        answer=answer,
        usage=Usage.priced(
            served_by.endpoint, request.prompt_tokens, count_tokens(answer.text_for_usage)
        ),
    )


def truncated(completion: Completion, pieces: int) -> Completion:
    """The same generation cut after ``pieces`` stream pieces (for mid-stream failures)."""
    content = "".join(content_pieces(completion.answer.content or "")[:pieces])
    endpoint = completion.served_by.endpoint
    return replace(
        completion,
        answer=Answer(content=content, tool_calls=(), finish_reason="error"),
        usage=Usage.priced(endpoint, completion.usage.prompt_tokens, count_tokens(content)),
    )


def completion_body(completion: Completion, error: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = completion.answer
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "refusal": None,
        "reasoning": None,
    }
    if answer.tool_calls:
        message["tool_calls"] = [call.as_json() for call in answer.tool_calls]
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": answer.finish_reason,
        "native_finish_reason": answer.finish_reason,
        "logprobs": None,
    }
    if error is not None:
        choice["error"] = error
    return {
        **_envelope(completion, "chat.completion"),
        "system_fingerprint": None,
        "choices": [choice],
        "usage": completion.usage.as_json(),
    }


def content_pieces(content: str) -> list[str]:
    """Word-sized pieces (whitespace kept) whose concatenation is exactly ``content``."""
    return _PIECES.findall(content)


def delta_chunks(completion: Completion, split: bool = True) -> list[dict[str, Any]]:
    """Role chunk, content pieces (or tool-call fragments), then the finish chunk.

    ``split=False`` sends the content as a single delta, so a huge answer stays one event.
    """
    answer = completion.answer
    chunks = [chunk(completion, {"role": "assistant", "content": ""})]
    if answer.tool_calls:
        for index, call in enumerate(answer.tool_calls):
            opening = {"index": index, "id": call.id, "type": "function"}
            chunks.append(
                chunk(
                    completion,
                    {"tool_calls": [{**opening, "function": {"name": call.name, "arguments": ""}}]},
                )
            )
            chunks.append(
                chunk(
                    completion,
                    {"tool_calls": [{"index": index, "function": {"arguments": call.arguments}}]},
                )
            )
    else:
        content = answer.content or ""
        pieces = content_pieces(content) if split else [content]
        chunks.extend(chunk(completion, {"content": piece}) for piece in pieces if piece)
    chunks.append(chunk(completion, {"content": ""}, finish_reason=answer.finish_reason))
    return chunks


def chunk(
    completion: Completion, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        **_envelope(completion, "chat.completion.chunk"),
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "finish_reason": finish_reason,
                "native_finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
    }


def usage_chunk(completion: Completion) -> dict[str, Any]:
    return {
        **_envelope(completion, "chat.completion.chunk"),
        "choices": [],
        "usage": completion.usage.as_json(),
    }


def error_chunk(completion: Completion, error: dict[str, Any]) -> dict[str, Any]:
    body = chunk(completion, {"content": ""}, finish_reason="error")
    body["error"] = error
    return body


def provider_unavailable_error(provider_name: str) -> dict[str, Any]:
    return {
        "code": 502,
        "message": f"Provider returned error: {provider_name} closed the stream unexpectedly",
        "metadata": {"error_type": "provider_unavailable"},
    }


def _envelope(completion: Completion, kind: str) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": kind,
        "created": completion.created,
        "model": completion.model,
        "provider": completion.provider,
    }
