"""Typed errors carrying the gateway's rich status details.

Every failure the gateway reports is a ``google.rpc.Status`` whose details say why (``ErrorInfo``),
which fields were wrong (``BadRequest``) and when to retry (``RetryInfo``). Callers should branch
on types and those details, never on message text, so each gRPC code gets its own class::

    RouterError
     ├── CancelledError            ├── FailedPreconditionError
     ├── UnknownError              ├── AbortedError
     ├── InvalidArgumentError      ├── OutOfRangeError
     ├── DeadlineExceededError     ├── UnimplementedError
     ├── NotFoundError             ├── InternalError
     ├── AlreadyExistsError        ├── UnavailableError
     ├── PermissionDeniedError     ├── DataLossError
     ├── ResourceExhaustedError    └── UnauthenticatedError

The same classes are raised for local validation (``ChatRequestBuilder.build``): a request that
would be rejected by the gateway is rejected before it leaves the process, with the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "CancelledError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RouterError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "error_from_rpc",
    "error_from_status",
]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: a dotted path such as ``provider.quantizations[0]``."""

    field: str
    description: str
    reason: str = ""


class RouterError(Exception):
    """Base of every error the client raises for a failed call or an invalid request."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN
    _by_code: ClassVar[dict[grpc.StatusCode, type[RouterError]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        RouterError._by_code[cls.grpc_code] = cls

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        retry_delay: float | None = None,
        details: Sequence[any_pb2.Any] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        self.retry_delay = retry_delay
        self.details: tuple[any_pb2.Any, ...] = tuple(details)

    @property
    def code(self) -> grpc.StatusCode:
        """The gRPC status code this error stands for."""
        return self.grpc_code

    def __str__(self) -> str:
        text = f"{self.grpc_code.name}: {self.message}"
        if self.reason:
            text += f" [{self.reason}]"
        for violation in self.field_violations:
            text += f"\n  {violation.field}: {violation.description}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class CancelledError(RouterError):
    """The call was cancelled, usually by the caller."""

    grpc_code = grpc.StatusCode.CANCELLED


class UnknownError(RouterError):
    """An error the gateway could not classify."""

    grpc_code = grpc.StatusCode.UNKNOWN


class InvalidArgumentError(RouterError, ValueError):
    """The request is invalid; ``field_violations`` names each bad field."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(RouterError):
    """The deadline passed before the upstream answered."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFoundError(RouterError):
    """The model is unknown, or no endpoint satisfies the routing preferences."""

    grpc_code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(RouterError):
    """Not used by the gateway today; present so every code has a class."""

    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDeniedError(RouterError):
    """The upstream or a policy refused the request (moderation, guardrail, region)."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(RouterError):
    """Rate limited or out of capacity; ``retry_delay`` says when to try again."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(RouterError):
    """The account cannot serve the request as it stands (for example, no credits)."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(RouterError):
    """The call was aborted."""

    grpc_code = grpc.StatusCode.ABORTED


class OutOfRangeError(RouterError):
    """A value is out of range."""

    grpc_code = grpc.StatusCode.OUT_OF_RANGE


class UnimplementedError(RouterError):
    """The gateway does not implement the method."""

    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(RouterError):
    """The gateway or the upstream broke an invariant (for example, an unreadable reply)."""

    grpc_code = grpc.StatusCode.INTERNAL


class UnavailableError(RouterError):
    """The upstream is unreachable or the stream was cut; safe to retry for unary calls."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class DataLossError(RouterError):
    """Unrecoverable data loss."""

    grpc_code = grpc.StatusCode.DATA_LOSS


class UnauthenticatedError(RouterError):
    """The caller's credentials are missing or wrong, or the gateway's key was refused."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED


def _code_for(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN


def error_from_status(status: status_pb2.Status) -> RouterError:
    """Build the typed error for a ``google.rpc.Status``, decoding its standard details."""
    cls = RouterError._by_code.get(_code_for(status.code), UnknownError)
    reason = domain = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    retry_delay: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [
                FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations
            ]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    return cls(
        status.message,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=violations,
        retry_delay=retry_delay,
        details=list(status.details),
    )


def error_from_rpc(error: grpc.RpcError) -> RouterError:
    """Turn a failed call (sync or aio) into its typed error, keeping every status detail."""
    call: Any = error  # grpc.RpcError's stub omits the Call methods every real error has
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    for key, value in call.trailing_metadata() or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            if status.code == code.value[0]:
                return error_from_status(status)
    return error_from_status(status_pb2.Status(code=code.value[0], message=message))
