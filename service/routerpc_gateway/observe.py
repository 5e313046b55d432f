"""What operators see: Prometheus metrics and one structured log line per RPC.

An interceptor (outermost, so refused and failed calls count too) opens a :class:`CallRecord` for
every RPC but health; the servicer fills in what it learns (caller, model, provider,
quantization, attempts, tokens, cost, upstream time, time to first chunk); when the call ends the
record becomes metrics and one ``routerpc.access`` log line. Neither ever holds prompt text, a
key or a caller token: the record has no field that could carry them.

Label values are bounded: model and provider names beyond the first few hundred distinct values
are reported as ``other``, so no caller can create unbounded series. With ``--workers N`` the
metrics use prometheus-client's multiprocess mode and the master serves the sum.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

import grpc
import grpc.aio
from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "REQUEST_ID_KEY",
    "CallRecord",
    "ObservingInterceptor",
    "count_retry",
    "count_shed",
    "count_upstream_status",
    "current_record",
]

access_log = logging.getLogger("routerpc.access")

REQUEST_ID_KEY = "routerpc-request-id"
"""Trailing metadata key carrying the request id that is also in the log line."""

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OPEN_PREFIX = "/grpc.health.v1.Health/"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

RPCS = Counter("routerpc_rpcs_total", "RPCs by method and final gRPC code.", ["method", "code"])
RPC_SECONDS = Histogram(
    "routerpc_rpc_duration_seconds", "Whole RPC duration.", ["method"], buckets=_SECONDS
)
UPSTREAM_SECONDS = Histogram(
    "routerpc_upstream_duration_seconds",
    "Upstream call duration (unary: until the reply; streams: until the stream ends).",
    ["method"],
    buckets=_SECONDS,
)
FIRST_CHUNK_SECONDS = Histogram(
    "routerpc_time_to_first_chunk_seconds",
    "From the start of a StreamChat to its first relayed chunk.",
    buckets=_SECONDS,
)
IN_FLIGHT = Gauge(
    "routerpc_in_flight_rpcs", "RPCs in progress.", ["method"], multiprocess_mode="livesum"
)
RETRIES = Counter("routerpc_upstream_retries_total", "Upstream attempts that were retries.")
SHED = Counter("routerpc_shed_total", "Calls refused by the concurrency limit.")
UPSTREAM_RESPONSES = Counter(
    "routerpc_upstream_responses_total",
    "Upstream attempts by HTTP status (or failure reason when there was none).",
    ["status"],
)
TOKENS = Counter(
    "routerpc_tokens_total",
    "Tokens by kind (prompt, completion, reasoning, cached), model, provider, quantization and "
    "caller.",
    ["kind", "model", "provider", "quantization", "caller"],
)
COST = Counter(
    "routerpc_cost_usd_total",
    "Cost in USD (OpenRouter credits) by model, provider, quantization and caller.",
    ["model", "provider", "quantization", "caller"],
)


class _BoundedLabel:
    """Keeps at most ``limit`` distinct values of one label; later newcomers become "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        value = value[:100] or "unknown"
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


_model_label = _BoundedLabel(300)
_provider_label = _BoundedLabel(200)
_caller_label = _BoundedLabel(500)


@dataclass
class CallRecord:
    """What one RPC did; everything here may be logged and exported."""

    request_id: str
    method: str
    started: float = field(default_factory=time.monotonic)
    caller: str = "anonymous"
    model: str = ""
    provider: str = ""
    quantization: str = ""
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    upstream_seconds: float | None = None
    first_chunk_seconds: float | None = None
    code: str = "OK"

    def add_usage(self, usage: Any, quantization: str) -> None:
        """Take token counts and cost from a ``pb.Usage``."""
        self.prompt_tokens = usage.prompt_tokens
        self.completion_tokens = usage.completion_tokens
        self.reasoning_tokens = usage.reasoning_tokens
        self.cached_tokens = usage.cached_tokens
        self.cost = usage.cost if usage.HasField("cost") else None
        self.quantization = quantization


current_record: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "current_record", default=None
)


def count_retry() -> None:
    RETRIES.inc()


def count_shed() -> None:
    SHED.inc()


def count_upstream_status(status: str) -> None:
    UPSTREAM_RESPONSES.labels(status=status[:40]).inc()


