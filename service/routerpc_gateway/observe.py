"""What operators see: Prometheus metrics and one structured log line per RPC.

The gateway's one interceptor opens a :class:`CallRecord` for every RPC but health and runs
authentication inside it, so refused and failed calls count too; the servicer fills in what it
learns (caller, model, provider, quantization, attempts, tokens, cost, upstream time, time to
first chunk); when the call ends the record becomes metrics and one ``routerpc.access`` log line.
Neither ever holds prompt text, a key or a caller token: the record has no field that could
carry them.

Label values are bounded: model and provider names beyond the first few hundred distinct values
are reported as ``other``, so no caller can create unbounded series. With ``--workers N`` the
metrics use prometheus-client's multiprocess mode and the master serves the sum.
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
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


def _request_id() -> str:
    """128 random bits as 32 hex digits, like ``uuid4().hex`` without a system call per RPC
    (``random`` reseeds itself in each forked worker)."""
    return f"{random.getrandbits(128):032x}"


def count_retry() -> None:
    RETRIES.inc()


def count_shed() -> None:
    SHED.inc()


class _Children:
    """A metric's labelled children, looked up once per label values.

    ``metric.labels(...)`` validates and locks on every call; an RPC would pay that for each
    metric it touches. The label values cached here are bounded (methods, gRPC codes, upstream
    statuses cut to 40 characters and bounded in number by HTTP itself).
    """

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


_rpcs = _Children(RPCS)
_rpc_seconds = _Children(RPC_SECONDS)
_upstream_seconds = _Children(UPSTREAM_SECONDS)
_in_flight = _Children(IN_FLIGHT)
_upstream_responses = _Children(UPSTREAM_RESPONSES)
_tokens = _Children(TOKENS)  # label values bounded by the _BoundedLabel filters above
_cost = _Children(COST)


def count_upstream_status(status: str) -> None:
    _upstream_responses(status[:40]).inc()


def _finish(record: CallRecord, caller: str) -> None:
    record.caller = caller
    elapsed = time.monotonic() - record.started
    method = record.method
    _rpcs(method, record.code).inc()
    _rpc_seconds(method).observe(elapsed)
    if record.upstream_seconds is not None:
        _upstream_seconds(method).observe(record.upstream_seconds)
    if record.first_chunk_seconds is not None and method == "StreamChat":
        FIRST_CHUNK_SECONDS.observe(record.first_chunk_seconds)
    if record.prompt_tokens or record.completion_tokens or record.cost is not None:
        labels = (
            _model_label(record.model),
            _provider_label(record.provider),
            record.quantization or "unknown",
            _caller_label(caller),
        )
        for kind, count in (
            ("prompt", record.prompt_tokens),
            ("completion", record.completion_tokens),
            ("reasoning", record.reasoning_tokens),
            ("cached", record.cached_tokens),
        ):
            if count:
                _tokens(kind, *labels).inc(count)
        if record.cost:
            _cost(*labels).inc(record.cost)
    level = logging.INFO if record.code == "OK" else logging.WARNING
    if access_log.isEnabledFor(level):
        fields = dict(vars(record))  # flat scalars only: no deep copy needed
        del fields["started"]
        fields["latency_ms"] = round(elapsed * 1000, 3)
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


Admit: TypeAlias = Callable[[Any], Awaitable[None]]


async def _admitted(admit: Admit, parse: Any, request: Any, context: Any) -> Any:
    """The request once the caller is admitted: decoded here when ``parse`` is set."""
    await admit(context)
    return request if parse is None else await _decoded(parse, request, context)


class WrappedHandlers:
    """Each method's wrapped handler, built on its first call and reused after that.

    grpc.aio asks every interceptor for the handler on every RPC. Building the wrapping closures
    and a new ``RpcMethodHandler`` each time is per-call work that buys nothing: the inner
    handler of a method is the same object call after call. The cache is keyed by method and
    checked against the inner handler, so it holds one entry per registered method (unknown
    methods have no handler and never get here).
    """

    def __init__(self, wrap: Callable[[Handler, str], Handler]) -> None:
        self._wrap = wrap
        self._cache: dict[str, tuple[Handler, Handler]] = {}

    def __call__(self, method: str, handler: Handler) -> Handler:
        cached = self._cache.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._cache[method] = (handler, wrapped)
        return wrapped


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """The gateway's one call wrapper, for every RPC except health: times, counts and logs the
    call, runs ``admit`` (authentication) first thing inside it, and decodes the request.

    One wrapper rather than one interceptor per concern: each layer is an extra coroutine per
    call and an extra async-generator hop per streamed message.
    """

    def __init__(self, caller_of: Callable[[], str], admit: Admit) -> None:
        self._caller_of = caller_of
        self._admit = admit
        self._wrapped = WrappedHandlers(self._wrap)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_OPEN_PREFIX):
            return handler
        return self._wrapped(method, handler)

    def _start(self, method: str, context: Any) -> CallRecord:
        record = CallRecord(request_id=_request_id(), method=method)
        current_record.set(record)
        _in_flight(method).inc()
        return record

    def _end(self, record: CallRecord, context: Any, error: BaseException | None) -> None:
        _in_flight(record.method).dec()
        if error is not None:
            record.code = _code_of(error, context)
        _finish(record, self._caller_of())

    def _wrap(self, handler: Handler, path: str) -> Handler:
        method = path.rsplit("/", 1)[-1]
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        parse = handler.request_deserializer
        if parse is not None and (handler.unary_unary or handler.unary_stream):
            # Parse here, not in grpc: an undecodable request is then INVALID_ARGUMENT (and
            # one access line), instead of UNKNOWN with a traceback logged per request.
            codec["request_deserializer"] = None
        else:
            parse = None  # request streams are parsed by grpc, message by message
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, parse), **codec
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method, None), **codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method, parse), **codec
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(handler.stream_stream, method, None), **codec
            )
        return handler

    def _unary(self, inner: Any, method: str, parse: Any) -> Callable[[Any, Any], Any]:
        admit = self._admit

        async def unary(request: Any, context: Any) -> Any:
            record = self._start(method, context)
            error: BaseException | None = None
            try:
                return await inner(await _admitted(admit, parse, request, context), context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._end(record, context, error)

        return unary

    def _streaming(
        self, inner: Any, method: str, parse: Any
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        admit = self._admit

        async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
            record = self._start(method, context)
            error: BaseException | None = None
            try:
                async for item in inner(await _admitted(admit, parse, request, context), context):
                    if record.first_chunk_seconds is None:
                        record.first_chunk_seconds = time.monotonic() - record.started
                    yield item
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._end(record, context, error)

        return streaming
