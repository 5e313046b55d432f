"""Observability through the real process: metrics, access logs, traces, GetGeneration."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from aiohttp import web
from gateway_e2e import Emulator, Gateway, faulty, launch_gateway, seed_request, stop_process
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from routerpc import ChatRequestBuilder, NotFoundError, Quantization, Role, RouterClient, pb
from routerpc_gateway.metrics import BoundedLabel

pytestmark = pytest.mark.e2e

METRICS = re.compile(r"metrics listening on 127\.0\.0\.1:(\d+)")


def _metrics_port(gateway: Gateway) -> int:
    for _ in range(100):
        if match := METRICS.search(gateway.log_text()):
            return int(match.group(1))
        time.sleep(0.05)
    raise AssertionError(gateway.log_text())


def _scrape(port: int) -> dict[str, float]:
    """Every sample as ``name{labels}`` → value (labels sorted, as exposition prints them)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _sum(samples: dict[str, float], prefix: str, *needles: str) -> float:
    return sum(
        v for k, v in samples.items() if k.startswith(prefix) and all(n in k for n in needles)
    )


@pytest.fixture(params=["1", "2"], ids=["one-worker", "two-workers"])
def observed(
    request: pytest.FixtureRequest, tmp_path: Path, emulator: Emulator, canary_key: str
) -> Iterator[Gateway]:
    gateway = launch_gateway(
        tmp_path / "observed.log",
        "--workers",
        request.param,
        "--metrics-port",
        "0",
        "--metrics-host",
        "127.0.0.1",
        "--log-format",
        "json",
        "--retry-base-delay",
        "0.01",
        upstream_url=emulator.base_url,
        key=canary_key,
    )
    try:
        yield gateway
    finally:
        stop_process(gateway.process)


def _access_lines(gateway: Gateway) -> list[dict[str, Any]]:
    lines = []
    for line in gateway.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "routerpc.access":
                lines.append(entry)
    return lines