def _finish(record: CallRecord, caller: str) -> None:
    record.caller = caller
    elapsed = time.monotonic() - record.started
    method = record.method
    RPCS.labels(method=method, code=record.code).inc()
    RPC_SECONDS.labels(method=method).observe(elapsed)
    if record.upstream_seconds is not None:
        UPSTREAM_SECONDS.labels(method=method).observe(record.upstream_seconds)
    if record.first_chunk_seconds is not None and method == "StreamChat":
        FIRST_CHUNK_SECONDS.observe(record.first_chunk_seconds)
    if record.prompt_tokens or record.completion_tokens or record.cost is not None:
        labels = {
            "model": _model_label(record.model),
            "provider": _provider_label(record.provider),
            "quantization": record.quantization or "unknown",
            "caller": _caller_label(caller),
        }
        for kind in ("prompt", "completion", "reasoning", "cached"):
            count = getattr(record, f"{kind}_tokens")
            if count:
                TOKENS.labels(kind=kind, **labels).inc(count)
        if record.cost:
            COST.labels(**labels).inc(record.cost)
    fields = asdict(record)
    fields.pop("started")
    fields["latency_ms"] = round(elapsed * 1000, 3)
    level = logging.INFO if record.code == "OK" else logging.WARNING
    access_log.log(level, "rpc %s %s", method, record.code, extra={"rpc": fields})


def _code_of(error: BaseException, context: Any) -> str:
    if isinstance(error, grpc.aio.AbortError):
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    if isinstance(error, BaseException) and type(error).__name__ == "CancelledError":
        return "CANCELLED"
    return "UNKNOWN"


async def _decoded(parse: Any, raw: bytes, context: Any) -> Any:
    """The request message, or INVALID_ARGUMENT when the bytes are not one."""
    if parse is None:
        return raw
    try:
        return parse(raw)
    except Exception as error:  # DecodeError, or the runtime's recursion limit
        kind = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
        name = kind.full_name if kind is not None else "request"
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a valid {name} message ({type(error).__name__})",
        )
        raise AssertionError("unreachable: abort raises") from None


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """Times, counts and logs every RPC except health."""

    def __init__(self, caller_of: Callable[[], str]) -> None:
        self._caller_of = caller_of

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_OPEN_PREFIX):
            return handler
        return self._wrap(handler, method.rsplit("/", 1)[-1])

    def _start(self, method: str, context: Any) -> CallRecord:
        record = CallRecord(request_id=uuid.uuid4().hex, method=method)
        current_record.set(record)
        IN_FLIGHT.labels(method=method).inc()
        return record

    def _end(self, record: CallRecord, context: Any, error: BaseException | None) -> None:
        IN_FLIGHT.labels(method=record.method).dec()
        if error is not None:
            record.code = _code_of(error, context)
        _finish(record, self._caller_of())

    def _wrap(self, handler: Handler, method: str) -> Handler:
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        parse = handler.request_deserializer
        if parse is not None and (handler.unary_unary or handler.unary_stream):
            # Parse here, not in grpc: an undecodable request is then INVALID_ARGUMENT (and
            # one access line), instead of UNKNOWN with a traceback logged per request.
            codec["request_deserializer"] = None
        if handler.unary_unary is not None:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(raw: Any, context: Any) -> Any:
                record = self._start(method, context)
                error: BaseException | None = None
                try:
                    request = await _decoded(parse, raw, context)
                    return await inner_uu(request, context)
                except BaseException as raised:
                    error = raised
                    raise
                finally:
                    self._end(record, context, error)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
        if handler.unary_stream is not None:
            inner_us: Any = handler.unary_stream
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(inner_us, method, parse), **codec
            )
        if handler.stream_stream is not None:
            inner_ss: Any = handler.stream_stream
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(inner_ss, method, None), **codec
            )
        return handler

    def _streaming(
        self, inner: Any, method: str, parse: Any
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
            record = self._start(method, context)
            error: BaseException | None = None
            try:
                if parse is not None:
                    request = await _decoded(parse, request, context)
                async for item in inner(request, context):
                    if record.first_chunk_seconds is None:
                        record.first_chunk_seconds = time.monotonic() - record.started
                    yield item
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._end(record, context, error)

        return streaming
