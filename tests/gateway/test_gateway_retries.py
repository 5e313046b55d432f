"""Retries: only before anything was relayed, only for retryable failures, within the deadline
and the retry budget, with the attempt count reported to the caller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, faulty, free_port, launch_gateway, stop_process

from routerpc import AsyncRouterClient, Quantization, ResourceExhaustedError, Role, pb
from routerpc._errors import error_from_rpc

pytestmark = pytest.mark.e2e

ATTEMPTS = "routerpc-attempts"


@pytest.fixture
def retrying_gateway(
    tmp_path: Path, emulator: Emulator, canary_key: str
) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def start(*args: str, upstream_url: str | None = None) -> Gateway:
        gateway = launch_gateway(
            tmp_path / f"retrying-{len(started)}.log",
            "--workers",
            "1",
            "--retry-base-delay",
            "0.02",
            *args,
            upstream_url=upstream_url or emulator.base_url,
            key=canary_key,
        )
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        stop_process(gateway.process)


def _trailer(call: Any) -> int:
    return int(dict(call.trailing_metadata())[ATTEMPTS])


def _unary(gateway: Gateway, request: pb.ChatRequest, timeout: float = 15) -> Any:
    with grpc.insecure_channel(gateway.target) as channel:
        stub = pb.RouterServiceStub(channel)
        try:
            _, call = stub.Chat.with_call(request, timeout=timeout)
        except grpc.RpcError as error:
            return error
        return call


def _stream(gateway: Gateway, request: pb.ChatRequest, timeout: float = 15) -> tuple[Any, int]:
    with grpc.insecure_channel(gateway.target) as channel:
        call = pb.RouterServiceStub(channel).StreamChat(
            pb.StreamChatRequest(request=request), timeout=timeout
        )
        chunks = 0
        try:
            for _ in call:
                chunks += 1
        except grpc.RpcError as error:
            return error, chunks
        return call, chunks


def test_a_failure_before_the_reply_is_retried_until_success(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    gateway = retrying_gateway()
    call = _unary(gateway, faulty("fail-first-2").proto)
    assert call.code() == grpc.StatusCode.OK
    assert _trailer(call) == 3
    assert len(upstream.requests()) == 3


def test_a_stream_that_fails_before_its_first_chunk_is_retried(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    gateway = retrying_gateway()
    call, chunks = _stream(gateway, faulty("fail-first-1").proto)
    assert call.code() == grpc.StatusCode.OK
    assert chunks > 1
    assert _trailer(call) == 2


def test_a_stream_is_never_retried_once_chunks_were_relayed(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    gateway = retrying_gateway()
    error, chunks = _stream(gateway, faulty("mid-stream-error").proto)
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert chunks >= 1
    assert _trailer(error) == 1
    assert len(upstream.requests()) == 1


def test_persistent_server_errors_stop_after_the_configured_attempts(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    gateway = retrying_gateway("--max-attempts", "4")
    error = _unary(gateway, faulty("server-error").proto)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert _trailer(error) == 4
    assert len(upstream.requests()) == 4


def test_a_non_retryable_failure_is_not_retried(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    gateway = retrying_gateway()
    request = pb.ChatRequest(
        model="openai/gpt-4o",
        messages=[pb.Message(role=Role.USER, text="Hello!")],
        provider=pb.ProviderConfig(quantizations=[Quantization.INT4]),
    )
    error = _unary(gateway, request)  # routing exhaustion: 404
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert _trailer(error) == 1
    assert len(upstream.requests()) == 1


def test_retry_after_longer_than_the_deadline_fails_at_once_without_retrying(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    gateway = retrying_gateway()
    started = time.monotonic()
    error = _unary(gateway, faulty("rate-limit").proto, timeout=1.5)  # Retry-After: 2
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_from_rpc(error).retry_delay == 2.0
    assert _trailer(error) == 1
    assert time.monotonic() - started < 1.4


def test_connection_refused_is_retried_then_unavailable(
    retrying_gateway: Callable[..., Gateway],
) -> None:
    gateway = retrying_gateway(upstream_url=f"http://127.0.0.1:{free_port()}/api/v1")
    error = _unary(
        gateway,
        pb.ChatRequest(model="openai/gpt-4o", messages=[pb.Message(role=Role.USER, text="Hi")]),
    )
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_from_rpc(error).reason == "UPSTREAM_UNREACHABLE"
    assert _trailer(error) == 3


def test_the_retry_budget_caps_retries_during_an_outage(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    # Ratio 0: only the floor (1 retry per second over a 10 s window) remains.
    gateway = retrying_gateway("--retry-budget-ratio", "0", "--max-attempts", "3")
    for _ in range(8):
        assert _unary(gateway, faulty("server-error").proto).code() == grpc.StatusCode.INTERNAL
    sent = len(upstream.requests())
    assert sent == 8 + 10, f"8 calls, 10 budgeted retries; the upstream saw {sent}"


async def test_calls_past_the_concurrency_bound_are_shed_at_once_with_a_retry_hint(
    retrying_gateway: Callable[..., Gateway], upstream: Emulator
) -> None:
    gateway = retrying_gateway("--max-concurrent-upstream", "2", "--max-queued", "1")
    async with AsyncRouterClient(gateway.target, timeout=20, retry_unavailable=False) as client:
        slow = [asyncio.create_task(client.chat(faulty("slow-first-byte"))) for _ in range(3)]
        for _ in range(200):  # bounded: until both slots are taken upstream, one call queued
            if len(upstream.requests()) >= 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(ResourceExhaustedError) as shed:
            await client.chat(faulty("slow-first-byte"))
        assert time.monotonic() - started < 1.0, "shedding must not wait"
        assert shed.value.reason == "GATEWAY_OVERLOADED"
        assert shed.value.retry_delay == 1.0
        results = await asyncio.gather(*slow)
    assert [r.text for r in results] == ["Echo: Hello!"] * 3
    assert len(upstream.requests()) == 3, "the shed call never reached the upstream"
