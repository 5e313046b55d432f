"""The httpx upstream client (``--upstream-client httpx``), with httpx-sse for streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_sse import EventSource

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
        async for chunk in response.aiter_raw():
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

    async def get(self, path: str, *, seconds: float) -> dict[str, Any]:
        return await self._send("GET", path, content=None, seconds=seconds)

    @asynccontextmanager
    async def stream_chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> AsyncIterator[AsyncIterator[SseEvent]]:
        try:
            async with asyncio.timeout(seconds):
                request = self._client.build_request(
                    "POST",
                    "chat/completions",
                    content=body,
                    headers={"Accept": "text/event-stream", **key_headers(api_key)},
                )
                response = await self._client.send(request, stream=True)
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
            raise _transport_error(error, streaming=True) from None

    async def _events(self, response: httpx.Response) -> AsyncIterator[SseEvent]:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raw = await self._read_bounded(response)
            json_object(response.status_code, raw, None)
            raise bad_response(
                f"the upstream answered a stream request with {content_type or 'no type'}"
            )
        async for event in EventSource(response).aiter_sse():
            if len(event.data) > self._max_bytes:
                raise too_large(self._max_bytes)
            yield SseEvent(event.data)
