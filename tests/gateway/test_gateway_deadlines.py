"""The caller's deadline and cancellation reach the upstream HTTP request.

The slow upstream is the emulator's ``slow-first-byte`` fault (chosen by model suffix; its delay
defaults to 3 s, since callers cannot set upstream headers). Disconnects are observed by a small
recording upstream (aiohttp, in a thread of this process) behind a second gateway process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from gateway_e2e import Emulator, Exchange, Gateway, RecordingUpstream, faulty, seed_request

from routerpc import AsyncRouterClient, DeadlineExceededError, RouterClient

pytestmark = pytest.mark.e2e

DISCONNECT_BOUND_S = 3.0
"""Upper bound for the upstream to see the gateway hang up (not a timing-precision check)."""


def _one(recorder: RecordingUpstream) -> Exchange:
    exchanges = recorder.snapshot()
    assert len(exchanges) == 1, exchanges
    return exchanges[0]


def _ended(exchanges: list[Exchange]) -> bool:
    return len(exchanges) == 1 and exchanges[0].ended is not None


def _started(exchanges: list[Exchange]) -> bool:
    return len(exchanges) == 1


def test_one_second_deadline_on_a_slow_upstream_fails_deadline_exceeded_promptly(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    started = time.monotonic()
    with expect_error(DeadlineExceededError) as info:
        client.chat(faulty("slow-first-byte"), timeout=1)
    elapsed = time.monotonic() - started

    assert elapsed < 3.0, f"took {elapsed:.2f}s; the emulator's delay is 3 s"
    assert elapsed >= 0.5
    # Usually the gateway's own UPSTREAM_TIMEOUT status (it keeps a 50 ms margin), but the
    # transport deadline may win that race on a loaded machine; only the code is contractual.
    assert info.value.reason in ("UPSTREAM_TIMEOUT", "")
    assert len(upstream.requests()) == 1


def test_one_second_deadline_on_a_slow_stream_fails_deadline_exceeded_promptly(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    started = time.monotonic()
    with expect_error(DeadlineExceededError):
        list(client.stream_chat(faulty("slow-first-byte"), timeout=1))

    assert time.monotonic() - started < 3.0


def test_deadline_expiry_hangs_up_the_upstream_request(
    recorded_gateway: Gateway, recorder: RecordingUpstream, expect_error: Any
) -> None:
    with RouterClient(recorded_gateway.target, retry_unavailable=False) as client:
        called = time.monotonic()
        with expect_error(DeadlineExceededError):
            client.chat(seed_request(), timeout=1)

    assert recorder.wait_for(_ended, DISCONNECT_BOUND_S), recorder.snapshot()
    exchange = _one(recorder)
    assert exchange.outcome in ("cancelled", "disconnected")
    assert exchange.ended is not None
    assert exchange.ended - called < 1.0 + DISCONNECT_BOUND_S


async def test_cancelling_a_unary_call_hangs_up_the_upstream_request(
    recorded_gateway: Gateway, recorder: RecordingUpstream
) -> None:
    async with AsyncRouterClient(recorded_gateway.target, timeout=30) as client:
        task = asyncio.create_task(client.chat(seed_request()))
        assert await asyncio.to_thread(recorder.wait_for, _started, 10.0), "never arrived"
        assert _one(recorder).ended is None, "the upstream request must still be running"

        cancelled = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert await asyncio.to_thread(recorder.wait_for, _ended, DISCONNECT_BOUND_S)
    exchange = _one(recorder)
    assert exchange.outcome in ("cancelled", "disconnected")
    assert exchange.ended is not None
    assert exchange.ended - cancelled < DISCONNECT_BOUND_S


async def test_leaving_a_stream_early_hangs_up_the_upstream_stream(
    recorded_gateway: Gateway, recorder: RecordingUpstream
) -> None:
    async with AsyncRouterClient(recorded_gateway.target, timeout=30) as client:
        stream = client.stream_chat(seed_request())
        first = await asyncio.wait_for(anext(stream), 10)
        assert first.text == "partial"
        assert _one(recorder).ended is None, "the upstream stream must still be running"

        cancelled = time.monotonic()
        await stream.aclose()  # what leaving an ``async for`` early does

        assert await asyncio.to_thread(recorder.wait_for, _ended, DISCONNECT_BOUND_S)
    exchange = _one(recorder)
    assert exchange.body["stream"] is True
    assert exchange.outcome in ("cancelled", "disconnected")
    assert exchange.ended is not None
    assert exchange.ended - cancelled < DISCONNECT_BOUND_S


def test_blocking_client_breaking_out_of_a_stream_hangs_up_the_upstream_stream(
    recorded_gateway: Gateway, recorder: RecordingUpstream
) -> None:
    with RouterClient(recorded_gateway.target, timeout=30) as client:
        stream = client.stream_chat(seed_request())
        assert next(stream).text == "partial"
        cancelled = time.monotonic()
        stream.close()

        assert recorder.wait_for(_ended, DISCONNECT_BOUND_S), recorder.snapshot()
    exchange = _one(recorder)
    assert exchange.outcome in ("cancelled", "disconnected")
    assert exchange.ended is not None
    assert exchange.ended - cancelled < DISCONNECT_BOUND_S
