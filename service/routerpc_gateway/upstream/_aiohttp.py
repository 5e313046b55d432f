"""The aiohttp upstream client (``--upstream-client aiohttp``, the default).

Chosen for cost: on the gateway's real path it spends a fraction of httpx's CPU per request
(bench/RESULTS.md). Every exit path that does not read a reply to its end closes the connection
(``response.close()``), so a cancelled call is seen upstream as a disconnect and a half-read
connection never returns to the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from routerpc_gateway.config import Settings
from routerpc_gateway.upstream._base import (
    SseEvent,
    default_headers,
    error_reply,
    interrupted,
    json_object,
    key_headers,
    sse_events,
    stalled,
    stream_headers,
    timed_out,
    too_large,
    unreachable,
)

__all__ = ["AiohttpUpstream", "client_error"]

_CHUNK = 64 * 1024


def client_error(error: aiohttp.ClientError, *, streaming: bool = False) -> Exception:
    """The gateway error for an aiohttp failure (also used by the httpx-aiohttp transport)."""
    kind = type(error).__name__
    if isinstance(error, aiohttp.ServerTimeoutError):
        return stalled(kind)
    if isinstance(error, aiohttp.ClientPayloadError) or (
        streaming and isinstance(error, aiohttp.ServerDisconnectedError)
    ):
        return interrupted(kind)
    return unreachable(kind)


class AiohttpUpstream:
    """OpenRouter over one pooled ``aiohttp.ClientSession``."""

    def __init__(self, settings: Settings) -> None:
        self._base = settings.upstream_base + "/"
        self._max_bytes = settings.max_upstream_response_bytes
        self._session = aiohttp.ClientSession(
            headers=default_headers(settings),
            connector=aiohttp.TCPConnector(
                limit=settings.pool_size,
                limit_per_host=settings.pool_size,
                ttl_dns_cache=60,
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=settings.connect_timeout,
                sock_read=settings.read_timeout,
            ),
            trust_env=False,
            auto_decompress=True,
            raise_for_status=False,
        )

    async def aclose(self) -> None:
        await self._session.close()

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        length = response.content_length
        if length is not None:
            if length > self._max_bytes:
                raise too_large(self._max_bytes)
            if "Content-Encoding" not in response.headers:
                # The size is declared and within bounds, and aiohttp stops at Content-Length:
                # one read, not a loop of chunks.
                return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
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
        data: bytes | None,
        seconds: float,
        api_key: str | None = None,
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(seconds):
                response = await self._session.request(
                    method,
                    self._base + path,
                    data=data,
                    headers=key_headers(api_key),
                    allow_redirects=False,
                )
                try:
                    raw = await self._read_bounded(response)
                except BaseException:
                    response.close()
                    raise
                response.release()
        except TimeoutError:
            raise timed_out(seconds) from None
        except aiohttp.ClientError as error:
            raise client_error(error) from None
        return json_object(response.status, raw, response.headers.get("Retry-After"))

    async def chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> dict[str, Any]:
        return await self._send(
            "POST", "chat/completions", data=body, seconds=seconds, api_key=api_key
        )

    async def get(self, path: str, *, seconds: float, api_key: str | None = None) -> dict[str, Any]:
        return await self._send("GET", path, data=None, seconds=seconds, api_key=api_key)

    @asynccontextmanager
    async def stream_chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> AsyncIterator[AsyncIterator[SseEvent]]:
        # A connection that fails before the reply's status line is a connection failure (and
        # retryable), not a stream broken mid-reply: only a reply that started can be cut.
        started = False
        try:
            async with asyncio.timeout(seconds):
                response = await self._session.post(
                    self._base + "chat/completions",
                    data=body,
                    headers=stream_headers(api_key),
                    allow_redirects=False,
                )
                started = True
                try:
                    if response.status >= 400:
                        raw = await self._read_bounded(response)
                        raise error_reply(response.status, raw, response.headers.get("Retry-After"))
                    yield sse_events(
                        (response.status, response.headers.get("Content-Type", "")),
                        lambda: self._read_bounded(response),
                        response.content.iter_any(),
                        self._max_bytes,
                    )
                finally:
                    # Closing (not releasing) a reply read to [DONE] costs one connection;
                    # releasing one read partway would put a dirty connection in the pool.
                    if response.content.at_eof():
                        response.release()
                    else:
                        response.close()
        except TimeoutError:
            raise timed_out(seconds) from None
        except aiohttp.ClientError as error:
            raise client_error(error, streaming=started) from None
