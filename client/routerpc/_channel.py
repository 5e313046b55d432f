"""What the sync and async clients share: channel options, service config, request coercion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from routerpc import pb
from routerpc._request import ChatRequest

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TIMEOUT",
    "LoadBalancing",
    "Metadata",
    "as_proto",
    "channel_options",
]

DEFAULT_TIMEOUT = 300.0
"""Seconds a call may take when the caller gives no ``timeout``: every call has a deadline."""
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Chat payloads with images exceed gRPC's 4 MiB default; this matches the gateway's default."""

LoadBalancing = Literal["pick_first", "round_robin"]
Metadata = Sequence[tuple[str, str]]

# Chat calls cost money and are not idempotent, so the channel only retries UNAVAILABLE, which
# the gateway reports only when nothing reached the upstream model or the connection dropped
# before the response started (gRPC never retries once response headers have arrived).
_RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.2s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def channel_options(
    *, load_balancing: LoadBalancing | None, retry_unavailable: bool, max_message_bytes: int
) -> list[tuple[str, int | str]]:
    """gRPC channel options: message limits, keepalive, and the service config."""
    config: dict[str, object] = {}
    if load_balancing is not None:
        config["loadBalancingConfig"] = [{load_balancing: {}}]
    if retry_unavailable:
        config["methodConfig"] = [
            {"name": [{"service": pb.SERVICE_NAME}], "retryPolicy": _RETRY_POLICY}
        ]
    options: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.enable_retries", 1 if retry_unavailable else 0),
    ]
    if config:
        options.append(("grpc.service_config", json.dumps(config)))
    return options


def as_proto(request: ChatRequest | pb.ChatRequest, *, validate: bool) -> pb.ChatRequest:
    """The proto to send, checked against the gateway's rules first when ``validate``."""
    wrapped = request if isinstance(request, ChatRequest) else ChatRequest(request)
    if validate:
        wrapped.validate()
    return wrapped.proto
