"""``POST /api/v1/chat/completions`` over real HTTP: unary, streaming, validation, routing."""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal

import httpx
from emulator_test_support import USER_TEXT, chat_body, json_events, read_sse_lines

from routerpc_emulator import start_emulator
from routerpc_emulator.catalogue import default_catalogue

ECHO = f"Echo: {USER_TEXT}"


def expected_cost(model: str, tag: str, prompt_tokens: int, completion_tokens: int) -> float:
    model_entry = default_catalogue().get(model)
    assert model_entry is not None
    endpoint = next(e for e in model_entry.endpoints if e.tag == tag)
    cost = (
        endpoint.price("prompt") * prompt_tokens + endpoint.price("completion") * completion_tokens
    )
    return float(cost + endpoint.price("request"))


async def test_unary_completion_echoes_last_user_message_in_openrouter_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/chat/completions", json=chat_body("openai/gpt-4o-mini"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["id"].startswith("gen-")
    assert response.headers["X-Generation-Id"] == body["id"]
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["provider"] == "Azure"
    (choice,) = body["choices"]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": ECHO, "refusal": None, "reasoning": None},
        "finish_reason": "stop",
        "native_finish_reason": "stop",
        "logprobs": None,
    }


async def test_usage_counts_four_chars_per_token_and_prices_the_serving_endpoint(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/chat/completions", json=chat_body("openai/gpt-4o"))
    usage = response.json()["usage"]
    prompt_tokens = math.ceil(len(USER_TEXT) / 4)
    completion_tokens = math.ceil(len(ECHO) / 4)
    assert usage["prompt_tokens"] == prompt_tokens
    assert usage["completion_tokens"] == completion_tokens
    assert usage["total_tokens"] == prompt_tokens + completion_tokens
    assert usage["is_byok"] is False
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}
    expected = expected_cost(
        "openai/gpt-4o", "azure/swedencentral", prompt_tokens, completion_tokens
    )
    assert usage["cost"] == expected


async def test_prompt_tokens_cover_every_message_and_content_part_texts(
    client: httpx.AsyncClient,
) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look at"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "this cat"},
            ],
        },
    ]
    response = await client.post(
        "/chat/completions", json={"model": "openai/gpt-4o", "messages": messages}
    )
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "Echo: look at this cat"
    assert body["usage"]["prompt_tokens"] == math.ceil(len("be brieflook at this cat") / 4)