def test_metrics_and_access_logs_follow_real_calls(
    observed: Gateway, upstream: Emulator, canary_key: str
) -> None:
    port = _metrics_port(observed)
    before = _scrape(port)
    prompt = f"canary-prompt-{uuid.uuid4().hex}"
    request = ChatRequestBuilder().with_model("openai/gpt-4o").with_text(prompt).build()
    request.provider = pb.ProviderConfig(quantizations=[Quantization.FP8])

    with grpc.insecure_channel(observed.target) as channel:
        stub = pb.RouterServiceStub(channel)
        reply, call = stub.Chat.with_call(request.proto, timeout=15)
        trailers = dict(call.trailing_metadata())
        chunks = list(stub.StreamChat(pb.StreamChatRequest(request=request.proto), timeout=15))
        _, retried_call = stub.Chat.with_call(faulty("fail-first-1").proto, timeout=15)
    assert reply.choices[0].message.content == f"Echo: {prompt}"
    assert chunks[-1].HasField("usage")
    assert dict(retried_call.trailing_metadata())["routerpc-attempts"] == "2"
    with RouterClient(observed.target, timeout=15) as client, pytest.raises(NotFoundError):
        client.chat(
            pb.ChatRequest(
                model="openai/gpt-4o",
                messages=[pb.Message(role=Role.USER, text="x")],
                provider=pb.ProviderConfig(quantizations=[Quantization.INT4]),
            )
        )

    # With workers the master sums files each worker rewrites once a second: wait (bounded)
    # until the four calls are in, then hold every figure to its exact value.
    after = _scrape(port)
    for _ in range(100):
        if _sum(after, "routerpc_rpcs_total") - _sum(before, "routerpc_rpcs_total") >= 4:
            break
        time.sleep(0.05)
        after = _scrape(port)

    def delta(prefix: str, *needles: str) -> float:
        return _sum(after, prefix, *needles) - _sum(before, prefix, *needles)

    assert delta("routerpc_rpcs_total", 'method="Chat"', 'code="OK"') == 2
    assert delta("routerpc_rpcs_total", 'method="StreamChat"', 'code="OK"') == 1
    assert delta("routerpc_rpcs_total", 'method="Chat"', 'code="NOT_FOUND"') == 1
    assert delta("routerpc_rpc_duration_seconds_count", 'method="Chat"') == 3
    assert delta("routerpc_time_to_first_chunk_seconds_count") == 1
    assert delta("routerpc_upstream_duration_seconds_count", 'method="StreamChat"') == 1
    assert delta("routerpc_upstream_retries_total") == 1
    assert delta("routerpc_upstream_responses_total", 'status="200"') == 3
    assert delta("routerpc_upstream_responses_total", 'status="502"') == 1
    assert delta("routerpc_upstream_responses_total", 'status="404"') == 1
    assert _sum(after, "routerpc_in_flight_rpcs") == 0
    fp8 = ('model="openai/gpt-4o"', 'quantization="fp8"', 'caller="anonymous"')
    usage = reply.usage
    assert delta("routerpc_tokens_total", 'kind="prompt"', *fp8) == 2 * usage.prompt_tokens
    assert delta("routerpc_tokens_total", 'kind="completion"', *fp8) == (
        2 * usage.completion_tokens
    )
    assert delta("routerpc_cost_usd_total", *fp8) == pytest.approx(2 * usage.cost)

    lines = _access_lines(observed)
    chat_line = next(e for e in lines if e["request_id"] == trailers["routerpc-request-id"])
    assert chat_line["method"] == "Chat"
    assert chat_line["code"] == "OK"
    assert chat_line["model"] == "openai/gpt-4o"
    assert chat_line["provider"] == reply.provider
    assert chat_line["quantization"] == "fp8"
    assert chat_line["attempts"] == 1
    assert chat_line["prompt_tokens"] == usage.prompt_tokens
    assert chat_line["cost"] == pytest.approx(usage.cost)
    assert chat_line["latency_ms"] > 0
    assert chat_line["caller"] == "anonymous"
    assert {e["code"] for e in lines} >= {"OK", "NOT_FOUND"}
    assert sum(1 for e in lines if e["method"] == "StreamChat") == 1
    log = observed.log_text()
    assert prompt not in log, "a prompt reached the logs"
    assert canary_key not in log
    assert canary_key not in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def test_get_generation_returns_the_final_cost_of_a_past_call(gateway: Gateway) -> None:
    with RouterClient(gateway.target, timeout=15) as client:
        result = client.chat(seed_request())
        generation = client.get_generation(result.proto.id)
        assert generation.id == result.proto.id
        assert generation.model == result.model
        assert generation.provider_name == result.provider
        assert generation.total_cost == pytest.approx(result.usage.cost)
        assert generation.tokens_prompt == result.usage.prompt_tokens
        assert generation.details.fields["id"].string_value == result.proto.id
        with pytest.raises(NotFoundError):
            client.get_generation("gen-never-served")


class _Collector:
    """A minimal OTLP/HTTP trace receiver on 127.0.0.1."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/traces", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest.FromString(await request.read())
        for resource in message.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return web.Response(status=200)


async def test_traces_have_a_server_span_and_an_upstream_client_span(
    tmp_path: Path, emulator: Emulator, canary_key: str
) -> None:
    collector = _Collector()
    runner = web.AppRunner(collector.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    gateway = await asyncio.to_thread(
        launch_gateway,
        tmp_path / "traced.log",
        "--workers",
        "1",
        upstream_url=emulator.base_url,
        key=canary_key,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "routerpc-test",
        },
    )
    try:
        with RouterClient(gateway.target, timeout=15) as client:
            await asyncio.to_thread(client.chat, seed_request())
        for _ in range(100):
            if len(collector.spans) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(stop_process, gateway.process)
        await runner.cleanup()
    names = {span.name: span for span in collector.spans}
    server = names.get("/routerpc.v1.RouterService/Chat")
    assert server is not None, list(names)
    clients = [s for s in collector.spans if s.kind == s.SPAN_KIND_CLIENT]
    assert clients, list(names)
    assert any(c.trace_id == server.trace_id for c in clients)
    assert "tracing: exporting spans" in gateway.log_text()


def test_label_values_are_bounded() -> None:
    label = BoundedLabel(3)
    assert [label(v) for v in ["a", "b", "c", "d", "a"]] == ["a", "b", "c", "other", "a"]
    assert label("x" * 500) == "other"
    assert len(BoundedLabel(5)("y" * 500)) == 100
