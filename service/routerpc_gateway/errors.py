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


_MAX_MESSAGE_BYTES = 1024
"""Longest status message sent, in UTF-8 bytes.

A status travels in the trailers twice (``grpc-message``, percent-encoded, and inside
``grpc-status-details-bin``, base64-encoded), and gRPC clients drop a call whose trailers pass
8 KiB (soft limit) or 16 KiB (hard limit): the caller would see ``RESOURCE_EXHAUSTED "received
metadata size exceeds hard limit"`` instead of the real error. Upstream text is not ours to bound,
so every status is clipped here."""
_MAX_KEY_CHARS = 64
"""``google.rpc.ErrorInfo``: metadata keys are at most 64 characters."""
_MAX_VALUE_BYTES = 1024
"""Longest single ErrorInfo metadata value or BadRequest text, in UTF-8 bytes."""
_DETAILS_BUDGET_BYTES = 2048
"""All ErrorInfo metadata plus all BadRequest violations together, in UTF-8 bytes; entries that
no longer fit are left out (upstream errors put ``httpStatus`` and ``availability*`` first)."""
_ELLIPSIS = "\u2026"


def _text(text: str) -> str:
    """``text`` with lone surrogates replaced: they are legal as JSON escapes (``"\\ud800"``) but
    not in a protobuf string, where they would make building the status raise (and turn any
    error into UNKNOWN)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _clip(text: str, limit: int) -> str:
    """``_text(text)`` in at most ``limit`` UTF-8 bytes, ending in an ellipsis when cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    keep = limit - len(_ELLIPSIS.encode())
    return data[:keep].decode("utf-8", "ignore") + _ELLIPSIS


def _size(*texts: str) -> int:
    return sum(len(t.encode("utf-8")) for t in texts)


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
        """The ``google.rpc.Status`` sent in the ``grpc-status-details-bin`` trailer.

        Bounded whatever the error holds (see ``_MAX_MESSAGE_BYTES``): the message is clipped,
        metadata keys and values are clipped, and metadata and violations share one byte budget.
        """
        budget = _DETAILS_BUDGET_BYTES
        metadata: dict[str, str] = {}
        for raw_key, raw_value in self.metadata.items():
            key = _text(str(raw_key))[:_MAX_KEY_CHARS]
            value = _clip(str(raw_value), _MAX_VALUE_BYTES)
            if key and key not in metadata and _size(key, value) <= budget:
                metadata[key] = value
                budget -= _size(key, value)
        details: list[any_pb2.Any] = []
        info = error_details_pb2.ErrorInfo(
            reason=_text(self.reason)[:63], domain=self.domain, metadata=metadata
        )
        details.append(_pack(info))
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after * 1e9))
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        violations = []
        for v in self.violations:
            field, description, reason = (
                _clip(text, _MAX_VALUE_BYTES) for text in (v.field, v.description, v.reason)
            )
            if _size(field, description, reason) > budget:
                break
            budget -= _size(field, description, reason)
            violations.append(
                error_details_pb2.BadRequest.FieldViolation(
                    field=field, description=description, reason=reason
                )
            )
        if violations:
            details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
        return status_pb2.Status(
            code=self.code.value[0],
            message=_clip(self.message, _MAX_MESSAGE_BYTES),
            details=details,
        )


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
    """ErrorInfo metadata (string map, lowerCamelCase keys) from an OpenRouter error object.

    The documented ``availability`` fields come first so that, when ``to_status`` has to leave
    entries out, it leaves out free-form provider metadata rather than them.
    """
    out: dict[str, str] = {}
    availability = error.get("availability")
    if isinstance(availability, Mapping):
        for key in ("code", "excluded_by", "constraint", "requested_models", "retryable"):
            if key in availability:
                value = availability[key]
                out[_camel(f"availability_{key}")] = (
                    value if isinstance(value, str) else _compact(value)
                )
    raw = error.get("metadata")
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if key == "raw":  # the provider's own body: large, unstructured, may echo input
                continue
            name = _camel(str(key))[:_MAX_KEY_CHARS]
            if name and name not in out:
                out[name] = value if isinstance(value, str) else _compact(value)
    return {k: _clip(v, _MAX_VALUE_BYTES) for k, v in out.items()}


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
    metadata = {"httpStatus": str(status)}  # first: never the entry left out of the budget
    metadata.update((k, v) for k, v in _flat_metadata(error).items() if k != "httpStatus")
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
