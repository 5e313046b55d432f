"""The httpx upstream client (``--upstream-client httpx``).

Streams are parsed by the same bounded SSE parser as the aiohttp client's (``_sse.py``), fed the
decoded body as it arrives, so an event (or a line that never ends) larger than the reply limit
is an error as soon as the limit is passed, never a buffer that grows with the upstream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from routerpc_gateway.config import Settings
from routerpc_gateway.errors import upstream_error
from routerpc_gateway.upstream._base import (
    SseEvent,
    bad_response,
    decode_json,
    default_headers,
    interrupted,
    json_object,
    key_headers,
    stalled,
    timed_out,
    too_large,
    unreachable,
)
from routerpc_gateway.upstream._sse import SseParser, SseTooLargeError

__all__ = ["HttpxUpstream"]


def _transport_error(error: httpx.TransportError, *, streaming: bool = False) -> Exception:
    kind = type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return stalled(kind)
    if streaming and isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
        return interrupted(kind)
    return unreachable(kind)


class HttpxUpstream:
    """OpenRouter over one pooled ``httpx.AsyncClient``."""

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._max_bytes = settings.max_upstream_response_bytes
        self._client = httpx.AsyncClient(
            base_url=settings.upstream_base + "/",
            headers=default_headers(settings),
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
        await self._client.aclose()

    async def _read_bounded(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise too_large(self._max_bytes)
        chunks: list[bytes] = []
        size = 0
        # Decoded bytes (``aiter_bytes``): the body as sent may be gzip/deflate/br-encoded, and
        # the bound is on what is held in memory.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise too_large(self._max_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None,
        seconds: float,
        api_key: str | None = None,
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(seconds):
                request = self._client.build_request(
                    method, path, content=content, headers=key_headers(api_key)
                )
                response = await self._client.send(request, stream=True)
                try:
                    raw = await self._read_bounded(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise timed_out(seconds) from None
        except httpx.TransportError as error:
            raise _transport_error(error) from None
        return json_object(response.status_code, raw, response.headers.get("retry-after"))

    async def chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> dict[str, Any]:
        return await self._send(
            "POST", "chat/completions", content=body, seconds=seconds, api_key=api_key
        )

    async def get(self, path: str, *, seconds: float, api_key: str | None = None) -> dict[str, Any]:
        return await self._send("GET", path, content=None, seconds=seconds, api_key=api_key)

    @asynccontextmanager
    async def stream_chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> AsyncIterator[AsyncIterator[SseEvent]]:
        # A connection that fails before the reply's status line is a connection failure (and
        # retryable), not a stream broken mid-reply: only a reply that started can be cut.
        started = False
        try:
            async with asyncio.timeout(seconds):
                request = self._client.build_request(
                    "POST",
                    "chat/completions",
                    content=body,
                    headers={"Accept": "text/event-stream", **key_headers(api_key)},
                )
                response = await self._client.send(request, stream=True)
                started = True
                try:
                    if response.status_code >= 400:
                        raw = await self._read_bounded(response)
                        raise upstream_error(
                            response.status_code,
                            decode_json(response.status_code, raw),
                            retry_after=response.headers.get("retry-after"),
                        )
                    yield self._events(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise timed_out(seconds) from None
        except httpx.TransportError as error:
            raise _transport_error(error, streaming=started) from None

    async def _events(self, response: httpx.Response) -> AsyncIterator[SseEvent]:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raw = await self._read_bounded(response)
            json_object(response.status_code, raw, None)
            raise bad_response(
                f"the upstream answered a stream request with {content_type or 'no type'}"
            )
        parser = SseParser(self._max_bytes)
        try:
            async for chunk in response.aiter_bytes():
                for data in parser.feed(chunk):
                    yield SseEvent(data)
        except SseTooLargeError:
            raise too_large(self._max_bytes) from None
