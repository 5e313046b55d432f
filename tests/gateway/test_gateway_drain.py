"""SIGTERM drains: calls in flight finish OK, new ones are refused, the process exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
import pytest
from gateway_e2e import faulty, seed_request
from grpc_health.v1 import health_pb2, health_pb2_grpc

from routerpc import AsyncRouterClient, RouterError, UnavailableError

pytestmark = pytest.mark.e2e

GRACE_S = 10.0
WORDS = "one two three four five six seven eight"


async def _eventually(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


async def _health(target: str) -> str:
    """The serving status, or the code the health call failed with."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        except grpc.aio.AioRpcError as error:
            return error.code().name
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def _health_until_refused(target: str, timeout_s: float) -> list[str]:
    """Health statuses seen from the start of the drain until the server refuses the call."""
    seen = [await _health(target)]
    deadline = time.monotonic() + timeout_s
    while seen[-1] != "UNAVAILABLE" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        seen.append(await _health(target))
    return seen


async def test_sigterm_lets_in_flight_calls_finish_refuses_new_ones_and_exits_zero(
    start_emulator: Any, start_gateway: Any, canary_key: str
) -> None:
    emulator = start_emulator("emulator-slow-stream", "--stream-delay-ms", "250")
    gateway = start_gateway(
        "gateway-drain",
        "--grace-period",
        str(GRACE_S),
        upstream_url=emulator.base_url,
        key=canary_key,
    )

    async with AsyncRouterClient(gateway.target, timeout=30) as client:
        unary = asyncio.create_task(client.chat(faulty("slow-first-byte", WORDS)))
        stream = client.stream_chat(seed_request(text=WORDS))
        before = [await asyncio.wait_for(anext(stream), 10)]
        assert await _eventually(lambda: len(emulator.requests()) == 2, 10), (
            "both calls must be in flight upstream"
        )
        assert not unary.done()

        signalled = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        assert await _eventually(lambda: "draining" in gateway.log_text(), 5), gateway.log_text()
        health = await _health_until_refused(gateway.target, 5)
        assert health[-1] == "UNAVAILABLE", f"health during the drain: {health}"
        assert "SERVING" not in health[1:], f"health during the drain: {health}"
        assert "NOT_SERVING" in health, f"probes must see NOT_SERVING before refusal: {health}"

        async with AsyncRouterClient(
            gateway.target, timeout=3, retry_unavailable=False
        ) as late_client:
            with pytest.raises(RouterError) as refused:
                await late_client.chat(seed_request())
        assert isinstance(refused.value, UnavailableError), refused.value
        assert len(emulator.requests()) == 2, "the refused call must not reach the upstream"
        assert not unary.done(), "the drain must not have cut the in-flight unary call"

        after = [chunk async for chunk in stream]
        result = await asyncio.wait_for(unary, 10)

    assert after, "the stream must have been in flight when SIGTERM arrived"
    chunks = before + after
    assert "".join(c.text for c in chunks) == f"Echo: {WORDS}"
    assert chunks[-1].usage is not None
    assert result.text == f"Echo: {WORDS}"

    code = await asyncio.to_thread(gateway.process.wait, GRACE_S + 5)
    exited = time.monotonic() - signalled
    assert code == 0, gateway.log_text()
    assert exited < GRACE_S, f"exited {exited:.1f}s after SIGTERM; it should not wait out the grace"
    log = gateway.log_text()
    assert "stopped" in log
    assert "Traceback" not in log
