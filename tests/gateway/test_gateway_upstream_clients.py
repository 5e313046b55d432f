"""Every ``--upstream-client`` keeps the same guarantees, checked on the client itself.

The gateway's :class:`Upstream` for each client (``create_upstream``, as ``routerpc serve``
builds it) is driven in this process against a small upstream on 127.0.0.1: an aiohttp server
for the HTTP/1.1 clients, the HTTP/2-only server of h2_upstream.py for ``httpx-http2``. Both
answer the same models (``HANG``, ``BIG``, ``REDIRECT``, ``CUT``), so each test runs unchanged
against each client: reply size bound, streamed event size bound, redirects not followed, proxy
variables ignored, a refused connection and a cut stream classified as UNAVAILABLE, a trickling
reply bounded by the call budget, and the connection pool bounded by ``pool_size``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiohttp import web
from h2_upstream import BIG, BIG_BYTES, CUT, HANG, REDIRECT, H2Upstream, echo_text

from routerpc_gateway.config import Settings
from routerpc_gateway.errors import GatewayError
from routerpc_gateway.upstream import Upstream, create_upstream

CLIENTS = ["aiohttp", "httpx", "httpx-http2", "httpx-aiohttp"]
HTTP1_CLIENTS = [c for c in CLIENTS if c != "httpx-http2"]
LIMIT = 4096
"""``max_upstream_response_bytes`` in these tests; BIG replies are twice that."""
GATHER = "test/gather"
"""HTTP/1.1 server model: answered once ``gather`` such requests are in flight (or after 1 s)."""


def _body(model: str, *, stream: bool = False, text: str = "Hello!") -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def _settings(base_url: str, client: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "upstream_url": base_url,
        "upstream_client": client,
        "api_key": "sk-or-v1-test-not-a-secret",
        "max_upstream_response_bytes": LIMIT,
        **extra,
    }
    return Settings(**values)


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "gen-h1",
        "model": model,
        "provider": "H1Upstream",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
    }


def _event(delta: dict[str, Any]) -> bytes:
    chunk = {"id": "gen-h1", "choices": [{"index": 0, "delta": delta}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


@dataclass
class Http1Upstream:
    """The HTTP/1.1 counterpart of h2_upstream.H2Upstream's models, in the test's own loop."""

    gather: int = 3
    paths: list[str] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    base_url: str = ""
    _gathered: asyncio.Event = field(default_factory=asyncio.Event)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        body = await request.json()
        model, stream = body["model"], bool(body.get("stream"))
        if model == GATHER:
            return await self._gather(body)
        if model == REDIRECT:
            raise web.HTTPTemporaryRedirect("/api/v1/redirected")
        if not stream:
            if model == HANG:
                await asyncio.sleep(30)
            text = "x" * BIG_BYTES if model == BIG else echo_text(body)
            return web.json_response(_completion(model, text))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if model == BIG:
            await response.write(_event({"content": "x" * BIG_BYTES}))
        elif model == CUT:
            await response.write(_event({"content": "partial"}))
            assert request.transport is not None
            request.transport.abort()
            return response
        elif model == HANG:
            await response.write(_event({"content": "partial"}))
            for _ in range(600):
                await asyncio.sleep(0.05)
                await response.write(b": keep-alive\n\n")
        else:
            await response.write(_event({"content": echo_text(body)}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _gather(self, body: Any) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight >= self.gather:
            self._gathered.set()
        try:
            # Never reached when the client lets fewer calls through: then each waits 1 s.
            await asyncio.wait_for(self._gathered.wait(), 1.0)
        except TimeoutError:
            pass
        finally:
            self.in_flight -= 1
        return web.json_response(_completion(GATHER, echo_text(body)))

    async def other(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        return web.json_response({"error": {"code": 404, "message": "not here"}}, status=404)


@pytest.fixture
async def http1_server() -> AsyncIterator[Http1Upstream]:
    upstream = Http1Upstream()
    app = web.Application()
    app.router.add_post("/api/v1/chat/completions", upstream.chat)
    app.router.add_route("*", "/{tail:.*}", upstream.other)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    try:
        yield upstream
    finally:
        await runner.cleanup()


@dataclass
class Target:
    """One client in front of the upstream that speaks its protocol."""

    client: str
    base_url: str
    h2: H2Upstream | None
    http1: Http1Upstream | None

    def requested_paths(self) -> list[str]:
        if self.h2 is not None:
            return [e.path for e in self.h2.snapshot()]
        assert self.http1 is not None
        return list(self.http1.paths)

    def upstream(self, **extra: Any) -> Upstream:
        return create_upstream(_settings(self.base_url, self.client, **extra))


@pytest.fixture(params=CLIENTS)
async def target(
    request: pytest.FixtureRequest, h2_upstream: H2Upstream, http1_server: Http1Upstream
) -> Target:
    client: str = request.param
    if client == "httpx-http2":
        h2_upstream.clear()
        return Target(client, h2_upstream.base_url, h2_upstream, None)
    return Target(client, http1_server.base_url, None, http1_server)


async def _drain(upstream: Upstream, body: bytes, seconds: float) -> list[str]:
    async with upstream.stream_chat(body, seconds=seconds) as events:
        return [event.data async for event in events]


async def _failure(upstream: Upstream, call: Callable[[Upstream], Awaitable[Any]]) -> GatewayError:
    """The gateway error ``call(upstream)`` raises; the client is closed either way."""
    try:
        with pytest.raises(GatewayError) as info:
            await call(upstream)
    finally:
        await upstream.aclose()
    return info.value


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_every_client_answers_a_unary_call_and_a_stream(target: Target) -> None:
    upstream = target.upstream()
    try:
        reply = await upstream.chat(_body("test/echo"), seconds=10)
        events = await _drain(upstream, _body("test/echo", stream=True), 10)
    finally:
        await upstream.aclose()

    assert reply["choices"][0]["message"]["content"] == "Echo: Hello!"
    assert events[-1] == "[DONE]"
    choices = [c for e in events[:-1] for c in json.loads(e)["choices"]]
    assert "".join(c["delta"].get("content", "") for c in choices) == "Echo: Hello!"


async def test_reply_over_the_size_limit_is_resource_exhausted(target: Target) -> None:
    error = await _failure(
        target.upstream(), lambda upstream: upstream.chat(_body(BIG), seconds=10)
    )

    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "UPSTREAM_RESPONSE_TOO_LARGE"


async def test_streamed_event_over_the_size_limit_is_resource_exhausted(target: Target) -> None:
    error = await _failure(
        target.upstream(), lambda upstream: _drain(upstream, _body(BIG, stream=True), 10)
    )

    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_redirect_is_an_error_and_is_never_followed(target: Target) -> None:
    error = await _failure(
        target.upstream(), lambda upstream: upstream.chat(_body(REDIRECT), seconds=10)
    )

    assert error.metadata.get("httpStatus") == "307"
    assert "/api/v1/redirected" not in target.requested_paths()
    assert target.requested_paths() == ["/api/v1/chat/completions"]


async def test_proxy_variables_in_the_environment_are_ignored(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    upstream = target.upstream()
    try:
        reply = await upstream.chat(_body("test/echo"), seconds=10)
    finally:
        await upstream.aclose()

    assert reply["choices"][0]["message"]["content"] == "Echo: Hello!"


@pytest.mark.parametrize("client", CLIENTS)
async def test_refused_connection_is_unavailable_unreachable(client: str) -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/api/v1"
    error = await _failure(
        create_upstream(_settings(base_url, client)),
        lambda upstream: upstream.chat(_body("test/echo"), seconds=10),
    )

    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.reason == "UPSTREAM_UNREACHABLE"


async def test_stream_cut_midway_is_unavailable_interrupted(target: Target) -> None:
    error = await _failure(
        target.upstream(), lambda upstream: _drain(upstream, _body(CUT, stream=True), 10)
    )

    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert error.reason == "STREAM_INTERRUPTED"


async def test_trickling_stream_is_bounded_by_the_call_budget_not_by_read_timeouts(
    target: Target,
) -> None:
    # Keep-alives every 50 ms never let the 120 s read timeout fire: only the budget ends it.
    error = await _failure(
        target.upstream(read_timeout=120.0),
        lambda upstream: _drain(upstream, _body(HANG, stream=True), 0.5),
    )

    assert error.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert error.reason == "UPSTREAM_TIMEOUT"


async def test_http2_answer_that_ends_the_stream_before_the_whole_body_was_sent_is_read(
    h2_upstream: H2Upstream,
) -> None:
    """RFC 9113 section 8.1: an upstream may answer early and reset the stream with NO_ERROR.
    The body is larger than the initial flow-control window, so the client is still sending
    (waiting for window) when the answer and the reset arrive."""
    h2_upstream.clear()
    h2_upstream.answer_early = True
    upstream = create_upstream(_settings(h2_upstream.base_url, "httpx-http2"))
    try:
        reply = await upstream.chat(_body("test/echo", text="y" * 100_000), seconds=10)
    finally:
        h2_upstream.answer_early = False
        await upstream.aclose()

    assert reply["choices"][0]["message"]["content"] == "Early!"
    assert [e.path for e in h2_upstream.snapshot()] == ["/api/v1/chat/completions"]


@pytest.mark.parametrize("client", HTTP1_CLIENTS)
@pytest.mark.parametrize("pool_size", [1, 3])
async def test_pool_size_bounds_upstream_connections_and_concurrent_http1_requests(
    client: str, pool_size: int, http1_server: Http1Upstream
) -> None:
    calls = 3
    http1_server.gather = calls
    upstream = create_upstream(_settings(http1_server.base_url, client, pool_size=pool_size))
    try:
        replies = await asyncio.gather(
            *(upstream.chat(_body(GATHER), seconds=15) for _ in range(calls))
        )
    finally:
        await upstream.aclose()

    assert len(replies) == calls
    assert http1_server.max_in_flight == min(pool_size, calls)
    assert len(http1_server.peers) == min(pool_size, calls)
