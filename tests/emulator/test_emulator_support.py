"""Auth, request recording, catalogue listings and the other non-chat routes."""

from __future__ import annotations

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from emulator_test_support import chat_body

from routerpc_emulator import RunningEmulator, create_app, start_emulator
from routerpc_emulator.generations import GenerationStore
from routerpc_emulator.recording import RequestLog

SECRET = "sk-or-v1-emulator-secret"


# --- auth ------------------------------------------------------------------------------------


async def test_require_key_rejects_missing_or_wrong_bearer_and_accepts_the_key() -> None:
    async with (
        await start_emulator(require_key=SECRET) as emu,
        httpx.AsyncClient(base_url=emu.base_url) as http,
    ):
        missing = await http.post("/chat/completions", json=chat_body())
        wrong = await http.get("/models", headers={"Authorization": "Bearer nope"})
        right = await http.post(
            "/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {SECRET}"}
        )
        health = await http.get(f"{emu.origin}/_emulator/health")
    for rejected in (missing, wrong):
        assert rejected.status_code == 401
        assert rejected.json() == {
            "error": {"code": 401, "message": "Missing Authentication header"}
        }
    assert right.status_code == 200
    assert health.status_code == 200


async def test_without_require_key_any_or_no_key_is_accepted(client: httpx.AsyncClient) -> None:
    anonymous = await client.post("/chat/completions", json=chat_body())
    keyed = await client.post(
        "/chat/completions", json=chat_body(), headers={"Authorization": "Bearer whatever"}
    )
    assert (anonymous.status_code, keyed.status_code) == (200, 200)


# --- request recording -----------------------------------------------------------------------


async def test_recorded_requests_keep_body_and_headers_but_never_the_key(
    emulator: RunningEmulator, client: httpx.AsyncClient
) -> None:
    body = chat_body(temperature=0.3)
    await client.post(
        "/chat/completions",
        json=body,
        headers={
            "Authorization": f"Bearer {SECRET}",
            "HTTP-Referer": "https://app.example",
            "X-OpenRouter-Title": "Example App",
        },
    )
    log = await client.get(f"{emulator.origin}/_emulator/requests")
    assert log.status_code == 200
    assert SECRET not in log.text
    (entry,) = log.json()["data"]
    assert entry["body"] == body
    assert entry["http_referer"] == "https://app.example"
    assert entry["x_openrouter_title"] == "Example App"
    assert entry["has_authorization"] is True


async def test_legacy_x_title_is_recorded_as_the_title(
    emulator: RunningEmulator, client: httpx.AsyncClient
) -> None:
    await client.post("/chat/completions", json=chat_body(), headers={"X-Title": "Old App"})
    (entry,) = (await client.get(f"{emulator.origin}/_emulator/requests")).json()["data"]
    assert entry["x_openrouter_title"] == "Old App"
    assert entry["has_authorization"] is False


async def test_delete_clears_recorded_requests(
    emulator: RunningEmulator, client: httpx.AsyncClient
) -> None:
    await client.post("/chat/completions", json=chat_body())
    await client.post("/chat/completions", json=chat_body())
    cleared = await client.delete(f"{emulator.origin}/_emulator/requests")
    assert cleared.json() == {"cleared": 2}
    assert (await client.get(f"{emulator.origin}/_emulator/requests")).json()["data"] == []


def test_request_log_is_bounded_and_keeps_the_newest() -> None:
    log = RequestLog(capacity=3)
    for index in range(5):
        log.record("/api/v1/chat/completions", {"n": index}, {})
    assert [entry["body"]["n"] for entry in log.entries()] == [2, 3, 4]
    assert [entry["body"]["n"] for entry in log.entries(limit=1)] == [4]


def test_generation_store_evicts_least_recently_used() -> None:
    store = GenerationStore(capacity=2)
    store.put({"id": "a"})
    store.put({"id": "b"})
    assert store.get("a") is not None
    store.put({"id": "c"})
    assert store.get("b") is None
    assert store.get("a") is not None
    assert len(store) == 2


