"""The one door to OpenRouter: a shared, bounded ``httpx.AsyncClient`` and nothing else.

Everything that touches the network goes through :class:`Upstream`, so its transport can be
swapped (for example for an aiohttp-backed one) without touching conversion or the servicer.

Guarantees the rest of the gateway relies on:
- every call is bounded as a whole by ``asyncio.timeout`` (httpx timeouts are per phase, so a
  trickling upstream never trips them); the caller's remaining gRPC deadline sets the budget;
- when the calling task is cancelled (caller cancelled, deadline passed) the request is cancelled
  and its connection released: ``CancelledError`` is never swallowed;
- replies are read with a size bound, so a huge reply is an error, not an out-of-memory;
- the base URL and the key come from configuration only; callers choose neither.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
from httpx_sse import EventSource, ServerSentEvent

from routerpc_gateway.config import Settings
from routerpc_gateway.errors import GATEWAY_DOMAIN, GatewayError, upstream_error

__all__ = ["DEADLINE_MARGIN", "Upstream", "budget"]

DEADLINE_MARGIN = 0.05
"""Seconds kept back from the caller's deadline so our own status (with details) reaches it
before the transport deadline fires."""


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


def _timeout_error(seconds: float) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"the upstream did not answer within {seconds:.3g}s",
        reason="UPSTREAM_TIMEOUT",
    )


def _transport_error(error: httpx.TransportError) -> GatewayError:
    if isinstance(error, httpx.TimeoutException):
        return GatewayError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"the upstream stalled ({type(error).__name__})",
            reason="UPSTREAM_TIMEOUT",
        )
    return GatewayError(
        grpc.StatusCode.UNAVAILABLE,
        f"the upstream could not be reached ({type(error).__name__})",
        reason="UPSTREAM_UNREACHABLE",
    )


class Upstream:
    """OpenRouter over one pooled HTTP client, created once per process."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.api_key is not None and settings.api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        if settings.http_referer:
            headers["HTTP-Referer"] = settings.http_referer
        if settings.app_title:
            headers["X-OpenRouter-Title"] = settings.app_title
        self._max_bytes = settings.max_upstream_response_bytes
        self._client = httpx.AsyncClient(
            base_url=settings.upstream_base + "/",
            headers=headers,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.connect_timeout,
            ),
            limits=httpx.Limits(
                max_connections=settings.pool_size,
                max_keepalive_connections=settings.pool_size,
            ),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._client.aclose()

    async def _read_bounded(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > self._max_bytes:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> GatewayError:
        return GatewayError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the upstream reply exceeds the {self._max_bytes}-byte limit",
            reason="UPSTREAM_RESPONSE_TOO_LARGE",
            metadata={"limitBytes": str(self._max_bytes)},
        )

    @staticmethod
    def _decode(status: int, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise GatewayError(
                grpc.StatusCode.INTERNAL if status < 400 else grpc.StatusCode.UNAVAILABLE,
                f"the upstream returned an unreadable body (HTTP {status})",
                reason="UPSTREAM_BAD_RESPONSE",
                metadata={"httpStatus": str(status)},
            ) from None

    async def _send(
        self, method: str, path: str, *, content: bytes | None, seconds: float
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(seconds):
                request = self._client.build_request(method, path, content=content)
                response = await self._client.send(request, stream=True)
                try:
                    raw = await self._read_bounded(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise _timeout_error(seconds) from None
        except httpx.TransportError as error:
            raise _transport_error(error) from None
        body = self._decode(response.status_code, raw)
        if response.status_code >= 400:
            raise upstream_error(
                response.status_code, body, retry_after=response.headers.get("retry-after")
            )
        if not isinstance(body, dict):
            raise GatewayError(
                grpc.StatusCode.INTERNAL,
                "the upstream returned JSON that is not an object",
                reason="UPSTREAM_BAD_RESPONSE",
            )
        if "error" in body and isinstance(body["error"], dict) and not body.get("choices"):
            raise upstream_error(200, body)
        return body

    async def chat(self, body: bytes, *, seconds: float) -> dict[str, Any]:
        """POST a non-streaming completion; the parsed reply, or a ``GatewayError``."""
        return await self._send("POST", "chat/completions", content=body, seconds=seconds)

    async def get(self, path: str, *, seconds: float) -> dict[str, Any]:
        """GET a catalogue resource (``models``, ``models/a/b/endpoints``)."""
        return await self._send("GET", path, content=None, seconds=seconds)

    @asynccontextmanager
    async def stream_chat(
        self, body: bytes, *, seconds: float
    ) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
        """POST a streaming completion and yield its SSE events as they arrive.

        Comment lines (``: OPENROUTER PROCESSING`` keep-alives) are skipped by the parser. The
        whole stream, not each read, is bounded by ``seconds``. Errors before the stream starts
        come back as ``GatewayError`` from entering the context; transport failures while
        iterating surface as ``GatewayError(UNAVAILABLE)``.
        """
        try:
            async with asyncio.timeout(seconds):
                request = self._client.build_request(
                    "POST",
                    "chat/completions",
                    content=body,
                    headers={"Accept": "text/event-stream"},
                )
                response = await self._client.send(request, stream=True)
                try:
                    if response.status_code >= 400:
                        raw = await self._read_bounded(response)
                        raise upstream_error(
                            response.status_code,
                            self._decode(response.status_code, raw),
                            retry_after=response.headers.get("retry-after"),
                        )
                    yield self._events(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise _timeout_error(seconds) from None
        except httpx.TransportError as error:
            raise _transport_error(error) from None

    async def _events(self, response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raw = await self._read_bounded(response)
            body = self._decode(response.status_code, raw)
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                raise upstream_error(200, body)
            raise GatewayError(
                grpc.StatusCode.INTERNAL,
                f"the upstream answered a stream request with {content_type or 'no type'}",
                reason="UPSTREAM_BAD_RESPONSE",
                domain=GATEWAY_DOMAIN,
            )
        async for event in EventSource(response).aiter_sse():
            if len(event.data) > self._max_bytes:
                raise self._too_large()
            yield event
