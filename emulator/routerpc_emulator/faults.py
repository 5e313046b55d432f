"""Fault injection: how a test asks the emulator to misbehave, and the canned misbehaviours.

A fault is chosen per chat-completion request, either with the header ``X-Emulator-Fault: <name>``
or with a model suffix ``~fault=<name>`` (``openai/gpt-4o~fault=rate-limit``; the suffix is removed
before routing). The header wins when both are present. An unknown name is answered with 400 so a
typo cannot silently turn a fault test into a happy-path test. Faults apply only to
``POST /api/v1/chat/completions``, after body validation and routing succeeded (a 400 or a routing
404 is never masked by a fault).

Names:

``rate-limit``
    429 ``{"error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":
    "rate_limit_exceeded"}}}`` with ``Retry-After: 2``.
``rate-limit-no-retry-after``
    The same 429 without ``Retry-After``.
``server-error``
    500 ``Internal Server Error`` (``error_type: server``).
``bad-gateway``
    502 ``Provider returned error`` with ``metadata.provider_name`` (the routed provider),
    ``raw`` and ``error_type: provider_unavailable``.
``unavailable``
    503 ``Service temporarily unavailable`` (``error_type: provider_overloaded``) with
    ``Retry-After: 1``.
``slow-first-byte``
    Sleep before sending anything, then answer normally (unary or streaming). The delay is
    ``X-Emulator-Delay-Ms`` milliseconds, default 3000.
``mid-stream-error``
    Streaming: role chunk and a couple of content chunks, then one event with a top-level
    ``error`` (code 502, ``error_type: provider_unavailable``) and a choice with
    ``finish_reason: "error"``; the stream then ends without ``[DONE]``. Unary: HTTP 200 whose
    choice carries ``error``, ``finish_reason: "error"`` and the partial content.
``cut-stream``
    Streaming: a couple of chunks, a 100 ms stall, then the TCP connection is aborted (no
    ``[DONE]``, no final chunk terminator). Unary: headers announce the full
    ``Content-Length``, half the body is sent, then the connection is aborted.
``garbage-json``
    200 ``application/json`` whose body is not JSON (whatever ``stream`` says).
``garbage-sse``
    200 ``text/event-stream`` with malformed ``data:`` lines, then ``[DONE]`` (whatever ``stream``
    says).
``oversized``
    A normal 200 answer whose content is ``X-Emulator-Size-Bytes`` bytes long (default 8 MiB);
    streamed as one huge delta when ``stream`` is true.
``fail-first-<n>``
    The first ``n`` requests with this fault (counted per fault name, routed model and the optional
    ``X-Emulator-Fault-Key`` header) get the ``bad-gateway`` 502; later ones succeed. Meant for
    testing client retries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web

from .errors import error_response

FAULT_HEADER = "X-Emulator-Fault"
DELAY_HEADER = "X-Emulator-Delay-Ms"
SIZE_HEADER = "X-Emulator-Size-Bytes"
KEY_HEADER = "X-Emulator-Fault-Key"
MODEL_SUFFIX = "~fault="
DEFAULT_DELAY_MS = 3000
DEFAULT_SIZE_BYTES = 8 * 1024 * 1024
MAX_SIZE_BYTES = 256 * 1024 * 1024
_FAIL_FIRST = re.compile(r"fail-first-(\d{1,6})")


class FaultKind(StrEnum):
    RATE_LIMIT = "rate-limit"
    RATE_LIMIT_NO_RETRY_AFTER = "rate-limit-no-retry-after"
    SERVER_ERROR = "server-error"
    BAD_GATEWAY = "bad-gateway"
    UNAVAILABLE = "unavailable"
    SLOW_FIRST_BYTE = "slow-first-byte"
    MID_STREAM_ERROR = "mid-stream-error"
    CUT_STREAM = "cut-stream"
    GARBAGE_JSON = "garbage-json"
    GARBAGE_SSE = "garbage-sse"
    OVERSIZED = "oversized"
    FAIL_FIRST = "fail-first"


FAULT_NAMES: tuple[str, ...] = (
    *(kind.value for kind in FaultKind if kind is not FaultKind.FAIL_FIRST),
    "fail-first-<n>",
)


class FaultError(ValueError):
    """A fault request the emulator cannot honour (unknown name, malformed parameter header)."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    count: int = 0

    @property
    def name(self) -> str:
        if self.kind is FaultKind.FAIL_FIRST:
            return f"fail-first-{self.count}"
        return self.kind.value


