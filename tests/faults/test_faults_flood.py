"""A flood past the concurrency bound: shed at once, never queued without bound, nothing hangs.

The gateway allows 4 upstream calls at once and 4 waiting (``--max-concurrent-upstream 4
--max-queued 4``). 100 calls arrive together (half unary, half streams), each to an upstream that
takes 3 s before its first byte (the emulator's ``slow-first-byte``). Exactly 4 run, 4 wait for a
slot and run next (about 6 s in all), and the other 92 must fail at once with RESOURCE_EXHAUSTED,
reason GATEWAY_OVERLOADED and a retry hint, without ever reaching the upstream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import grpc.aio
import pytest
from faults_support import Caller, rss_kib, threads
from gateway_e2e import Emulator, Gateway, faulty, seed_request

from routerpc import error_from_rpc, pb

pytestmark = pytest.mark.e2e

CONCURRENT, QUEUED, FLOOD = 4, 4, 100
DEADLINE_S = 20.0
SHED_S = 1.0
"""A shed call must fail within this long of being sent."""
UPSTREAM_DELAY_S = 3.0
"""The emulator's slow-first-byte delay."""


@pytest.fixture
def bounded_gateway(start_gateway: Callable[..., Gateway], emulator: Emulator) -> Gateway:
    return start_gateway(
        "flood",
        "--max-concurrent-upstream",
        str(CONCURRENT),
        "--max-queued",
        str(QUEUED),
        upstream_url=emulator.base_url,
    )


async def _one(
    stub: pb.RouterServiceStub, caller: Caller, streaming: bool
) -> tuple[grpc.StatusCode, float, str, float | None]:
    """(code, seconds, reason, retry delay) of one slow call."""
    request = faulty("slow-first-byte").proto
    started = time.monotonic()
    try:
        if streaming:
            call = stub.StreamChat(
                pb.StreamChatRequest(request=request), timeout=DEADLINE_S, metadata=caller.metadata
            )
            chunks = [chunk async for chunk in call]
            assert chunks, "an OK stream relayed nothing"
        else:
            await stub.Chat(request, timeout=DEADLINE_S, metadata=caller.metadata)
    except grpc.aio.AioRpcError as failure:
        caller.record_aio(failure)
        error = error_from_rpc(failure)
        return failure.code(), time.monotonic() - started, error.reason, error.retry_delay
    return grpc.StatusCode.OK, time.monotonic() - started, "", None


async def test_a_flood_past_the_bound_is_shed_at_once_and_the_rest_completes(
    bounded_gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    pid = bounded_gateway.process.pid
    rss_before, threads_before = rss_kib(pid), threads(pid)
    async with grpc.aio.insecure_channel(bounded_gateway.target) as channel:
        await channel.channel_ready()
        stub = pb.RouterServiceStub(channel)
        flood = [_one(stub, caller, streaming=n % 2 == 1) for n in range(FLOOD)]
        started = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*flood), DEADLINE_S + 5)
        took = time.monotonic() - started

    ok = [r for r in results if r[0] == grpc.StatusCode.OK]
    shed = [r for r in results if r[0] == grpc.StatusCode.RESOURCE_EXHAUSTED]
    others = [r for r in results if r not in ok and r not in shed]
    assert others == [], f"calls ended otherwise: {others}"
    assert len(ok) == CONCURRENT + QUEUED, f"{len(ok)} succeeded"
    assert len(shed) == FLOOD - CONCURRENT - QUEUED
    assert all(reason == "GATEWAY_OVERLOADED" for _, _, reason, _ in shed)
    assert all(delay == 1.0 for *_, delay in shed), "every shed call carries a retry hint"
    slowest_shed = max(seconds for _, seconds, _, _ in shed)
    assert slowest_shed < SHED_S, f"a shed call took {slowest_shed:.2f}s: shedding must not wait"
    # The queued calls ran after the first ones: two upstream delays, not more.
    assert max(seconds for _, seconds, _, _ in ok) < 2 * UPSTREAM_DELAY_S + 2.0
    assert took < DEADLINE_S, "nothing may hang until its deadline"
    assert len(upstream.requests()) == CONCURRENT + QUEUED, "shed calls never reach upstream"

    rss_growth = rss_kib(pid) - rss_before
    assert rss_growth < 64 * 1024, f"the flood grew the gateway by {rss_growth} KiB"
    assert threads(pid) <= threads_before + 4
    # The gateway keeps serving.
    assert caller.unary(bounded_gateway.target, seed_request().proto).ok
    assert caller.stream(bounded_gateway.target, seed_request().proto).ok
