"""Every failure as a gRPC status with rich details, and the one table from OpenRouter to gRPC.

A handler raises :class:`GatewayError`; the servicer turns it into ``context.abort`` with a
``google.rpc.Status`` carrying ``ErrorInfo`` (always), ``RetryInfo`` (when the upstream said when
to retry) and ``BadRequest`` (for invalid input). Nothing here ever includes a secret: messages
come from the upstream's error body or from fixed text, never from request headers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from routerpc import FieldViolation

__all__ = [
    "GATEWAY_DOMAIN",
    "HTTP_TO_GRPC",
    "UPSTREAM_DOMAIN",
    "GatewayError",
    "grpc_code_for_http",
    "invalid_argument",
    "parse_retry_after",
    "upstream_error",
]

UPSTREAM_DOMAIN = "openrouter.ai"
GATEWAY_DOMAIN = "routerpc.dev"

HTTP_TO_GRPC: Mapping[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    402: grpc.StatusCode.FAILED_PRECONDITION,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.ABORTED,
    412: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
    524: grpc.StatusCode.DEADLINE_EXCEEDED,
    529: grpc.StatusCode.UNAVAILABLE,
}
"""OpenRouter HTTP status → gRPC code. The README's error table is this table."""

_REASON_BY_STATUS: Mapping[int, str] = {
    400: "BAD_REQUEST",
    401: "UPSTREAM_UNAUTHENTICATED",
    402: "INSUFFICIENT_CREDITS",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    408: "UPSTREAM_TIMEOUT",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    422: "UNPROCESSABLE",
    429: "RATE_LIMITED",
    500: "UPSTREAM_INTERNAL",
    502: "PROVIDER_ERROR",
    503: "UPSTREAM_UNAVAILABLE",
    504: "UPSTREAM_TIMEOUT",
    524: "UPSTREAM_TIMEOUT",
    529: "PROVIDER_OVERLOADED",
}


def grpc_code_for_http(status: int) -> grpc.StatusCode:
    """The gRPC code for an upstream HTTP status, including ones the table does not name."""
    if status in HTTP_TO_GRPC:
        return HTTP_TO_GRPC[status]
    if 400 <= status < 500:
        return grpc.StatusCode.INVALID_ARGUMENT
    if status >= 500:
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.UNKNOWN


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form); None when absent or unusable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, 3600.0)


class GatewayError(Exception):
    """A failure to report to the caller as a rich gRPC status."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str,
        domain: str = GATEWAY_DOMAIN,
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after
        self.violations = tuple(violations)

    def to_status(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` sent in the ``grpc-status-details-bin`` trailer."""
        details: list[any_pb2.Any] = []
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=self.domain, metadata=self.metadata
        )
        details.append(_pack(info))
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after * 1e9))
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        if self.violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason
                    )
                    for v in self.violations
                ]
            )
            details.append(_pack(bad))
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=details)


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def invalid_argument(message: str, violations: Sequence[FieldViolation]) -> GatewayError:
    """INVALID_ARGUMENT with ``BadRequest`` naming each field; raised before any I/O."""
    return GatewayError(
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        reason="INVALID_REQUEST",
        violations=violations,
    )


def _flat_metadata(error: Mapping[str, Any]) -> dict[str, str]:
    """ErrorInfo metadata (string map, lowerCamelCase keys) from an OpenRouter error object."""
    out: dict[str, str] = {}
    raw = error.get("metadata")
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if key == "raw":  # the provider's own body: large, unstructured, may echo input
                continue
            out[_camel(str(key))] = value if isinstance(value, str) else _compact(value)
    availability = error.get("availability")
    if isinstance(availability, Mapping):
        for key in ("code", "excluded_by", "constraint", "requested_models", "retryable"):
            if key in availability:
                value = availability[key]
                out[_camel(f"availability_{key}")] = (
                    value if isinstance(value, str) else _compact(value)
                )
    return {k: v[:1024] for k, v in out.items()}


def _camel(key: str) -> str:
    head, *rest = key.replace("-", "_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def upstream_error(http_status: int, body: Any, *, retry_after: str | None = None) -> GatewayError:
    """Map an OpenRouter error (HTTP status + JSON body, or a 200 body's ``error``)."""
    error: Mapping[str, Any] = {}
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
    code_field = error.get("code", error.get("http_status"))
    status = http_status
    if http_status == 200 and isinstance(code_field, int):
        status = code_field  # a mid-stream or in-body error carries its own HTTP-like code
    elif http_status == 200:
        status = 502
    message = str(error.get("message") or f"upstream returned HTTP {http_status}")
    metadata = _flat_metadata(error)
    metadata["httpStatus"] = str(status)
    raw_meta = error.get("metadata")
    error_type = raw_meta.get("error_type") if isinstance(raw_meta, Mapping) else None
    availability = error.get("availability")
    if not error_type and isinstance(availability, Mapping):
        error_type = availability.get("code")
    reason = str(error_type).upper() if error_type else _REASON_BY_STATUS.get(status, "UPSTREAM")
    if status == 404 and message.startswith("No endpoints found"):
        reason = str(error_type).upper() if error_type else "NO_ENDPOINTS_FOUND"
    return GatewayError(
        grpc_code_for_http(status),
        message,
        reason=reason[:63],
        domain=UPSTREAM_DOMAIN,
        metadata=metadata,
        retry_after=parse_retry_after(retry_after),
    )
