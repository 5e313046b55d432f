"""Chat and StreamChat through a real gateway process to the real emulator process."""

from __future__ import annotations

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, seed_request

from routerpc import AsyncRouterClient, FinishReason, Quantization, RouterClient, pb

pytestmark = pytest.mark.e2e

SEED_BODY = {
    "model": "openai/gpt-4o",
    "messages": [{"role": "user", "content": "Hello!"}],
    "provider": {"quantizations": ["fp8", "fp16"]},
}


def _only_chat_request(emulator: Emulator) -> dict[str, object]:
    recorded = emulator.requests()
    assert len(recorded) == 1, recorded
    entry = recorded[0]
    assert entry["path"] == "/api/v1/chat/completions"
    return entry


def test_seed_request_arrives_upstream_as_exactly_the_openrouter_json_with_authorization(
    client: RouterClient, upstream: Emulator
) -> None:
    client.chat(seed_request())

    entry = _only_chat_request(upstream)
    assert entry["body"] == SEED_BODY
    assert entry["has_authorization"] is True
    assert entry["content_type"] == "application/json"


def test_streamed_seed_request_arrives_upstream_as_the_same_json_plus_stream_true(
    client: RouterClient, upstream: Emulator
) -> None:
    list(client.stream_chat(seed_request()))

    entry = _only_chat_request(upstream)
    assert entry["body"] == {**SEED_BODY, "stream": True}
    assert entry["has_authorization"] is True


def test_unary_chat_returns_the_echo_with_provider_token_usage_and_cost(
    client: RouterClient, upstream: Emulator
) -> None:
    result = client.chat(seed_request())

    assert result.text == "Echo: Hello!"
    assert result.model == "openai/gpt-4o"
    assert result.provider
    assert result.finish_reason is FinishReason.STOP
    usage = result.usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.HasField("cost")
    assert usage.cost > 0


def test_served_quantization_is_reported_when_the_filter_leaves_one_candidate(
    client: RouterClient, upstream: Emulator
) -> None:
    request = seed_request()
    request.provider = pb.ProviderConfig(quantizations=[Quantization.FP8])

    result = client.chat(request)

    assert result.text == "Echo: Hello!"
    assert result.quantization is Quantization.FP8
    assert upstream.requests()[0]["body"]["provider"] == {"quantizations": ["fp8"]}


def test_stream_relays_several_chunks_whose_text_equals_the_unary_text_and_ends_with_usage(
    client: RouterClient, upstream: Emulator
) -> None:
    unary_text = client.chat(seed_request()).text

    chunks = list(client.stream_chat(seed_request()))

    assert len(chunks) >= 3
    assert sum(1 for c in chunks if c.text) >= 2, "the text must arrive in pieces"
    assert "".join(c.text for c in chunks) == unary_text
    assert all(c.provider for c in chunks)
    final = chunks[-1].usage
    assert final is not None
    assert final.prompt_tokens > 0
    assert final.completion_tokens > 0
    assert final.HasField("cost")
    assert final.cost > 0
    assert all(c.usage is None for c in chunks[:-1])
    assert any(c.finish_reason is FinishReason.STOP for c in chunks)


def test_stream_ends_with_status_ok_on_the_raw_grpc_call(gateway: Gateway) -> None:
    with grpc.insecure_channel(gateway.target) as channel:
        stub = pb.RouterServiceStub(channel)
        call = stub.StreamChat(pb.StreamChatRequest(request=seed_request().proto), timeout=15)
        messages = list(call)

        assert call.code() is grpc.StatusCode.OK
        assert len(messages) >= 3
        assert messages[-1].HasField("usage")


async def test_async_client_chat_and_stream_agree_on_the_echo(
    gateway: Gateway, upstream: Emulator
) -> None:
    async with AsyncRouterClient(gateway.target, timeout=15) as router:
        result = await router.chat(seed_request())
        chunks = [chunk async for chunk in router.stream_chat(seed_request())]

    assert result.text == "Echo: Hello!"
    assert len(chunks) >= 3
    assert "".join(c.text for c in chunks) == result.text
    assert chunks[-1].usage is not None
    bodies = [entry["body"] for entry in upstream.requests()]
    assert bodies == [SEED_BODY, {**SEED_BODY, "stream": True}]