async def test_streaming_sends_keepalive_chunks_usage_and_done(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "POST", "/chat/completions", json=chat_body("openai/gpt-4o", stream=True)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = await read_sse_lines(response)
    assert lines[0] == ": OPENROUTER PROCESSING"
    assert lines[-1] == "data: [DONE]"
    events = json_events(lines)
    generation_id = response.headers["X-Generation-Id"]
    assert all(event["id"] == generation_id for event in events)
    assert all(event["object"] == "chat.completion.chunk" for event in events)
    assert all(event["provider"] == "Azure" for event in events)
    assert all(event["model"] == "openai/gpt-4o" for event in events)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    content_events = [e for e in events if e["choices"] and e["choices"][0]["delta"].get("content")]
    assert len(content_events) >= 3
    assert "".join(e["choices"][0]["delta"]["content"] for e in content_events) == ECHO
    finish = events[-2]["choices"][0]
    assert finish["finish_reason"] == "stop"
    assert finish["native_finish_reason"] == "stop"
    usage_event = events[-1]
    assert usage_event["choices"] == []
    assert usage_event["usage"]["completion_tokens"] == math.ceil(len(ECHO) / 4)
    assert usage_event["usage"]["cost"] > 0


async def test_stream_delay_spaces_out_chunks() -> None:
    emu = await start_emulator(stream_delay_s=0.05)
    try:
        async with (
            httpx.AsyncClient(base_url=emu.base_url) as http,
            http.stream("POST", "/chat/completions", json=chat_body(stream=True)) as response,
        ):
            arrivals = [
                time.monotonic()
                async for line in response.aiter_lines()
                if line.startswith("data:")
            ]
    finally:
        await emu.close()
    assert len(arrivals) >= 6
    assert arrivals[-1] - arrivals[0] >= 0.05 * (len(arrivals) - 2)
    assert arrivals[-1] - arrivals[0] < 5.0


async def test_seed_example_quantizations_fp8_fp16_for_gpt_4o_is_served(
    client: httpx.AsyncClient,
) -> None:
    body = chat_body("openai/gpt-4o", provider={"quantizations": ["fp8", "fp16"]})
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    assert response.json()["provider"] == "Azure"


async def test_routing_exhaustion_answers_404_naming_the_filter(client: httpx.AsyncClient) -> None:
    body = chat_body("openai/gpt-4o", provider={"quantizations": ["int4"]})
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == 404
    assert (
        "No endpoints found matching your routing preferences for openai/gpt-4o."
        in (error["message"])
    )
    assert error["availability"]["code"] == "constraint_filtered"
    assert error["availability"]["excluded_by"] == ["quantization"]
    assert error["availability"]["constraint"]["field"] == "quantizations"


async def test_unknown_model_answers_404_no_endpoints(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat_body("acme/imaginary-1"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["message"] == "No endpoints found for acme/imaginary-1."
    assert error["availability"]["code"] == "no_endpoints"


async def test_models_fallback_serves_from_the_next_model(client: httpx.AsyncClient) -> None:
    body = chat_body("acme/imaginary-1", models=["deepseek/deepseek-chat-v3.1"])
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    assert response.json()["model"] == "deepseek/deepseek-chat-v3.1"


async def test_order_names_the_serving_provider(client: httpx.AsyncClient) -> None:
    body = chat_body("qwen/qwen3-235b-a22b", provider={"order": ["nebius"]})
    response = await client.post("/chat/completions", json=body)
    assert response.json()["provider"] == "Nebius"


async def test_nitro_suffix_routes_to_the_fastest_provider(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat/completions", json=chat_body("meta-llama/llama-3.3-70b-instruct:nitro")
    )
    assert response.status_code == 200
    assert response.json()["provider"] == "Cerebras"
    assert response.json()["model"] == "meta-llama/llama-3.3-70b-instruct"


async def test_invalid_json_is_a_400_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


async def test_missing_or_empty_messages_is_a_400_error(client: httpx.AsyncClient) -> None:
    for body in ({"model": "openai/gpt-4o"}, {"model": "openai/gpt-4o", "messages": []}, [1]):
        response = await client.post("/chat/completions", json=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["code"] == 400
        assert error["message"]


async def test_unknown_provider_preference_is_a_400_error(client: httpx.AsyncClient) -> None:
    body = chat_body(provider={"quantization": ["fp8"]})
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert "quantization" in response.json()["error"]["message"]


async def test_tool_named_in_user_text_is_called(client: httpx.AsyncClient) -> None:
    tools = [
        {"type": "function", "function": {"name": "get_time", "parameters": {}}},
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
    ]
    body = chat_body(text="please call get_weather for Paris", tools=tools)
    response = await client.post("/chat/completions", json=body)
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": "{}"}
    assert call["id"].startswith("call_")


async def test_tool_choice_none_suppresses_tool_calls(client: httpx.AsyncClient) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    body = chat_body(text="call get_weather", tools=tools, tool_choice="none")
    response = await client.post("/chat/completions", json=body)
    assert response.json()["choices"][0]["finish_reason"] == "stop"


async def test_streamed_tool_call_carries_name_then_arguments(client: httpx.AsyncClient) -> None:
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    body = chat_body(
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        stream=True,
    )
    async with client.stream("POST", "/chat/completions", json=body) as response:
        events = json_events(await read_sse_lines(response))
    fragments = [
        e["choices"][0]["delta"]["tool_calls"][0]
        for e in events
        if e["choices"] and "tool_calls" in e["choices"][0]["delta"]
    ]
    assert fragments[0]["id"].startswith("call_")
    assert fragments[0]["function"]["name"] == "lookup"
    assert "".join(f["function"]["arguments"] for f in fragments) == "{}"
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_max_tokens_truncates_the_echo_with_finish_reason_length(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/chat/completions", json=chat_body(max_tokens=2))
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == ECHO[:8]
    assert response.json()["usage"]["completion_tokens"] == 2


async def test_generation_stats_describe_a_served_generation(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat/completions",
        json=chat_body("openai/gpt-4o", user="user-7", session_id="s-1"),
        headers={"HTTP-Referer": "https://app.example"},
    )
    completion = response.json()
    stats_response = await client.get("/generation", params={"id": completion["id"]})
    assert stats_response.status_code == 200
    stats = stats_response.json()["data"]
    assert stats["id"] == completion["id"]
    assert stats["model"] == "openai/gpt-4o"
    assert stats["provider_name"] == completion["provider"]
    assert stats["streamed"] is False
    assert stats["finish_reason"] == "stop"
    assert stats["tokens_prompt"] == completion["usage"]["prompt_tokens"]
    assert stats["tokens_completion"] == completion["usage"]["completion_tokens"]
    assert stats["total_cost"] == completion["usage"]["cost"]
    assert stats["http_referer"] == "https://app.example"
    assert stats["external_user"] == "user-7"
    assert stats["session_id"] == "s-1"
    assert stats["api_type"] == "completions"
    assert stats["latency"] >= 0


async def test_generation_stats_record_streamed_generations(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/chat/completions", json=chat_body(stream=True)) as response:
        await read_sse_lines(response)
    stats = await client.get("/generation", params={"id": response.headers["X-Generation-Id"]})
    assert stats.json()["data"]["streamed"] is True


async def test_unknown_generation_is_404_and_missing_id_is_400(client: httpx.AsyncClient) -> None:
    missing = await client.get("/generation", params={"id": "gen-0-doesnotexist"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == 404
    assert (await client.get("/generation")).status_code == 400


async def test_cost_is_a_json_number_with_exact_decimal_value(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat/completions", json=chat_body("meta-llama/llama-3.3-70b-instruct")
    )
    raw_cost = json.loads(response.text, parse_float=Decimal)["usage"]["cost"]
    prompt_tokens = math.ceil(len(USER_TEXT) / 4)
    completion_tokens = math.ceil(len(ECHO) / 4)
    assert raw_cost == Decimal("0.00000003") * prompt_tokens + Decimal("0.00000011") * (
        completion_tokens
    )
