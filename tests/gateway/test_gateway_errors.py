"""Every error class, end to end: its gRPC code and the rich details the typed errors expose."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from gateway_e2e import (
    ENDS_WITHOUT_DONE,
    Emulator,
    Gateway,
    RecordingUpstream,
    faulty,
    seed_request,
)

from routerpc import ChatRequest as Request
from routerpc import (
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    Quantization,
    ResourceExhaustedError,
    RouterClient,
    RouterError,
    UnauthenticatedError,
    UnavailableError,
    error_from_rpc,
    pb,
)

pytestmark = pytest.mark.e2e

UPSTREAM_DOMAIN = "openrouter.ai"
GATEWAY_DOMAIN = "routerpc.dev"

Call = Callable[[RouterClient, Request | pb.ChatRequest], Any]


def _unary(client: RouterClient, request: Request | pb.ChatRequest) -> Any:
    return client.chat(request)


def _stream(client: RouterClient, request: Request | pb.ChatRequest) -> Any:
    return list(client.stream_chat(request))


BOTH = pytest.mark.parametrize("call", [_unary, _stream], ids=["unary", "stream"])


def _hello(**fields: Any) -> pb.ChatRequest:
    return pb.ChatRequest(
        model="openai/gpt-4o", messages=[pb.Message(role=1, text="Hello!")], **fields
    )


def _fields(error: RouterError) -> list[str]:
    return [v.field for v in error.field_violations]


# Invalid input: rejected by the gateway before any I/O -------------------------------------


def test_temperature_three_is_invalid_argument_naming_temperature_and_never_sent_upstream(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(InvalidArgumentError) as info:
        client.chat(_hello(temperature=3))

    error = info.value
    assert _fields(error) == ["temperature"]
    assert error.reason == "INVALID_REQUEST"
    assert error.domain == GATEWAY_DOMAIN
    assert "temperature" in error.message
    assert upstream.requests() == []


def test_streamed_temperature_three_names_request_temperature_and_is_never_sent_upstream(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(InvalidArgumentError) as info:
        list(client.stream_chat(_hello(temperature=3)))

    assert _fields(info.value) == ["request.temperature"]
    assert upstream.requests() == []


def test_unspecified_quantization_is_invalid_argument_naming_provider_quantizations(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    unary = _hello(provider=pb.ProviderConfig(quantizations=[Quantization.UNSPECIFIED]))

    with expect_error(InvalidArgumentError) as info:
        client.chat(unary)
    assert _fields(info.value) == ["provider.quantizations[0]"]

    with expect_error(InvalidArgumentError) as info:
        list(client.stream_chat(unary))
    assert _fields(info.value) == ["request.provider.quantizations[0]"]
    assert info.value.field_violations[0].reason == "enum.not_in"
    assert upstream.requests() == []


def test_a_tool_of_no_kind_is_invalid_argument_naming_the_oneof_and_never_sent_upstream(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    request = _hello()
    request.tools.add()  # neither a function nor a server tool

    with expect_error(InvalidArgumentError) as info:
        client.chat(request)
    assert _fields(info.value) == ["tools[0].tool"]
    assert info.value.field_violations[0].reason == "required"
    assert info.value.domain == GATEWAY_DOMAIN

    with expect_error(InvalidArgumentError) as info:
        list(client.stream_chat(request))
    assert _fields(info.value) == ["request.tools[0].tool"]
    assert upstream.requests() == []


def test_extra_body_setting_stream_is_invalid_argument_naming_extra_body_stream(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    request = seed_request()
    request.proto.extra_body.update({"stream": True})

    with expect_error(InvalidArgumentError) as info:
        client.chat(request)
    assert _fields(info.value) == ["extra_body.stream"]
    assert info.value.domain == GATEWAY_DOMAIN

    with expect_error(InvalidArgumentError) as info:
        list(client.stream_chat(request))
    assert _fields(info.value) == ["request.extra_body.stream"]
    assert upstream.requests() == []


def test_non_finite_number_in_a_json_field_is_invalid_argument_naming_its_path(
    channel: grpc.Channel, upstream: Emulator
) -> None:
    # Python's protobuf refuses to serialize NaN into a Struct, but other languages send it:
    # put the NaN bits on the wire by hand.
    placeholder = 12345.678
    request = seed_request().proto
    request.extra_body.update({"vendor": {"weights": [1, placeholder]}})
    wire = request.SerializeToString().replace(
        struct.pack("<d", placeholder), struct.pack("<d", math.nan)
    )
    chat = channel.unary_unary(
        "/routerpc.v1.RouterService/Chat",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.RpcError) as raised:
        chat(wire, timeout=15)

    error = error_from_rpc(raised.value)
    assert isinstance(error, InvalidArgumentError), error
    assert _fields(error) == ["extra_body.vendor.weights[1]"]
    assert upstream.requests() == []


# Upstream errors ----------------------------------------------------------------------------


@BOTH
def test_int4_for_gpt4o_is_not_found_from_openrouter_naming_the_quantization_filter(
    call: Call, client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    request = seed_request()
    request.provider = pb.ProviderConfig(quantizations=[Quantization.INT4])

    with expect_error(NotFoundError) as info:
        call(client, request)

    error = info.value
    assert error.domain == UPSTREAM_DOMAIN
    assert error.reason == "CONSTRAINT_FILTERED"
    assert error.metadata["httpStatus"] == "404"
    assert json.loads(error.metadata["availabilityExcludedBy"]) == ["quantization"]
    constraint = json.loads(error.metadata["availabilityConstraint"])
    assert constraint["field"] == "quantizations"
    assert "int4" in constraint["detail"]
    assert "int4" in error.message
    assert len(upstream.requests()) == 1


@BOTH
def test_rate_limit_is_resource_exhausted_with_a_two_second_retry_delay(
    call: Call, client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(ResourceExhaustedError) as info:
        call(client, faulty("rate-limit"))

    error = info.value
    assert error.retry_delay == 2.0
    assert error.domain == UPSTREAM_DOMAIN
    assert error.reason == "RATE_LIMIT_EXCEEDED"
    assert error.metadata["httpStatus"] == "429"
    assert error.message == "Rate limit exceeded"


def test_rate_limit_without_retry_after_has_no_retry_delay(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(ResourceExhaustedError) as info:
        client.chat(faulty("rate-limit-no-retry-after"))

    assert info.value.retry_delay is None


@BOTH
def test_upstream_server_error_is_internal(
    call: Call, client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(InternalError) as info:
        call(client, faulty("server-error"))

    assert info.value.domain == UPSTREAM_DOMAIN
    assert info.value.metadata["httpStatus"] == "500"


@BOTH
def test_bad_gateway_is_unavailable_naming_the_provider(
    call: Call, client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(UnavailableError) as info:
        call(client, faulty("bad-gateway"))

    error = info.value
    assert error.domain == UPSTREAM_DOMAIN
    assert error.reason == "PROVIDER_UNAVAILABLE"
    assert error.metadata["httpStatus"] == "502"
    assert error.metadata["providerName"]
    assert "raw" not in error.metadata, "the provider's raw body must not be relayed"


@BOTH
def test_upstream_unavailable_is_unavailable_with_its_retry_delay(
    call: Call, client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(UnavailableError) as info:
        call(client, faulty("unavailable"))

    assert info.value.metadata["httpStatus"] == "503"
    assert info.value.retry_delay == 1.0


def _upstream_stream_error_message(emulator: Emulator) -> str:
    """What the emulator itself says mid-stream, read straight off its SSE stream."""
    body = {
        "model": "openai/gpt-4o~fault=mid-stream-error",
        "messages": [{"role": "user", "content": "Hello!"}],
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{emulator.base_url}/chat/completions", json=body, timeout=10
    ) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                event = json.loads(line.removeprefix("data: "))
                if "error" in event:
                    message: str = event["error"]["message"]
                    return message
    raise AssertionError("the emulator's mid-stream-error stream carried no error event")


def test_mid_stream_error_raises_the_mapped_code_with_the_upstream_message_after_chunks(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    expected = _upstream_stream_error_message(upstream)
    received: list[str] = []

    with expect_error(UnavailableError) as info:
        for chunk in client.stream_chat(faulty("mid-stream-error")):
            received.append(chunk.text)

    assert "".join(received), "chunks must have been relayed before the error"
    error = info.value
    assert error.message == expected
    assert error.domain == UPSTREAM_DOMAIN
    assert error.metadata["httpStatus"] == "502"


def test_unary_completion_whose_choice_failed_is_an_error_not_a_partial_answer(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(UnavailableError) as info:
        client.chat(faulty("mid-stream-error"))

    assert info.value.message == _upstream_stream_error_message(upstream)


def test_cut_stream_is_unavailable_after_some_chunks(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    received: list[str] = []

    with expect_error(UnavailableError) as info:
        for chunk in client.stream_chat(faulty("cut-stream")):
            received.append(chunk.text)

    assert "".join(received)
    assert info.value.domain == GATEWAY_DOMAIN


def test_stream_whose_body_ends_cleanly_without_done_is_unavailable_not_ok(
    recorded_gateway: Gateway, recorder: RecordingUpstream, expect_error: Any
) -> None:
    received: list[str] = []
    with (
        RouterClient(recorded_gateway.target, timeout=10, retry_unavailable=False) as client,
        expect_error(UnavailableError) as info,
    ):
        for chunk in client.stream_chat(seed_request(ENDS_WITHOUT_DONE)):
            received.append(chunk.text)

    assert "".join(received) == "Echo: cut"
    assert info.value.reason == "STREAM_INTERRUPTED"
    # The recorder notes the end once its last write returns, which can be after the gateway has
    # already answered the caller.
    assert recorder.wait_for(lambda found: all(e.ended is not None for e in found), 5.0), (
        recorder.snapshot()
    )
    assert [e.outcome for e in recorder.snapshot()] == ["completed"]


def test_cut_unary_body_is_unavailable(
    client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(UnavailableError):
        client.chat(faulty("cut-stream"))


@BOTH
def test_garbage_json_is_internal(
    call: Call, client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(InternalError) as info:
        call(client, faulty("garbage-json"))

    assert info.value.reason == "UPSTREAM_BAD_RESPONSE"
    assert info.value.domain == GATEWAY_DOMAIN


@BOTH
def test_garbage_sse_is_not_ok(
    call: Call, client: RouterClient, upstream: Emulator, expect_error: Any
) -> None:
    with expect_error(RouterError) as info:
        call(client, faulty("garbage-sse"))

    assert isinstance(info.value, InternalError)
    assert info.value.reason == "UPSTREAM_BAD_RESPONSE"


# Upstream refuses the gateway's key --------------------------------------------------------


@pytest.fixture
def key_checking_gateway(start_emulator: Any, start_gateway: Any, canary_key: str) -> Gateway:
    """A gateway holding the canary key in front of an emulator that wants another key."""
    emulator = start_emulator("emulator-require-key", "--require-key", "some-other-key")
    return start_gateway(
        "gateway-wrong-key",
        "--log-level",
        "debug",
        upstream_url=emulator.base_url,
        key=canary_key,
    )


def test_upstream_401_is_unauthenticated_and_the_key_is_not_echoed(
    key_checking_gateway: Gateway, canary_key: str, expect_error: Any
) -> None:
    with RouterClient(key_checking_gateway.target, timeout=15, retry_unavailable=False) as client:
        with expect_error(UnauthenticatedError) as unary:
            client.chat(seed_request())
        with expect_error(UnauthenticatedError) as streamed:
            list(client.stream_chat(seed_request()))
        with expect_error(UnauthenticatedError) as listing:
            client.list_models()

    for info in (unary, streamed, listing):
        error = info.value
        assert error.domain == UPSTREAM_DOMAIN
        assert error.metadata["httpStatus"] == "401"
        assert canary_key not in str(error)
        assert canary_key not in repr(error.metadata)
    log = key_checking_gateway.log_text()
    assert "DEBUG" in log, "the gateway must have logged at debug level for this to mean much"
    assert canary_key not in log
