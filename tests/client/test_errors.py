"""Typed errors: every gRPC code has its class, and the rich status details are decoded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent import futures
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

import routerpc
from routerpc import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RouterError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
    error_from_rpc,
    error_from_status,
    pb,
)

CLASSES: dict[grpc.StatusCode, type[RouterError]] = {
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNKNOWN: UnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}
NON_OK = [code for code in grpc.StatusCode if code != grpc.StatusCode.OK]


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(
    code: grpc.StatusCode,
    message: str = "upstream said no",
    *,
    reason: str = "RATE_LIMITED",
    retry_seconds: float | None = 2.5,
    violations: tuple[tuple[str, str, str], ...] = (
        ("provider.quantizations[0]", "value must not be in list [0]", "enum.not_in"),
        ("temperature", "must be at most 2", "double.lte"),
    ),
) -> status_pb2.Status:
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=reason,
                domain="openrouter.ai",
                metadata={"provider": "DeepInfra", "http_status": "429"},
            )
        ),
        _pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=field, description=description, reason=why
                    )
                    for field, description, why in violations
                ]
            )
        ),
    ]
    if retry_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(timedelta(seconds=retry_seconds))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


# error_from_status ---------------------------------------------------------------------------


def test_every_non_ok_code_has_its_own_exported_class() -> None:
    assert set(CLASSES) == set(NON_OK)
    assert len(set(CLASSES.values())) == 16
    for cls in CLASSES.values():
        assert getattr(routerpc, cls.__name__) is cls
        assert cls.__name__ in routerpc.__all__


@pytest.mark.parametrize("code", NON_OK, ids=lambda c: c.name)
def test_error_from_status_gives_the_class_for_the_code_with_every_detail(
    code: grpc.StatusCode,
) -> None:
    status = rich_status(code)

    error = error_from_status(status)

    assert type(error) is CLASSES[code]
    assert isinstance(error, RouterError)
    assert error.code == code
    assert error.message == "upstream said no"
    assert error.reason == "RATE_LIMITED"
    assert error.domain == "openrouter.ai"
    assert error.metadata == {"provider": "DeepInfra", "http_status": "429"}
    assert error.field_violations == (
        FieldViolation("provider.quantizations[0]", "value must not be in list [0]", "enum.not_in"),
        FieldViolation("temperature", "must be at most 2", "double.lte"),
    )
    assert error.retry_delay == pytest.approx(2.5)
    assert list(error.details) == list(status.details)
    text = str(error)
    assert text.startswith(f"{code.name}: upstream said no [RATE_LIMITED]")
    assert "provider.quantizations[0]: value must not be in list [0]" in text


def test_only_invalid_argument_is_also_a_value_error() -> None:
    value_errors = {code for code, cls in CLASSES.items() if issubclass(cls, ValueError)}
    assert value_errors == {grpc.StatusCode.INVALID_ARGUMENT}


def test_a_status_without_details_gives_empty_details() -> None:
    error = error_from_status(
        status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="no such model")
    )

    assert type(error) is NotFoundError
    assert error.message == "no such model"
    assert (error.reason, error.domain, error.metadata) == ("", "", {})
    assert error.field_violations == ()
    assert error.retry_delay is None
    assert error.details == ()


def test_fractional_and_zero_retry_delays_are_seconds() -> None:
    assert error_from_status(
        rich_status(grpc.StatusCode.UNAVAILABLE, retry_seconds=0.25)
    ).retry_delay == pytest.approx(0.25)
    assert error_from_status(
        rich_status(grpc.StatusCode.UNAVAILABLE, retry_seconds=0)
    ).retry_delay == pytest.approx(0.0)
    assert (
        error_from_status(rich_status(grpc.StatusCode.UNAVAILABLE, retry_seconds=None)).retry_delay
        is None
    )


def test_unknown_detail_types_are_kept_but_not_decoded() -> None:
    status = rich_status(grpc.StatusCode.INTERNAL, retry_seconds=None)
    status.details.append(_pack(error_details_pb2.DebugInfo(detail="trace")))

    error = error_from_status(status)

    assert type(error) is InternalError
    assert len(error.details) == 3
    assert error.reason == "RATE_LIMITED"


def test_a_code_outside_the_grpc_range_is_unknown() -> None:
    error = error_from_status(status_pb2.Status(code=99, message="odd"))
    assert type(error) is UnknownError
    assert error.message == "odd"


# error_from_rpc on real failed calls --------------------------------------------------------

CHAT = "/routerpc.v1.RouterService/Chat"
STATUS_FOR_MODEL: dict[str, status_pb2.Status] = {
    "rich/resource-exhausted": rich_status(grpc.StatusCode.RESOURCE_EXHAUSTED),
    "rich/permission-denied": rich_status(
        grpc.StatusCode.PERMISSION_DENIED, "moderation", reason="MODERATION", retry_seconds=None
    ),
}


def _chat_handler(request: pb.ChatRequest, context: grpc.ServicerContext) -> pb.ChatResponse:
    if request.model in STATUS_FOR_MODEL:
        context.abort_with_status(rpc_status.to_status(STATUS_FOR_MODEL[request.model]))
    context.abort(grpc.StatusCode.NOT_FOUND, f"no model {request.model}")
    raise AssertionError("abort returns only by raising")


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "routerpc.v1.RouterService",
        {
            "Chat": grpc.unary_unary_rpc_method_handler(
                _chat_handler,
                request_deserializer=pb.ChatRequest.FromString,
                response_serializer=pb.ChatResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def _sync_failure(address: str, model: str) -> grpc.RpcError:
    with grpc.insecure_channel(address) as channel:
        stub = pb.RouterServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Chat(pb.ChatRequest(model=model), timeout=10)
    return info.value


async def _aio_failure(address: str, model: str) -> grpc.RpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb.RouterServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            await stub.Chat(pb.ChatRequest(model=model), timeout=10)
    return info.value


def _assert_rich_resource_exhausted(error: RouterError) -> None:
    assert type(error) is ResourceExhaustedError
    assert error.message == "upstream said no"
    assert error.reason == "RATE_LIMITED"
    assert error.domain == "openrouter.ai"
    assert error.metadata == {"provider": "DeepInfra", "http_status": "429"}
    assert [v.field for v in error.field_violations] == ["provider.quantizations[0]", "temperature"]
    assert error.retry_delay == pytest.approx(2.5)
    assert len(error.details) == 3


def test_error_from_rpc_decodes_a_sync_call_with_rich_status(address: str) -> None:
    error = error_from_rpc(_sync_failure(address, "rich/resource-exhausted"))
    _assert_rich_resource_exhausted(error)


async def test_error_from_rpc_decodes_an_aio_call_with_rich_status(address: str) -> None:
    error = error_from_rpc(await _aio_failure(address, "rich/resource-exhausted"))
    _assert_rich_resource_exhausted(error)


def test_error_from_rpc_uses_the_code_of_the_call(address: str) -> None:
    error = error_from_rpc(_sync_failure(address, "rich/permission-denied"))

    assert type(error) is PermissionDeniedError
    assert error.message == "moderation"
    assert error.reason == "MODERATION"
    assert error.retry_delay is None


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_error_from_rpc_without_status_details_keeps_code_and_message(
    address: str, flavour: str
) -> None:
    if flavour == "sync":
        rpc_error = _sync_failure(address, "plain/missing")
    else:
        rpc_error = asyncio.run(_aio_failure(address, "plain/missing"))

    error = error_from_rpc(rpc_error)

    assert type(error) is NotFoundError
    assert error.message == "no model plain/missing"
    assert error.reason == ""
    assert error.details == ()


def test_error_from_rpc_on_a_connection_failure_is_unavailable() -> None:
    with grpc.insecure_channel("127.0.0.1:1") as channel:
        stub = pb.RouterServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Chat(pb.ChatRequest(model="x"), timeout=5)

    error = error_from_rpc(info.value)

    assert type(error) is UnavailableError
    assert error.message