# --- listings --------------------------------------------------------------------------------


async def test_models_listing_has_openrouter_model_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/models")
    assert response.status_code == 200
    models = {model["id"]: model for model in response.json()["data"]}
    assert "openai/gpt-4o" in models
    gpt = models["openai/gpt-4o"]
    for key in (
        "canonical_slug",
        "name",
        "created",
        "description",
        "context_length",
        "supported_parameters",
    ):
        assert key in gpt
    assert gpt["per_request_limits"] is None
    assert set(gpt["architecture"]) >= {
        "modality",
        "input_modalities",
        "output_modalities",
        "tokenizer",
        "instruct_type",
    }
    assert gpt["pricing"]["prompt"] == "0.0000025"
    assert gpt["top_provider"] == {
        "context_length": 128000,
        "max_completion_tokens": 16384,
        "is_moderated": True,
    }


async def test_models_listing_filters_by_supported_parameters(client: httpx.AsyncClient) -> None:
    response = await client.get("/models", params={"supported_parameters": "reasoning"})
    ids = {model["id"] for model in response.json()["data"]}
    assert ids == {
        "anthropic/claude-sonnet-4.5",
        "deepseek/deepseek-chat-v3.1",
        "qwen/qwen3-235b-a22b",
    }


async def test_endpoints_listing_has_public_endpoint_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/models/meta-llama/llama-3.3-70b-instruct/endpoints")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == "meta-llama/llama-3.3-70b-instruct"
    assert {"name", "created", "description", "architecture"} <= set(data)
    endpoints = data["endpoints"]
    assert {e["quantization"] for e in endpoints} >= {"fp8", "fp16", "bf16", "int4"}
    first = endpoints[0]
    assert set(first) >= {
        "name",
        "model_id",
        "model_name",
        "provider_name",
        "tag",
        "quantization",
        "context_length",
        "max_completion_tokens",
        "max_prompt_tokens",
        "pricing",
        "supported_parameters",
        "status",
        "uptime_last_30m",
        "uptime_last_5m",
        "uptime_last_1d",
        "latency_last_30m",
        "throughput_last_30m",
        "supports_implicit_caching",
    }
    assert first["status"] == 0
    assert set(first["latency_last_30m"]) == {"p50", "p75", "p90", "p99"}
    assert isinstance(first["pricing"]["prompt"], str)


async def test_endpoints_of_unknown_model_is_404_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/models/acme/imaginary/endpoints")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404


async def test_single_model_lookup(client: httpx.AsyncClient) -> None:
    response = await client.get("/model/qwen/qwen3-235b-a22b")
    assert response.json()["data"]["id"] == "qwen/qwen3-235b-a22b"
    assert (await client.get("/model/acme/imaginary")).status_code == 404


async def test_unknown_route_answers_with_json_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 404


async def test_emulator_catalogue_exposes_data_policy(
    emulator: RunningEmulator, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"{emulator.origin}/_emulator/catalogue")
    first_endpoint = response.json()["data"][0]["endpoints"][0]
    assert set(first_endpoint["data_policy"]) == {"training", "retains_prompts", "zdr"}


# --- app factory and server helpers ----------------------------------------------------------


async def test_create_app_serves_through_aiohttp_test_client() -> None:
    async with TestClient(TestServer(create_app())) as http:
        response = await http.post("/api/v1/chat/completions", json=chat_body())
        assert response.status == 200
        assert (await response.json())["choices"][0]["message"]["content"].startswith("Echo: ")


async def test_start_emulator_binds_a_free_port_and_reports_base_url() -> None:
    first = await start_emulator(port=0)
    second = await start_emulator(port=0)
    try:
        assert first.port != second.port
        assert first.port > 0
        assert first.base_url == f"http://127.0.0.1:{first.port}/api/v1"
    finally:
        await first.close()
        await second.close()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"{first.origin}/_emulator/health")


def test_create_app_rejects_negative_stream_delay() -> None:
    with pytest.raises(ValueError, match="stream_delay_s"):
        create_app(stream_delay_s=-1)