def split_model_suffix(model: str) -> tuple[str, str | None]:
    """``openai/gpt-4o~fault=cut-stream`` -> (``openai/gpt-4o``, ``cut-stream``)."""
    base, marker, name = model.partition(MODEL_SUFFIX)
    return (base, name) if marker else (model, None)


def parse_fault(name: str) -> Fault:
    cleaned = name.strip().lower()
    match = _FAIL_FIRST.fullmatch(cleaned)
    if match:
        return Fault(FaultKind.FAIL_FIRST, int(match.group(1)))
    try:
        return Fault(FaultKind(cleaned))
    except ValueError:
        known = ", ".join(FAULT_NAMES)
        raise FaultError(f"Unknown emulator fault {name!r}; known faults: {known}") from None


def select_fault(header: str | None, suffix: str | None) -> Fault | None:
    """The header wins over the model suffix; blank values mean no fault."""
    for source in (header, suffix):
        if source is not None and source.strip():
            return parse_fault(source)
    return None


def first_byte_delay_s(headers: Mapping[str, str]) -> float:
    return _bounded_int(headers, DELAY_HEADER, DEFAULT_DELAY_MS, 600_000) / 1000


def oversized_bytes(headers: Mapping[str, str]) -> int:
    return _bounded_int(headers, SIZE_HEADER, DEFAULT_SIZE_BYTES, MAX_SIZE_BYTES)


def status_fault_response(fault: Fault, provider_name: str) -> web.Response | None:
    """The canned HTTP error for faults that replace the whole answer, else None.

    ``fail-first-<n>`` is not handled here because it depends on how often it already fired.
    """
    kind = fault.kind
    if kind in (FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT_NO_RETRY_AFTER):
        return error_response(
            429,
            "Rate limit exceeded",
            {"error_type": "rate_limit_exceeded"},
            headers={"Retry-After": "2"} if kind is FaultKind.RATE_LIMIT else None,
        )
    if kind is FaultKind.SERVER_ERROR:
        return error_response(500, "Internal Server Error", {"error_type": "server"})
    if kind is FaultKind.BAD_GATEWAY:
        return bad_gateway_response(provider_name)
    if kind is FaultKind.UNAVAILABLE:
        return error_response(
            503,
            "Service temporarily unavailable",
            {"error_type": "provider_overloaded", "provider_name": provider_name},
            headers={"Retry-After": "1"},
        )
    if kind is FaultKind.GARBAGE_JSON:
        return web.Response(
            status=200,
            body=b'{"id": "gen-garbage", "object": "chat.completion", "choices": [<<not json>>',
            content_type="application/json",
        )
    return None


def bad_gateway_response(provider_name: str) -> web.Response:
    return error_response(
        502,
        "Provider returned error",
        {
            "provider_name": provider_name,
            "raw": '{"error":{"message":"upstream connect error","type":"server_error"}}',
            "error_type": "provider_unavailable",
        },
    )


class FailFirstCounter:
    """Remembers how many times each ``fail-first-<n>`` key has already failed."""

    def __init__(self, max_keys: int = 1000) -> None:
        self._failed: dict[str, int] = {}
        self._max_keys = max_keys

    def should_fail(self, key: str, limit: int) -> bool:
        failed = self._failed.get(key, 0)
        if failed >= limit:
            return False
        if key not in self._failed and len(self._failed) >= self._max_keys:
            self._failed.pop(next(iter(self._failed)))
        self._failed[key] = failed + 1
        return True

    def clear(self) -> None:
        self._failed.clear()


def _bounded_int(headers: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = headers.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise FaultError(f"{name} must be an integer, got {raw!r}") from None
    if not 0 <= value <= maximum:
        raise FaultError(f"{name} must be between 0 and {maximum}, got {value}")
    return value
