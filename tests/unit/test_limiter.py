"""The upstream concurrency limiter: slots, a first-come bounded queue, shedding, and no slot
lost or doubled when a wait ends by timeout or cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from routerpc_gateway.errors import GatewayError
from routerpc_gateway.resilience import ConcurrencyLimiter


async def _hold(limiter: ConcurrencyLimiter, release: asyncio.Event, seconds: float = 5.0) -> None:
    async with limiter.slot(seconds):
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_slots_up_to_the_bound_are_taken_without_waiting() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=3, max_queued=0)
    release = asyncio.Event()
    holders = [asyncio.create_task(_hold(limiter, release)) for _ in range(3)]
    await _settle()
    assert limiter.in_flight == 3
    release.set()
    await asyncio.gather(*holders)
    assert limiter.in_flight == 0


async def test_a_full_queue_sheds_at_once_with_a_retry_hint() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=1, retry_hint=2.0)
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(limiter, release))
    queued = asyncio.create_task(_hold(limiter, release))
    await _settle()
    with pytest.raises(GatewayError) as shed:
        async with limiter.slot(5.0):
            pytest.fail("a slot past the queue bound was granted")
    assert shed.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert shed.value.reason == "GATEWAY_OVERLOADED"
    assert shed.value.retry_after == 2.0
    assert limiter.shed_total == 1
    release.set()
    await asyncio.gather(holder, queued)
    assert limiter.in_flight == 0


async def test_released_slots_go_to_waiters_first_come_first_served() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=10)
    order: list[int] = []
    gates = [asyncio.Event() for _ in range(4)]

    async def call(number: int) -> None:
        async with limiter.slot(5.0):
            order.append(number)
            await gates[number].wait()

    tasks = []
    for number in range(4):
        tasks.append(asyncio.create_task(call(number)))
        await _settle()
    for gate in gates:
        gate.set()
        await _settle()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert limiter.in_flight == 0


async def _taken(limiter: ConcurrencyLimiter) -> Any:
    """A slot held by the test itself: released at will, with no await that yields."""
    held = limiter.slot(5.0)
    await held.__aenter__()
    return held


async def _held_and_queued(limiter: ConcurrencyLimiter) -> tuple[Any, asyncio.Task[None]]:
    """The one slot held by the test, and a call queued behind it."""
    held = await _taken(limiter)
    queued = asyncio.create_task(_hold(limiter, asyncio.Event()))
    await _settle()
    return held, queued


async def test_a_wait_longer_than_the_deadline_is_shed_and_leaves_no_trace() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=5)
    held = await _taken(limiter)
    with pytest.raises(GatewayError) as shed:
        async with limiter.slot(0.05):
            pytest.fail("the slot was granted past its wait")
    assert shed.value.reason == "GATEWAY_OVERLOADED"
    await held.__aexit__(None, None, None)
    assert limiter.in_flight == 0
    async with limiter.slot(0.0):  # the queue is empty again: a free slot at once
        assert limiter.in_flight == 1


async def test_a_cancelled_waiter_gives_up_its_place_and_takes_no_slot() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=1)
    held, waiter = await _held_and_queued(limiter)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    queued_again = asyncio.create_task(_hold(limiter, asyncio.Event()))
    await _settle()  # the queue of one has room again: this call waits rather than shed
    assert not queued_again.done()
    queued_again.cancel()
    await held.__aexit__(None, None, None)
    with pytest.raises(asyncio.CancelledError):
        await queued_again
    assert limiter.in_flight == 0


async def test_a_slot_handed_over_as_its_waiter_is_cancelled_passes_to_the_next() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=5)
    held, doomed = await _held_and_queued(limiter)
    later_release = asyncio.Event()
    later = asyncio.create_task(_hold(limiter, later_release))
    await _settle()
    await held.__aexit__(None, None, None)  # hands the slot to `doomed`, which has not run
    doomed.cancel()  # and is cancelled before it can use it
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await _settle()
    assert limiter.in_flight == 1  # `later` holds the slot `doomed` passed on
    later_release.set()
    await asyncio.wait_for(later, 1.0)
    assert limiter.in_flight == 0


async def test_a_cancelled_waiter_dropped_by_a_release_ends_cancelled() -> None:
    limiter = ConcurrencyLimiter(max_concurrent=1, max_queued=5)
    held, doomed = await _held_and_queued(limiter)
    doomed.cancel()  # its queue place is cancelled at once...
    await held.__aexit__(None, None, None)  # ...and a release drops it before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert limiter.in_flight == 0
    async with limiter.slot(0.0):
        assert limiter.in_flight == 1
