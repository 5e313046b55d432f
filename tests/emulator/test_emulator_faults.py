"""Every fault switch produces its fault, selected by header or by ``~fault=`` model suffix."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from emulator_test_support import chat_body, data_payloads, json_events, read_sse_lines

MODEL = "openai/gpt-4o"


def with_fault(name: str, **extra: Any) -> dict[str, Any]:
    return chat_body(f"{MODEL}~fault={name}", **extra)


async def post(
    client: httpx.AsyncClient, fault: str, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    return await client.post(
        "/chat/completions",
        json=chat_body(MODEL, **extra),
        headers={"X-Emulator-Fault": fault, **(headers or {})},
    )


async def test_rate_limit_is_429_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await post(client, "rate-limit")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {
        "error": {
            "code": 429,
            "message": "Rate limit exceeded",
            "metadata": {"error_type": "rate_limit_exceeded"},
        }
    }


async def test_rate_limit_selected_by_model_suffix(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=with_fault("rate-limit"))
    assert response.status_code == 429


async def test_rate_limit_no_retry_after_omits_the_header(client: httpx.AsyncClient) -> None:
    response = await post(client, "rate-limit-no-retry-after")
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.json()["error"]["metadata"]["error_type"] == "rate_limit_exceeded"


async def test_server_error_is_500(client: httpx.AsyncClient) -> None:
    response = await post(client, "server-error")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == 500


async def test_bad_gateway_is_502_naming_the_provider(client: httpx.AsyncClient) -> None:
    response = await post(client, "bad-gateway")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["message"] == "Provider returned error"
    assert error["metadata"]["provider_name"] == "Azure"


async def test_unavailable_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await post(client, "unavailable")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == 503


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "streaming"])
async def test_slow_first_byte_delays_the_response_by_the_requested_ms(
    client: httpx.AsyncClient, stream: bool
) -> None:
    started = time.monotonic()
    async with client.stream(
        "POST",
        "/chat/completions",
        json=chat_body(MODEL, stream=stream),
        headers={"X-Emulator-Fault": "slow-first-byte", "X-Emulator-Delay-Ms": "300"},
    ) as response:
        first_byte_after = time.monotonic() - started
        await response.aread()
    assert response.status_code == 200
    assert 0.3 <= first_byte_after < 2.5


async def test_without_fault_first_byte_is_fast(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.post("/chat/completions", json=chat_body(MODEL))
    assert response.status_code == 200
    assert time.monotonic() - started < 1.0


async def test_mid_stream_error_sends_chunks_then_error_event_without_done(
    client: httpx.AsyncClient,
) -> None:
    async with client.stream(
        "POST", "/chat/completions", json=with_fault("mid-stream-error", stream=True)
    ) as response:
        assert response.status_code == 200
        lines = await read_sse_lines(response)
    assert "[DONE]" not in data_payloads(lines)
    events = json_events(lines)
    assert any(e["choices"] and e["choices"][0]["delta"].get("content") for e in events[:-1])
    last = events[-1]
    assert last["error"]["code"] == 502
    assert last["error"]["metadata"]["error_type"] == "provider_unavailable"
    assert last["choices"][0]["finish_reason"] == "error"
    assert all("error" not in e for e in events[:-1])


async def test_mid_stream_error_unary_is_200_with_choice_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=with_fault("mid-stream-error"))
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "error"
    assert choice["error"]["code"] == 502
    assert choice["message"]["content"] == "Echo: hello "


async def test_cut_stream_aborts_the_connection_before_done(client: httpx.AsyncClient) -> None:
    seen: list[str] = []

    async def consume() -> None:
        body = with_fault("cut-stream", stream=True)
        async with client.stream("POST", "/chat/completions", json=body) as response:
            seen.append(f"status {response.status_code}")
            async for line in response.aiter_lines():
                seen.append(line)

    with pytest.raises(httpx.RemoteProtocolError):
        await consume()
    assert seen[0] == "status 200"
    assert any(line.startswith("data: {") for line in seen)
    assert "data: [DONE]" not in seen


async def test_cut_stream_unary_closes_the_connection_mid_body(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/chat/completions", json=with_fault("cut-stream"))


async def test_garbage_json_is_200_with_an_unparsable_body(client: httpx.AsyncClient) -> None:
    response = await post(client, "garbage-json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


async def test_garbage_sse_is_200_with_malformed_data_lines(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "POST",
        "/chat/completions",
        json=chat_body(MODEL, stream=True),
        headers={"X-Emulator-Fault": "garbage-sse"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = data_payloads(await read_sse_lines(response))
    broken = 0
    for payload in payloads:
        if payload == "[DONE]":
            continue
        try:
            json.loads(payload)
        except json.JSONDecodeError:
            broken += 1
    assert broken >= 2


async def test_oversized_unary_content_has_the_requested_size(client: httpx.AsyncClient) -> None:
    response = await post(client, "oversized", headers={"X-Emulator-Size-Bytes": "100000"})
    assert response.status_code == 200
    assert len(response.json()["choices"][0]["message"]["content"]) == 100_000
    assert len(response.content) > 100_000


async def test_oversized_defaults_to_eight_mebibytes(client: httpx.AsyncClient) -> None:
    response = await post(client, "oversized")
    assert len(response.json()["choices"][0]["message"]["content"]) == 8 * 1024 * 1024


async def test_oversized_stream_sends_one_huge_delta(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "POST",
        "/chat/completions",
        json=chat_body(MODEL, stream=True),
        headers={"X-Emulator-Fault": "oversized", "X-Emulator-Size-Bytes": "50000"},
    ) as response:
        events = json_events(await read_sse_lines(response))
    sizes = [len(e["choices"][0]["delta"].get("content") or "") for e in events if e["choices"]]
    assert max(sizes) == 50_000


async def test_fail_first_n_fails_n_times_then_succeeds(client: httpx.AsyncClient) -> None:
    headers = {"X-Emulator-Fault-Key": "retry-test"}
    statuses = [(await post(client, "fail-first-2", headers=headers)).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    other_key = await post(client, "fail-first-2", headers={"X-Emulator-Fault-Key": "other"})
    assert other_key.status_code == 502


async def test_unknown_fault_name_is_a_400_error(client: httpx.AsyncClient) -> None:
    response = await post(client, "explode")
    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


async def test_malformed_delay_header_is_a_400_error(client: httpx.AsyncClient) -> None:
    response = await post(client, "slow-first-byte", headers={"X-Emulator-Delay-Ms": "soon"})
    assert response.status_code == 400


async def test_header_fault_wins_over_model_suffix(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat/completions",
        json=with_fault("rate-limit"),
        headers={"X-Emulator-Fault": "unavailable"},
    )
    assert response.status_code == 503


async def test_routing_404_takes_precedence_over_faults(client: httpx.AsyncClient) -> None:
    response = await post(client, "rate-limit", provider={"quantizations": ["int4"]})
    assert response.status_code == 404
