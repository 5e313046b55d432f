"""The upstream key (a random canary) never leaves the gateway except towards the upstream.

This file is collected last in this directory, so ``received_errors`` also holds what every
earlier test received; the test still produces its own errors so it means something alone.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, describe_error, faulty, seed_request

from routerpc import RouterClient, RouterError, pb

pytestmark = pytest.mark.e2e

FAULTS = (
    "rate-limit",
    "server-error",
    "bad-gateway",
    "unavailable",
    "mid-stream-error",
    "cut-stream",
    "garbage-json",
    "garbage-sse",
)


def _errors_from_every_path(client: RouterClient, channel: grpc.Channel) -> list[str]:
    found: list[str] = []
    calls = [client.chat, lambda r: list(client.stream_chat(r))]
    for fault in FAULTS:
        for call in calls:
            try:
                call(faulty(fault))
            except RouterError as error:
                found.append(describe_error(error))
    stub = pb.RouterServiceStub(channel)
    raw_requests = [
        lambda: stub.Chat(faulty("rate-limit").proto, timeout=10),
        lambda: list(stub.StreamChat(pb.StreamChatRequest(request=faulty("bad-gateway").proto))),
        lambda: stub.ListEndpoints(pb.ListEndpointsRequest(model="nobody/nothing"), timeout=10),
        lambda: stub.Chat(pb.ChatRequest(model="openai/gpt-4o"), timeout=10),
    ]
    for raw in raw_requests:
        try:
            raw()
        except grpc.RpcError as error:
            found.append(describe_error(error))
    return found


def test_canary_key_never_appears_in_gateway_logs_or_any_error_a_caller_received(
    gateway: Gateway,
    upstream: Emulator,
    client: RouterClient,
    canary_key: str,
    received_errors: list[str],
) -> None:
    client.chat(seed_request())
    assert upstream.requests()[0]["has_authorization"] is True, "the key must be in use"

    with grpc.insecure_channel(gateway.target) as channel:
        own = _errors_from_every_path(client, channel)

    assert len(own) == 2 * len(FAULTS) + 4, "every path above must have failed"
    leaks = [text for text in [*own, *received_errors] if canary_key in text]
    assert leaks == []
    log = gateway.log_text()
    assert "routerpc listening on" in log, "the captured stderr must be the gateway's"
    assert canary_key not in log
    assert canary_key[-12:] not in log, "not even a fragment of the key"


def test_errors_were_collected_from_the_other_tests_too(received_errors: list[str]) -> None:
    """Guards the test above against silently scanning nothing when the suite runs whole."""
    if len(received_errors) < 2 * len(FAULTS):
        pytest.skip("only meaningful when the whole tests/gateway directory runs")
    assert all(received_errors)


def test_recorded_requests_never_carry_the_key(
    gateway: Gateway, upstream: Emulator, client: RouterClient, canary_key: str
) -> None:
    """The key travels only as the Authorization header: never in a body the upstream sees."""
    client.chat(seed_request())
    list(client.stream_chat(seed_request()))

    recorded: Any = upstream.requests()

    assert len(recorded) == 2
    assert canary_key not in repr(recorded)
