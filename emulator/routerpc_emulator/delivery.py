"""Putting a completion on the wire, unary or as SSE, including the faults that break the wire.

Streaming follows OpenRouter: an SSE comment ``: OPENROUTER PROCESSING`` first, then one
``data: <chunk>`` event per piece, the finish chunk, a final chunk with ``choices: []`` and the full
``usage``, and ``data: [DONE]``. Every event is written (and so flushed to the socket) on its own;
``stream_delay_s`` pauses between events so that clients can observe incremental delivery.

``on_finished`` is called exactly once per delivered generation with how it ended, so the
generation log also knows about cancelled and failed streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .faults import Fault, FaultKind
from .generations import Outcome
from .responses import (
    Completion,
    completion_body,
    delta_chunks,
    error_chunk,
    provider_unavailable_error,
    truncated,
    usage_chunk,
)

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
SSE_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
PIECES_BEFORE_FAILURE = 2
"""Content pieces delivered before ``mid-stream-error``/``cut-stream`` strike."""
CUT_STALL_S = 0.1
"""How long a ``cut-stream`` stream goes quiet before its connection is reset.

A crashing upstream rarely dies within microseconds of its last write. Without the stall the reset
can overtake pieces the reader has received but not yet consumed (aiohttp's reader, for one,
raises the reset before handing over what it buffered), and which pieces a test sees would be
down to scheduling."""

OnFinished = Callable[[Completion, Outcome], None]


def sse_event(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def send_unary(
    request: web.Request, completion: Completion, fault: Fault | None, on_finished: OnFinished
) -> web.StreamResponse:
    headers = {"X-Generation-Id": completion.id}
    kind = fault.kind if fault else None
    if kind is FaultKind.MID_STREAM_ERROR:
        partial = truncated(completion, PIECES_BEFORE_FAILURE)
        error = provider_unavailable_error(completion.provider)
        on_finished(partial, Outcome(False, "error"))
        return web.json_response(completion_body(partial, error=error), headers=headers)
    body = json.dumps(completion_body(completion)).encode()
    if kind is FaultKind.CUT_STREAM:
        response = web.StreamResponse(headers={**headers, "Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        _abort(request)
        on_finished(completion, Outcome(False, None, cancelled=True))
        return response
    on_finished(completion, Outcome(False, completion.answer.finish_reason))
    return web.Response(body=body, headers=headers, content_type="application/json")


async def send_stream(
    request: web.Request,
    completion: Completion,
    fault: Fault | None,
    delay_s: float,
    on_finished: OnFinished,
) -> web.StreamResponse:
    response = web.StreamResponse(headers={**SSE_HEADERS, "X-Generation-Id": completion.id})
    await response.prepare(request)
    kind = fault.kind if fault else None
    chunks = delta_chunks(completion, split=kind is not FaultKind.OVERSIZED)
    try:
        await response.write(KEEPALIVE)
        if kind in (FaultKind.MID_STREAM_ERROR, FaultKind.CUT_STREAM):
            for payload in chunks[: 1 + PIECES_BEFORE_FAILURE]:
                await _pause(delay_s)
                await response.write(sse_event(payload))
            partial = truncated(completion, PIECES_BEFORE_FAILURE)
            if kind is FaultKind.CUT_STREAM:
                await asyncio.sleep(CUT_STALL_S)
                _abort(request)
                on_finished(partial, Outcome(True, None, cancelled=True))
                return response
            error = provider_unavailable_error(completion.provider)
            await _pause(delay_s)
            await response.write(sse_event(error_chunk(partial, error)))
            on_finished(partial, Outcome(True, "error"))
            return response
        for payload in [*chunks, usage_chunk(completion)]:
            await _pause(delay_s)
            await response.write(sse_event(payload))
        await response.write(DONE)
    except ConnectionResetError:
        on_finished(completion, Outcome(True, None, cancelled=True))
        return response
    on_finished(completion, Outcome(True, completion.answer.finish_reason))
    return response


async def send_garbage_sse(request: web.Request) -> web.StreamResponse:
    """A 200 event stream whose data lines a client cannot parse."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    for line in (
        KEEPALIVE,
        b'data: {"id":"gen-garbage","object":"chat.completion.chunk","choices":[{"delta":\n\n',
        b"data: this is not json\n\n",
        b"data: {'single': 'quotes'}\n\n",
        DONE,
    ):
        await response.write(line)
    return response


async def _pause(delay_s: float) -> None:
    if delay_s > 0:
        await asyncio.sleep(delay_s)


def _abort(request: web.Request) -> None:
    """Drop the TCP connection without a clean HTTP ending, as a crashing upstream would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
