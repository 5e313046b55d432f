"""``--upstream-client httpx-http2`` end to end: a real gateway process talking HTTP/2 (h2c with
prior knowledge, over cleartext ``http://``) to the HTTP/2-only upstream of h2_upstream.py.

That upstream parses nothing but HTTP/2 and records every request with its stream id and how it
ended, so these tests see on the wire what the HTTP/1.1 suite sees through the emulator: the
call arrived (over HTTP/2), was answered, and was reset (RST_STREAM) when the caller left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_e2e import (
    Emulator,
    Gateway,
    seed_request,
    single_attempt_gateway,
)
from h2_upstream import HANG, H2Exchange, H2Upstream, echo_text, status_model

from routerpc import (
    AsyncRouterClient,
    DeadlineExceededError,
    FinishReason,
    ResourceExhaustedError,
    RouterClient,
    UnavailableError,
)

pytestmark = pytest.mark.e2e

RESET_BOUND_S = 5.0
"""Upper bound for the upstream to see a stream reset (not a timing-precision check)."""


@pytest.fixture(scope="module")
def h2_gateway(logs_dir: Path, h2_upstream: H2Upstream, canary_key: str) -> Iterator[Gateway]:
    with single_attempt_gateway(
        logs_dir / "gateway-httpx-http2.log", "httpx-http2", h2_upstream.base_url, canary_key
    ) as gw:
        yield gw


@pytest.fixture
def h2(h2_upstream: H2Upstream) -> H2Upstream:
    """The shared HTTP/2 upstream with its records cleared for this test."""
    h2_upstream.clear()
    return h2_upstream


@pytest.fixture
def h2_client(h2_gateway: Gateway) -> Iterator[RouterClient]:
    with RouterClient(
        h2_gateway.target, timeout=15, validate=False, retry_unavailable=False
    ) as router:
        yield router


def _chats(exchanges: list[H2Exchange]) -> list[H2Exchange]:
    return [e for e in exchanges if e.path == "/api/v1/chat/completions"]


def _all_chats_reset(count: int) -> Callable[[list[H2Exchange]], bool]:
    def check(exchanges: list[H2Exchange]) -> bool:
        chats = _chats(exchanges)
        return len(chats) == count and all(e.outcome == "reset" for e in chats)

    return check


def test_unary_chat_goes_upstream_over_http2_with_the_key_and_returns_the_completion(
    h2_client: RouterClient, h2: H2Upstream, canary_key: str
) -> None:
    result = h2_client.chat(seed_request())

    assert result.text == "Echo: Hello!"
    assert result.finish_reason is FinishReason.STOP
    assert result.usage.total_tokens == 7
    (chat,) = h2.chats()
    assert chat.protocol == "HTTP/2"
    assert chat.headers[":scheme"] == "http"
    assert chat.headers[":method"] == "POST"
    assert chat.headers["authorization"] == f"Bearer {canary_key}"
    assert chat.body["model"] == "openai/gpt-4o"
    assert "stream" not in chat.body
    assert chat.outcome == "completed"
    assert h2.rejected == [], "the gateway opened a connection that did not speak HTTP/2"


def test_stream_over_http2_relays_every_chunk_in_order_and_ends_with_usage(
    h2_client: RouterClient, h2: H2Upstream
) -> None:
    chunks = list(h2_client.stream_chat(seed_request(text="one two three")))

    assert "".join(c.text for c in chunks) == echo_text(
        {"messages": [{"content": "one two three"}]}
    )
    assert sum(1 for c in chunks if c.text) == 4, "one chunk per word"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 7
    assert any(c.finish_reason is FinishReason.STOP for c in chunks)
    (chat,) = h2.chats()
    assert chat.protocol == "HTTP/2"
    assert chat.body["stream"] is True
    assert chat.outcome == "completed"


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
def test_upstream_429_over_http2_is_resource_exhausted_with_its_retry_delay(
    streaming: bool, h2_client: RouterClient, h2: H2Upstream, expect_error: Any
) -> None:
    request = seed_request(status_model(429))
    with expect_error(ResourceExhaustedError) as info:
        if streaming:
            list(h2_client.stream_chat(request))
        else:
            h2_client.chat(request)

    assert info.value.retry_delay == 2.0
    assert info.value.metadata["httpStatus"] == "429"
    assert info.value.message == "h2 upstream says 429"
    assert len(h2.chats()) == 1


def test_deadline_on_a_hanging_http2_upstream_is_deadline_exceeded_and_resets_the_stream(
    h2_client: RouterClient, h2: H2Upstream, expect_error: Any
) -> None:
    with expect_error(DeadlineExceededError):
        h2_client.chat(seed_request(HANG), timeout=1)

    assert h2.wait_for(_all_chats_reset(1), RESET_BOUND_S), h2.snapshot()


def test_deadline_on_a_trickling_http2_stream_is_deadline_exceeded_and_resets_it(
    h2_client: RouterClient, h2: H2Upstream, expect_error: Any
) -> None:
    with expect_error(DeadlineExceededError):
        list(h2_client.stream_chat(seed_request(HANG), timeout=1))

    assert h2.wait_for(_all_chats_reset(1), RESET_BOUND_S), h2.snapshot()


async def test_cancelling_a_unary_call_resets_its_upstream_http2_stream(
    h2_gateway: Gateway, h2: H2Upstream
) -> None:
    async with AsyncRouterClient(h2_gateway.target, timeout=30) as client:
        task = asyncio.create_task(client.chat(seed_request(HANG)))
        arrived = await asyncio.to_thread(h2.wait_for, lambda e: len(_chats(e)) == 1, 10.0)
        assert arrived, "the call never reached the upstream"
        assert h2.chats()[0].outcome == "running"

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert await asyncio.to_thread(h2.wait_for, _all_chats_reset(1), RESET_BOUND_S)


async def test_leaving_a_stream_early_resets_its_upstream_http2_stream_and_keeps_the_connection(
    h2_gateway: Gateway, h2: H2Upstream
) -> None:
    async with AsyncRouterClient(h2_gateway.target, timeout=30) as client:
        stream = client.stream_chat(seed_request(HANG))
        first = await asyncio.wait_for(anext(stream), 10)
        assert first.text == "partial"
        assert h2.chats()[0].outcome == "running"

        await stream.aclose()  # what leaving an ``async for`` early does
        assert await asyncio.to_thread(h2.wait_for, _all_chats_reset(1), RESET_BOUND_S)

        # The reset ended one stream, not the connection: the next call rides the same one.
        result = await client.chat(seed_request())
    assert result.text == "Echo: Hello!"
    hung, answered = h2.chats()
    assert answered.outcome == "completed"
    assert answered.connection == hung.connection


async def test_concurrent_streams_share_one_http2_connection_with_pool_size_one(
    start_gateway: Callable[..., Gateway], h2: H2Upstream, canary_key: str
) -> None:
    gateway = start_gateway(
        "gateway-httpx-http2-pool-1",
        "--upstream-client",
        "httpx-http2",
        "--pool-size",
        "1",
        "--max-attempts",
        "1",
        upstream_url=h2.base_url,
        key=canary_key,
    )
    streams = 4
    async with AsyncRouterClient(gateway.target, timeout=30) as client:
        opened = [client.stream_chat(seed_request(HANG)) for _ in range(streams)]
        firsts = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in opened)), 15)
        assert [f.text for f in firsts] == ["partial"] * streams

        chats = h2.chats()
        assert len(chats) == streams
        assert all(e.outcome == "running" for e in chats), "all must be open at once"
        assert len({e.connection for e in chats}) == 1
        assert len({e.stream_id for e in chats}) == streams

        for stream in opened:
            await stream.aclose()
        assert await asyncio.to_thread(h2.wait_for, _all_chats_reset(streams), RESET_BOUND_S)


def test_http2_client_against_an_http1_only_upstream_is_unavailable_not_a_hang(
    start_gateway: Callable[..., Gateway], upstream: Emulator, expect_error: Any
) -> None:
    """Cleartext HTTP/2 is prior knowledge: an upstream that only speaks HTTP/1.1 refuses it."""
    gateway = start_gateway(
        "gateway-httpx-http2-vs-http1",
        "--upstream-client",
        "httpx-http2",
        "--max-attempts",
        "1",
        upstream_url=upstream.base_url,
        key="sk-or-v1-not-a-canary",
    )
    with (
        RouterClient(gateway.target, timeout=15, retry_unavailable=False) as client,
        expect_error(UnavailableError) as info,
    ):
        client.chat(seed_request())

    assert info.value.reason == "UPSTREAM_UNREACHABLE"
    assert upstream.requests() == []
