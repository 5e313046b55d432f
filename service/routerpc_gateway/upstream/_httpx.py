"""The httpx upstream clients: ``--upstream-client httpx``, ``httpx-http2`` and ``httpx-aiohttp``.

One class, :class:`HttpxUpstream`, over one pooled ``httpx.AsyncClient``; the flavour only
chooses the client's transport, so every flavour runs the same request, bounding and error code:

* ``httpx``: httpx's own transport (httpcore), HTTP/1.1.
* ``httpx-http2``: httpcore with HTTP/2. Over ``https://`` the protocol is negotiated by ALPN (h2
  when the upstream offers it, else HTTP/1.1); over cleartext ``http://``, which httpx cannot
  upgrade, HTTP/2 is spoken with prior knowledge (``http1=False``: h2c, for an upstream that
  speaks HTTP/2 on that port, such as nginx's ``listen ... http2``; an HTTP/1.1-only upstream
  then fails as unreachable). One connection carries up to 100 concurrent streams;
  ``pool_size`` still bounds the connections. httpcore forgets a stream closed before its end
  without telling the upstream, which would keep generating (and billing) the abandoned reply;
  here such a stream is reset (RST_STREAM, CANCEL), so a cancelled call is seen upstream at once
  and the connection stays usable for the others it carries. An answer sent before the whole
  request arrived (then the stream ended, RFC 9113 section 8.1) is read, not a protocol error.
* ``httpx-aiohttp``: the ``httpx_aiohttp`` transport, i.e. httpx's API over an aiohttp session
  (HTTP/1.1). Its session is built here with the same limits as the aiohttp client (``pool_size``
  connections, no proxy from the environment), and its errors are classified by the aiohttp error
  it wraps (the transport maps a refused connection to ``ConnectTimeout``, for one).

Streams are parsed by the same bounded SSE parser as the aiohttp client's (``_sse.py``), fed the
decoded body as it arrives, so an event (or a line that never ends) larger than the reply limit
is an error as soon as the limit is passed, never a buffer that grows with the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import aiohttp
import h2.errors
import h2.events
import h2.exceptions
import httpcore
import httpx

from routerpc_gateway.config import Settings
from routerpc_gateway.upstream._aiohttp import client_error as _aiohttp_error
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

__all__ = ["Flavour", "HttpxUpstream"]

Flavour = Literal["httpx", "httpx-http2", "httpx-aiohttp"]

_RESET_WRITE = httpcore.Request(
    "POST", "http://reset.invalid/", extensions={"timeout": {"write": 5.0}}
)
"""Stands for the request when httpcore writes a reset: it only reads the write timeout."""


def _transport_error(error: Exception, *, streaming: bool = False) -> Exception:
    cause = error.__cause__ if isinstance(error, httpx.TransportError) else error
    if isinstance(cause, aiohttp.ClientError):  # httpx-aiohttp: classify what really happened
        return _aiohttp_error(cause, streaming=streaming)
    kind = type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return stalled(kind)
    if streaming and isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
        return interrupted(kind)
    return unreachable(kind)


# HTTP/2: httpcore, with early-closed streams reset and early answers read ------------------


class _Http2Connection(httpcore.AsyncHTTP2Connection):
    """httpcore's HTTP/2 connection with two fixes.

    A stream closed before its end is reset. httpcore 1.0 only forgets such a stream: the
    upstream never learns the caller left, and the DATA it keeps sending is never acknowledged,
    so it eats the connection's flow-control window for every other stream. Here the stream gets
    RST_STREAM(CANCEL) and the connection window is credited for what was received but not read.

    An upstream may answer before the whole request arrived and then end the stream
    (RST_STREAM(NO_ERROR), RFC 9113 section 8.1): nginx's ``return``, or an early 4xx. httpcore
    then fails the call sending the rest of the body into the closed stream, or waits for
    flow-control credit that never comes; here the rest is dropped and the answer is read as
    usual. (Left as in httpcore: a body waiting for credit behind another stream's read of the
    connection may wait for the connection's next frame; the call's budget bounds that too.)"""

    # h2 raises StreamClosedError only for a stream that ended: the client ends none before its
    # request is sent, so it was the upstream; whether it answered is for the reading side.
    async def _send_stream_data(
        self, request: httpcore.Request, stream_id: int, data: bytes
    ) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            await super()._send_stream_data(request, stream_id, data)

    async def _send_end_stream(self, request: httpcore.Request, stream_id: int) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            await super()._send_end_stream(request, stream_id)

    async def _wait_for_outgoing_flow(self, request: httpcore.Request, stream_id: int) -> int:
        # httpcore's loop, but it gives up once the upstream ended the stream: no credit comes
        # for it then, and httpcore would wait for one until the call's budget ran out.
        while True:
            stream = self._h2_state.streams.get(stream_id)
            if stream is None or stream.closed:
                raise h2.exceptions.StreamClosedError(stream_id)
            flow = min(
                self._h2_state.local_flow_control_window(stream_id),
                self._h2_state.max_outbound_frame_size,
            )
            if flow > 0:
                return flow
            await self._receive_events(request)

    async def _response_closed(self, stream_id: int) -> None:
        try:
            if self._abandon(stream_id):
                await self._write_outgoing_data(_RESET_WRITE)
        except Exception:  # a broken connection: httpcore discards it, streams and all
            pass
        finally:
            await super()._response_closed(stream_id)

    def _abandon(self, stream_id: int) -> bool:
        """Reset the stream if it is still open and credit the connection with the DATA that
        arrived for it but was never read; whether there are frames to send."""
        if self._connection_error:
            return False
        reset = False
        stream = self._h2_state.streams.get(stream_id)
        if stream is not None and not stream.closed:
            self._h2_state.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            reset = True
        unread = sum(
            event.flow_controlled_length or 0
            for event in self._events.get(stream_id, ())
            if isinstance(event, h2.events.DataReceived)
        )
        if unread:
            # The stream is closed by now, so this credits the connection window only.
            self._h2_state.acknowledge_received_data(unread, stream_id)
        return reset or unread > 0


class _Connection(httpcore.AsyncHTTPConnection):
    """httpcore's connection dispatch (h2 by ALPN, or by prior knowledge when HTTP/1.1 is off),
    with :class:`_Http2Connection` for HTTP/2."""

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        try:
            async with self._request_lock:
                if self._connection is None:
                    stream = await self._connect(request)
                    ssl_object = stream.get_extra_info("ssl_object")
                    alpn_h2 = ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2"
                    if alpn_h2 or (self._http2 and not self._http1):
                        self._connection = _Http2Connection(
                            origin=self._origin,
                            stream=stream,
                            keepalive_expiry=self._keepalive_expiry,
                        )
                    else:
                        self._connection = httpcore.AsyncHTTP11Connection(
                            origin=self._origin,
                            stream=stream,
                            keepalive_expiry=self._keepalive_expiry,
                        )
        except BaseException:
            self._connect_failed = True
            raise
        return await self._connection.handle_async_request(request)


class _Pool(httpcore.AsyncConnectionPool):
    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        return _Connection(
            origin=origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            http1=self._http1,
            http2=self._http2,
            network_backend=self._network_backend,
        )


class _Http2Transport(httpx.AsyncHTTPTransport):
    """httpx's transport over :class:`_Pool`; HTTP/2 by ALPN over TLS, by prior knowledge over
    cleartext."""

    def __init__(self, *, tls: bool, limits: httpx.Limits) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, http1=tls, http2=True, limits=limits, trust_env=False)
        self._pool = _Pool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=tls,
            http2=True,
        )


def _aiohttp_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    from httpx_aiohttp import AiohttpTransport

    def session() -> aiohttp.ClientSession:
        # Built on first use, in the running loop; limits and proxies as the aiohttp client's.
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=settings.pool_size,
                limit_per_host=settings.pool_size,
                ttl_dns_cache=60,
            ),
            trust_env=False,
        )

    return AiohttpTransport(trust_env=False, client=session)


def _transport(
    flavour: Flavour, settings: Settings, limits: httpx.Limits
) -> httpx.AsyncBaseTransport | None:
    if flavour == "httpx-http2":
        return _Http2Transport(tls=settings.upstream_base.startswith("https:"), limits=limits)
    if flavour == "httpx-aiohttp":
        return _aiohttp_transport(settings)
    return None  # httpx's own HTTP/1.1 transport, built by the client from its arguments


class HttpxUpstream:
    """OpenRouter over one pooled ``httpx.AsyncClient``; ``flavour`` picks its transport."""

    def __init__(
        self,
        settings: Settings,
        *,
        flavour: Flavour = "httpx",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._max_bytes = settings.max_upstream_response_bytes
        limits = httpx.Limits(
            max_connections=settings.pool_size,
            max_keepalive_connections=settings.pool_size,
        )
        self._client = httpx.AsyncClient(
            base_url=settings.upstream_base + "/",
            headers=default_headers(settings),
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.connect_timeout,
            ),
            limits=limits,
            follow_redirects=False,
            trust_env=False,
            transport=transport or _transport(flavour, settings, limits),
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
        except (httpx.TransportError, aiohttp.ClientError) as error:
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
                    headers=stream_headers(api_key),
                )
                response = await self._client.send(request, stream=True)
                started = True
                try:
                    if response.status_code >= 400:
                        raw = await self._read_bounded(response)
                        raise error_reply(
                            response.status_code, raw, response.headers.get("retry-after")
                        )
                    yield sse_events(
                        (response.status_code, response.headers.get("content-type", "")),
                        lambda: self._read_bounded(response),
                        response.aiter_bytes(),
                        self._max_bytes,
                    )
                finally:
                    await response.aclose()
        except TimeoutError:
            raise timed_out(seconds) from None
        except (httpx.TransportError, aiohttp.ClientError) as error:
            raise _transport_error(error, streaming=started) from None
