"""What every upstream client shares: the interface, the deadline budget, error shapes, JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import pydantic_core

from routerpc_gateway.config import Settings
from routerpc_gateway.errors import GatewayError, upstream_error
from routerpc_gateway.upstream._sse import SseParser, SseTooLargeError

__all__ = [
    "DEADLINE_MARGIN",
    "SseEvent",
    "Upstream",
    "bad_response",
    "budget",
    "decode_json",
    "default_headers",
    "json_object",
    "stalled",
    "timed_out",
    "too_large",
    "unreachable",
]

DEADLINE_MARGIN = 0.05
"""Seconds kept back from the caller's deadline so our own status (with details) reaches it
before the transport deadline fires."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event; only ``data`` matters to OpenRouter streams."""

    data: str


class Upstream(Protocol):
    """OpenRouter over one pooled HTTP client, created once per process."""

    async def chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> dict[str, Any]:
        """POST a non-streaming completion; the parsed reply, or a ``GatewayError``.

        ``api_key`` replaces the gateway's own key for this call (bring-your-own-key); the
        destination never changes."""

    async def get(self, path: str, *, seconds: float, api_key: str | None = None) -> dict[str, Any]:
        """GET a catalogue or account resource (``models``, ``generation?id=``)."""

    def stream_chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[SseEvent]]:
        """POST a streaming completion; the context yields its data events as they arrive.

        Comment lines (``: OPENROUTER PROCESSING`` keep-alives) are never yielded. The whole
        stream is bounded by ``seconds``. Errors before the stream starts are raised on entry;
        transport failures while iterating surface as ``GatewayError(UNAVAILABLE)``.
        """

    async def aclose(self) -> None:
        """Close every pooled connection."""


def budget(settings: Settings, time_remaining: float | None) -> float:
    """Seconds the upstream call may take: the caller's deadline, capped by configuration."""
    limit = settings.request_timeout
    if time_remaining is not None:
        limit = min(limit, time_remaining - DEADLINE_MARGIN)
    if limit <= 0:
        raise GatewayError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "the deadline passed before the upstream call could start",
            reason="DEADLINE_TOO_SHORT",
        )
    return limit


def default_headers(settings: Settings) -> dict[str, str]:
    """Headers on every upstream request: content type, the key, attribution."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.api_key is not None and settings.api_key.get_secret_value():
        headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
    if settings.http_referer:
        headers["HTTP-Referer"] = settings.http_referer
    if settings.app_title:
        headers["X-OpenRouter-Title"] = settings.app_title
    return headers


def key_headers(api_key: str | None) -> dict[str, str]:
    """Per-call header overrides: a caller's own key, when it sent one."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def timed_out(seconds: float) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"the upstream did not answer within {seconds:.3g}s",
        reason="UPSTREAM_TIMEOUT",
    )


def stalled(kind: str) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"the upstream stalled ({kind})",
        reason="UPSTREAM_TIMEOUT",
    )


def unreachable(kind: str) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.UNAVAILABLE,
        f"the upstream could not be reached ({kind})",
        reason="UPSTREAM_UNREACHABLE",
    )


def interrupted(kind: str) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.UNAVAILABLE,
        f"the upstream connection broke mid-reply ({kind})",
        reason="STREAM_INTERRUPTED",
    )


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the upstream reply exceeds the {limit}-byte limit",
        reason="UPSTREAM_RESPONSE_TOO_LARGE",
        metadata={"limitBytes": str(limit)},
    )


def bad_response(message: str, status: int | None = None) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.INTERNAL,
        message,
        reason="UPSTREAM_BAD_RESPONSE",
        metadata={} if status is None else {"httpStatus": str(status)},
    )


def decode_json(status: int, raw: bytes) -> Any:
    """Parse a reply body; an unreadable one is INTERNAL (or UNAVAILABLE for an error status,
    where a proxy page in place of OpenRouter's JSON means the route is down)."""
    try:
        return pydantic_core.from_json(raw)  # Rust: a third of json.loads' time per reply
    except ValueError:
        error = bad_response(f"the upstream returned an unreadable body (HTTP {status})", status)
        if status >= 400:
            error.code = grpc.StatusCode.UNAVAILABLE
        raise error from None


def json_object(status: int, raw: bytes, retry_after: str | None) -> dict[str, Any]:
    """The reply as a JSON object, or the ``GatewayError`` its status or ``error`` calls for."""
    body = decode_json(status, raw)
    if status >= 400:
        raise upstream_error(status, body, retry_after=retry_after)
    if not isinstance(body, dict):
        raise bad_response("the upstream returned JSON that is not an object", status)
    error = body.get("error")
    if isinstance(error, Mapping) and not body.get("choices"):
        raise upstream_error(200, body)
    return body


def stream_headers(api_key: str | None) -> dict[str, str]:
    """Per-call headers of a streamed completion: SSE wanted, and the caller's key if any."""
    return {"Accept": "text/event-stream", **key_headers(api_key)}


def error_reply(status: int, raw: bytes, retry_after: str | None) -> GatewayError:
    """The error for a stream request the upstream refused with ``status`` (>= 400)."""
    return upstream_error(status, decode_json(status, raw), retry_after=retry_after)


async def sse_events(
    reply: tuple[int, str],
    read_body: Callable[[], Awaitable[bytes]],
    chunks: AsyncIterator[bytes],
    max_bytes: int,
) -> AsyncIterator[SseEvent]:
    """The events of a streamed reply (``reply``: its status and content type), each relayed
    as soon as it is whole; an event (or an unended line) over ``max_bytes`` is an error once
    the limit is passed. A reply that is not SSE raises on first iteration: the upstream's own
    error when its body (``read_body()``) carries one, else a bad response naming what came."""
    status, content_type = reply
    if "text/event-stream" not in content_type:
        json_object(status, await read_body(), None)
        kind = content_type or "no type"
        raise bad_response(f"the upstream answered a stream request with {kind}")
    parser = SseParser(max_bytes)
    try:
        async for chunk in chunks:
            for data in parser.feed(chunk):
                yield SseEvent(data)
    except SseTooLargeError:
        raise too_large(max_bytes) from None
