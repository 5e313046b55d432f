"""``RouterClient`` and ``AsyncRouterClient`` against an in-process fake gateway.

The fake is a ``grpc.aio`` server on 127.0.0.1 (port 0) running on its own event loop in a
background thread, so the blocking client and the asyncio client talk to the same servicer over
real HTTP/2. It echoes chat requests, streams three chunks then usage, aborts with a rich
``google.rpc.Status`` for particular models, and records what it saw (metadata, deadline,
cancellation).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from routerpc import (
    AsyncRouterClient,
    ChatChunk,
    ChatRequest,
    ChatRequestBuilder,
    ChatResult,
    FinishReason,
    InvalidArgumentError,
    Quantization,
    ResourceExhaustedError,
    RouterClient,
    UnavailableError,
    pb,
)

RATE_LIMITED = "test/rate-limited"
BROKEN_STREAM = "test/broken-stream"
ENDLESS = "test/endless"
FLAKY = "test/flaky"
WAIT = 10.0

USAGE = pb.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7, cost=0.00042)


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _rich_status(code: grpc.StatusCode, message: str, reason: str, retry: float) -> Any:
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=retry))
    status = status_pb2.Status(
        code=code.value[0],
        message=message,
        details=[
            _pack(
                error_details_pb2.ErrorInfo(
                    reason=reason, domain="openrouter.ai", metadata={"provider": "FakeProvider"}
                )
            ),
            _pack(error_details_pb2.RetryInfo(retry_delay=delay)),
        ],
    )
    return rpc_status.to_status(status)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: Any) -> None:
    await context.abort(status.code, status.details, status.trailing_metadata)


# The fake gateway ----------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    request: pb.ChatRequest
    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class FakeRouter(pb.RouterServiceServicer):
    name: str = "FakeProvider"
    calls: list[Seen] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)

    def _record(
        self, method: str, request: pb.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        metadata = {item.key: item.value for item in context.invocation_metadata() or ()}
        self.calls.append(Seen(method, request, metadata, context.time_remaining()))
        self.attempts[request.session_id] += 1

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ChatResponse:
        self._record("Chat", request, context)
        if request.model == RATE_LIMITED:
            await _abort(
                context,
                _rich_status(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", "RATE_LIMITED", retry=1.5
                ),
            )
        if request.model == FLAKY and self.attempts[request.session_id] == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        said = request.messages[-1].text if request.messages else ""
        return pb.ChatResponse(
            id="gen-1",
            model=request.model,
            provider=self.name,
            quantization=Quantization.FP8,
            choices=[
                pb.Choice(
                    message=pb.AssistantMessage(content=f"echo: {said}"),
                    finish_reason=FinishReason.STOP,
                )
            ],
            usage=USAGE,
        )

    async def StreamChat(
        self, request: pb.StreamChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamChatResponse]:
        chat = request.request
        self._record("StreamChat", chat, context)
        if chat.model == RATE_LIMITED:
            await _abort(
                context,
                _rich_status(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", "RATE_LIMITED", retry=1.5
                ),
            )
        if chat.model == ENDLESS:
            try:
                while True:
                    yield self._chunk(chat, "tick")
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        for piece in ("Hel", "lo", "!"):
            yield self._chunk(chat, piece)
        if chat.model == BROKEN_STREAM:
            await _abort(
                context,
                _rich_status(grpc.StatusCode.UNAVAILABLE, "stream cut", "STREAM_INTERRUPTED", 0.5),
            )
        yield pb.StreamChatResponse(
            id="gen-1",
            model=chat.model,
            provider=self.name,
            usage=USAGE,
            quantization=Quantization.FP8,
        )

    def _chunk(self, chat: pb.ChatRequest, text: str) -> pb.StreamChatResponse:
        return pb.StreamChatResponse(
            id="gen-1",
            model=chat.model,
            provider=self.name,
            choices=[pb.ChunkChoice(delta=pb.Delta(content=text))],
        )


class ServerThread:
    """A grpc.aio server serving ``servicer`` on its own loop in a daemon thread."""

    def __init__(self, servicer: FakeRouter) -> None:
        self.servicer = servicer
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self.server = grpc.aio.server()
        pb.add_RouterServiceServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(WAIT)

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


def _serve(servicer: FakeRouter) -> Iterator[ServerThread]:
    server = ServerThread(servicer)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake() -> FakeRouter:
    return FakeRouter()


@pytest.fixture
def address(fake: FakeRouter) -> Iterator[str]:
    for server in _serve(fake):
        yield server.address


@pytest.fixture
def client(address: str) -> Iterator[RouterClient]:
    with RouterClient(address, metadata=[("x-team", "core")]) as sync_client:
        yield sync_client


def _request(model: str = "openai/gpt-4o", text: str = "Hello!") -> ChatRequest:
    return (
        ChatRequestBuilder()
        .with_model(model)
        .with_text(text)
        .with_session_id(uuid.uuid4().hex)
        .build()
    )


def _assert_echo(result: ChatResult) -> None:
    assert isinstance(result, ChatResult)
    assert result.text == "echo: Hello!"
    assert result.provider == "FakeProvider"
    assert result.model == "openai/gpt-4o"
    assert result.quantization == Quantization.FP8
    assert result.finish_reason == FinishReason.STOP
    assert result.usage == USAGE
    assert result.usage.cost == pytest.approx(0.00042)


def _assert_three_chunks_then_usage(chunks: list[ChatChunk]) -> None:
    assert [c.text for c in chunks] == ["Hel", "lo", "!", ""]
    assert [c.usage for c in chunks[:3]] == [None, None, None]
    assert chunks[-1].usage == USAGE
    assert chunks[-1].quantization == Quantization.FP8
    assert {c.provider for c in chunks} == {"FakeProvider"}


def _assert_rate_limited(error: ResourceExhaustedError) -> None:
    assert type(error) is ResourceExhaustedError
    assert error.message == "slow down"
    assert error.reason == "RATE_LIMITED"
    assert error.domain == "openrouter.ai"
    assert error.metadata == {"provider": "FakeProvider"}
    assert error.retry_delay == pytest.approx(1.5)


def _is_deadline(remaining: float | None, timeout: float) -> bool:
    """Whether the server saw the deadline of a call made with ``timeout`` seconds.

    The ``grpc-timeout`` header carries at most 8 digits and gRPC rounds it *up* to the next
    representable value, up to 1% (a 10 s timeout arrives as 10.1 s); the bounds allow exactly
    that and no more, and a second of transit below.
    """
    return remaining is not None and timeout - 1 < remaining <= timeout * 1.01


def _drain(chunks: Iterator[ChatChunk], into: list[str]) -> None:
    for chunk in chunks:
        into.append(chunk.text)


async def _adrain(chunks: AsyncIterator[ChatChunk], into: list[str]) -> None:
    async for chunk in chunks:
        into.append(chunk.text)


# Chat and StreamChat --------------------------------------------------------------------------


def test_sync_chat_returns_the_result_with_text_provider_and_usage(
    client: RouterClient, fake: FakeRouter
) -> None:
    request = _request()

    _assert_echo(client.chat(request))
    _assert_echo(client.chat(request.proto))

    assert [c.method for c in fake.calls] == ["Chat", "Chat"]
    assert fake.calls[0].request == request.proto


async def test_async_chat_returns_the_result_with_text_provider_and_usage(
    address: str, fake: FakeRouter
) -> None:
    request = _request()

    async with AsyncRouterClient(address) as async_client:
        _assert_echo(await async_client.chat(request))
        _assert_echo(await async_client.chat(request.proto))

    assert [c.method for c in fake.calls] == ["Chat", "Chat"]
    assert fake.calls[0].request == request.proto


def test_sync_stream_chat_yields_each_chunk_then_the_usage(
    client: RouterClient, fake: FakeRouter
) -> None:
    request = _request()

    chunks = list(client.stream_chat(request))

    _assert_three_chunks_then_usage(chunks)
    assert [c.method for c in fake.calls] == ["StreamChat"]
    assert fake.calls[0].request == request.proto


async def test_async_stream_chat_yields_each_chunk_then_the_usage(
    address: str, fake: FakeRouter
) -> None:
    async with AsyncRouterClient(address) as async_client:
        chunks = [chunk async for chunk in async_client.stream_chat(_request())]

    _assert_three_chunks_then_usage(chunks)
    assert [c.method for c in fake.calls] == ["StreamChat"]


# Deadlines and metadata -----------------------------------------------------------------------


def test_sync_timeout_is_sent_as_the_call_deadline(address: str, fake: FakeRouter) -> None:
    with RouterClient(address, timeout=40) as sync_client:
        sync_client.chat(_request(), timeout=5)
        list(sync_client.stream_chat(_request(), timeout=6))
        sync_client.chat(_request())

    remaining = [c.time_remaining for c in fake.calls]
    assert _is_deadline(remaining[0], 5)
    assert _is_deadline(remaining[1], 6)
    # No timeout given: the client's default still sends a deadline.
    assert _is_deadline(remaining[2], 40)


async def test_async_timeout_is_sent_as_the_call_deadline(address: str, fake: FakeRouter) -> None:
    async with AsyncRouterClient(address, timeout=40) as async_client:
        await async_client.chat(_request(), timeout=5)
        [c async for c in async_client.stream_chat(_request(), timeout=6)]
        await async_client.chat(_request())

    remaining = [c.time_remaining for c in fake.calls]
    assert _is_deadline(remaining[0], 5)
    assert _is_deadline(remaining[1], 6)
    assert _is_deadline(remaining[2], 40)


def test_sync_client_and_call_metadata_reach_the_server(
    client: RouterClient, fake: FakeRouter
) -> None:
    client.chat(_request(), metadata=[("x-request-id", "r-1")])
    list(client.stream_chat(_request(), metadata=[("x-request-id", "r-2")]))

    for seen, request_id in zip(fake.calls, ["r-1", "r-2"], strict=True):
        assert seen.metadata["x-team"] == "core"
        assert seen.metadata["x-request-id"] == request_id


async def test_async_client_and_call_metadata_reach_the_server(
    address: str, fake: FakeRouter
) -> None:
    async with AsyncRouterClient(address, metadata=[("x-team", "core")]) as async_client:
        await async_client.chat(_request(), metadata=[("x-request-id", "r-1")])
        [c async for c in async_client.stream_chat(_request(), metadata=[("x-request-id", "r-2")])]

    for seen, request_id in zip(fake.calls, ["r-1", "r-2"], strict=True):
        assert seen.metadata["x-team"] == "core"
        assert seen.metadata["x-request-id"] == request_id


# Errors ---------------------------------------------------------------------------------------


def test_sync_failures_raise_typed_errors_with_details(client: RouterClient) -> None:
    with pytest.raises(ResourceExhaustedError) as unary:
        client.chat(_request(RATE_LIMITED))
    _assert_rate_limited(unary.value)

    with pytest.raises(ResourceExhaustedError) as stream:
        list(client.stream_chat(_request(RATE_LIMITED)))
    _assert_rate_limited(stream.value)


async def test_async_failures_raise_typed_errors_with_details(address: str) -> None:
    async with AsyncRouterClient(address) as async_client:
        with pytest.raises(ResourceExhaustedError) as unary:
            await async_client.chat(_request(RATE_LIMITED))
        _assert_rate_limited(unary.value)

        with pytest.raises(ResourceExhaustedError) as stream:
            [c async for c in async_client.stream_chat(_request(RATE_LIMITED))]
        _assert_rate_limited(stream.value)


def test_sync_stream_cut_midway_raises_after_the_chunks_it_delivered(client: RouterClient) -> None:
    received: list[str] = []

    with pytest.raises(UnavailableError) as info:
        _drain(client.stream_chat(_request(BROKEN_STREAM)), received)

    assert received == ["Hel", "lo", "!"]
    assert info.value.reason == "STREAM_INTERRUPTED"
    assert info.value.retry_delay == pytest.approx(0.5)


async def test_async_stream_cut_midway_raises_after_the_chunks_it_delivered(address: str) -> None:
    received: list[str] = []

    async with AsyncRouterClient(address) as async_client:
        with pytest.raises(UnavailableError) as info:
            await _adrain(async_client.stream_chat(_request(BROKEN_STREAM)), received)

    assert received == ["Hel", "lo", "!"]
    assert info.value.reason == "STREAM_INTERRUPTED"


def _invalid() -> pb.ChatRequest:
    return pb.ChatRequest(
        model="openai/gpt-4o", messages=[pb.Message(role=3, text="Hi")], temperature=3
    )


def test_sync_local_validation_fails_before_any_call(address: str, fake: FakeRouter) -> None:
    with RouterClient(address) as sync_client:
        with pytest.raises(InvalidArgumentError) as unary:
            sync_client.chat(_invalid())
        with pytest.raises(InvalidArgumentError) as stream:
            list(sync_client.stream_chat(_invalid()))

    assert [v.field for v in unary.value.field_violations] == ["temperature"]
    assert [v.field for v in stream.value.field_violations] == ["temperature"]
    assert fake.calls == []

    with RouterClient(address, validate=False) as unchecked:
        unchecked.chat(_invalid())
    assert [c.request.temperature for c in fake.calls] == [3]


async def test_async_local_validation_fails_before_any_call(address: str, fake: FakeRouter) -> None:
    async with AsyncRouterClient(address) as async_client:
        with pytest.raises(InvalidArgumentError) as unary:
            await async_client.chat(_invalid())
        with pytest.raises(InvalidArgumentError) as stream:
            [c async for c in async_client.stream_chat(_invalid())]

    assert [v.field for v in unary.value.field_violations] == ["temperature"]
    assert [v.field for v in stream.value.field_violations] == ["temperature"]
    assert fake.calls == []

    async with AsyncRouterClient(address, validate=False) as unchecked:
        await unchecked.chat(_invalid())
    assert len(fake.calls) == 1


# Lifecycle ------------------------------------------------------------------------------------


def test_sync_client_is_a_context_manager_that_closes_its_channel(address: str) -> None:
    with RouterClient(address) as sync_client:
        _assert_echo(sync_client.chat(_request()))

    with pytest.raises(ValueError, match="closed channel"):
        sync_client.chat(_request())


async def test_async_client_is_a_context_manager_that_closes_its_channel(address: str) -> None:
    async with AsyncRouterClient(address) as async_client:
        _assert_echo(await async_client.chat(_request()))

    with pytest.raises(grpc.aio.UsageError, match="closed"):
        await async_client.chat(_request())


def test_sync_breaking_out_of_a_stream_cancels_the_call(
    client: RouterClient, fake: FakeRouter
) -> None:
    for chunk in client.stream_chat(_request(ENDLESS)):
        assert chunk.text == "tick"
        break

    assert fake.cancelled.wait(WAIT)


async def test_async_breaking_out_of_a_stream_cancels_the_call(
    address: str, fake: FakeRouter
) -> None:
    async with AsyncRouterClient(address) as async_client:
        async for chunk in async_client.stream_chat(_request(ENDLESS)):
            assert chunk.text == "tick"
            break

        assert await asyncio.to_thread(fake.cancelled.wait, WAIT)


def test_a_stream_read_to_the_end_is_not_cancelled(client: RouterClient, fake: FakeRouter) -> None:
    list(client.stream_chat(_request()))
    assert not fake.cancelled.is_set()


# Channel options ------------------------------------------------------------------------------


def test_round_robin_and_retry_options_are_a_valid_service_config(
    address: str, fake: FakeRouter
) -> None:
    with RouterClient(
        f"ipv4:{address}", load_balancing="round_robin", retry_unavailable=True
    ) as sync_client:
        _assert_echo(sync_client.chat(_request()))
        _assert_three_chunks_then_usage(list(sync_client.stream_chat(_request())))
    with RouterClient(address, load_balancing="pick_first", retry_unavailable=False) as plain:
        _assert_echo(plain.chat(_request()))

    assert len(fake.calls) == 3


async def test_async_client_accepts_the_same_channel_options(address: str) -> None:
    async with AsyncRouterClient(
        f"ipv4:{address}", load_balancing="round_robin", retry_unavailable=True
    ) as async_client:
        _assert_echo(await async_client.chat(_request()))


def test_the_retry_policy_retries_unavailable_once_and_succeeds(
    address: str, fake: FakeRouter
) -> None:
    request = _request(FLAKY)

    with RouterClient(address, load_balancing="round_robin") as sync_client:
        result = sync_client.chat(request)

    assert result.model == FLAKY
    assert fake.attempts[request.proto.session_id] == 2


def test_without_retries_unavailable_reaches_the_caller(address: str, fake: FakeRouter) -> None:
    request = _request(FLAKY)

    with (
        RouterClient(address, retry_unavailable=False) as sync_client,
        pytest.raises(UnavailableError, match="warming up"),
    ):
        sync_client.chat(request)

    assert fake.attempts[request.proto.session_id] == 1


def test_round_robin_spreads_calls_over_every_address() -> None:
    first, second = FakeRouter(name="first"), FakeRouter(name="second")
    for one in _serve(first):
        for two in _serve(second):
            target = f"ipv4:{one.address},{two.address}"
            with RouterClient(target, load_balancing="round_robin") as sync_client:
                providers = {sync_client.chat(_request()).provider for _ in range(12)}

    assert providers == {"first", "second"}
    assert first.calls
    assert second.calls
