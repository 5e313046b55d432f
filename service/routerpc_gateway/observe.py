"""What operators see of each call: metrics and one structured log line per RPC.

The gateway's one call wrapper opens a :class:`CallRecord` for every RPC but health and runs
authentication inside it, so refused and failed calls count too; the servicer fills in what it
learns (caller, model, provider, quantization, attempts, tokens, cost, upstream time, time to
first chunk); when the call ends the record becomes metrics (``metrics.count_call``) and one
``routerpc.access`` log line. Neither ever holds prompt text, a key or a caller token: the
record has no field that could carry them.
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import grpc
import grpc.aio

from routerpc_gateway.logs import access_line
from routerpc_gateway.metrics import IN_FLIGHT, count_call
from routerpc_gateway.registration import GenericOnly

__all__ = [
    "REQUEST_ID_KEY",
    "CallObserver",
    "CallRecord",
    "Gate",
    "current_record",
]

REQUEST_ID_KEY = "routerpc-request-id"
"""Trailing metadata key carrying the request id that is also in the log line."""

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class CallRecord:
    """What one RPC did; everything here may be logged and exported.

    A plain class whose defaults live on the class: a call sets only what it learns, instead
    of a dataclass ``__init__`` writing all sixteen fields for every RPC.
    """

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

    def __init__(self, request_id: str, method: str) -> None:
        self.request_id = request_id
        self.method = method
        self.started = time.monotonic()

    def add_usage(self, usage: Any, quantization: str) -> None:
        """Take token counts and cost from a ``pb.Usage``."""
        self.prompt_tokens = usage.prompt_tokens
        self.completion_tokens = usage.completion_tokens
        self.reasoning_tokens = usage.reasoning_tokens
        self.cached_tokens = usage.cached_tokens
        self.cost = usage.cost if usage.HasField("cost") else None
        self.quantization = quantization

    def log_fields(self, elapsed: float) -> dict[str, Any]:
        """The access line's fields, in their order (``latency_ms``: ``elapsed``)."""
        return {
            "request_id": self.request_id,
            "method": self.method,
            "caller": self.caller,
            "model": self.model,
            "provider": self.provider,
            "quantization": self.quantization,
            "attempts": self.attempts,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
            "cost": self.cost,
            "upstream_seconds": self.upstream_seconds,
            "first_chunk_seconds": self.first_chunk_seconds,
            "code": self.code,
            "latency_ms": _latency_ms(elapsed),
        }

    def text_fields(self, elapsed: float) -> str:
        """``logs.text_fields(self.log_fields(elapsed))``, the same fields in the same order,
        without the dict and the loop over it: the text access line of every call cost 42,000
        instructions that way and 26,000 this way (``tests/unit/test_logs.py`` holds the two
        to one text for records in every state)."""
        line = f" request_id={self.request_id}" if self.request_id else ""
        if self.method:
            line += f" method={self.method}"
        if self.caller:
            line += f" caller={self.caller}"
        if self.model:
            line += f" model={self.model}"
        if self.provider:
            line += f" provider={self.provider}"
        if self.quantization:
            line += f" quantization={self.quantization}"
        if self.attempts:
            line += f" attempts={self.attempts}"
        if self.prompt_tokens:
            line += f" prompt_tokens={self.prompt_tokens}"
        if self.completion_tokens:
            line += f" completion_tokens={self.completion_tokens}"
        if self.reasoning_tokens:
            line += f" reasoning_tokens={self.reasoning_tokens}"
        if self.cached_tokens:
            line += f" cached_tokens={self.cached_tokens}"
        if self.cost:
            line += f" cost={self.cost:.12g}"
        if self.upstream_seconds:
            line += f" upstream_seconds={self.upstream_seconds:.12g}"
        if self.first_chunk_seconds:
            line += f" first_chunk_seconds={self.first_chunk_seconds:.12g}"
        if self.code:
            line += f" code={self.code}"
        latency_ms = _latency_ms(elapsed)
        return line + f" latency_ms={latency_ms:.12g}" if latency_ms else line


def _latency_ms(elapsed: float) -> float:
    return int(elapsed * 1_000_000) / 1000  # whole microseconds: no round()


current_record: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "current_record", default=None
)


def _request_id() -> str:
    """128 random bits as 32 hex digits, like ``uuid4().hex`` without a system call per RPC
    (``random`` reseeds itself in each forked worker)."""
    return f"{random.getrandbits(128):032x}"


def _start(method: str, in_flight: tuple[str]) -> CallRecord:
    record = CallRecord(_request_id(), method)
    current_record.set(record)
    IN_FLIGHT.inc(in_flight, 1)
    return record


def _finish(
    record: CallRecord, in_flight: tuple[str], context: Any, error: BaseException | None
) -> None:
    """The call is over (``error`` is what ended it, if anything): its metrics and its line."""
    IN_FLIGHT.inc(in_flight, -1)
    if error is not None:
        record.code = _code_of(error, context)
    elapsed = time.monotonic() - record.started
    count_call(record, elapsed)
    level = logging.INFO if record.code == "OK" else logging.WARNING
    if access_line.enabled_for(level):
        access_line.write(level, f"rpc {record.method} {record.code}", record, elapsed)


def _code_of(error: BaseException, context: Any) -> str:
    if isinstance(error, grpc.aio.AbortError):
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    if isinstance(error, BaseException) and type(error).__name__ == "CancelledError":
        return "CANCELLED"
    return "UNKNOWN"


class Gate(Protocol):
    """Who may call: authentication, as the call wrapper sees it."""

    refusal: str
    """The details of the UNAUTHENTICATED status a refused call ends with."""

    def admit(self, context: Any) -> str | None:
        """The caller's name when the call may go on (the caller then set for the
        servicer); None when it must be refused."""
        ...


@dataclass(frozen=True, slots=True)
class _Refusal:
    """How a call ends before its handler runs."""

    code: grpc.StatusCode
    details: str


def _admitted(gate: Gate, parse: Any, request: Any, context: Any, record: CallRecord) -> Any:
    """The request once the caller is admitted (and named in ``record``), decoded here when
    ``parse`` is set; or the :class:`_Refusal` the call must end with. A plain function, not a
    coroutine: on the path every call takes, nothing here waits."""
    caller = gate.admit(context)
    if caller is None:
        return _Refusal(grpc.StatusCode.UNAUTHENTICATED, gate.refusal)
    record.caller = caller
    if parse is None:
        return request
    try:
        return parse(request)
    except Exception as error:  # DecodeError, or the runtime's recursion limit
        kind = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
        name = kind.full_name if kind is not None else "request"
        return _Refusal(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a valid {name} message ({type(error).__name__})",
        )


class _WrappedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come out wrapped, each built once per method
    (the inner handler of a method is the same object call after call)."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrap: Callable[[Handler, str], Handler]):
        self._inner = inner
        self._wrap = wrap
        self._cache: dict[str, tuple[Handler, Handler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None  # an unknown method: UNIMPLEMENTED, as without the wrapper
        method: str = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._cache[method] = (handler, wrapped)
        return wrapped


class _Registrar(GenericOnly):
    """``server`` as the generated ``add_*_to_server`` functions see it: the generic handlers
    they register reach it wrapped (and, as for every service of the gateway, no registered
    methods: ``registration``)."""

    def __init__(self, server: grpc.aio.Server, wrap: Callable[[Handler, str], Handler]):
        super().__init__(server)
        self._wrap = wrap

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        wrapped = [_WrappedGeneric(handler, self._wrap) for handler in generic_rpc_handlers]
        super().add_generic_rpc_handlers(wrapped)


class CallObserver:
    """The gateway's one call wrapper, around every RPC registered through :meth:`registrar`
    (the router service and reflection; health is registered beside it, unobserved, and stays
    open): times, counts and logs the call, runs the gate (authentication) first thing inside
    it, and decodes the request.

    Handlers are wrapped once, as they are registered (generic handlers only), not by a
    grpc.aio interceptor: grpc.aio runs its interceptor pipeline, a chain of coroutines, for
    every RPC to be handed the same handler again (about 6,000 instructions per call). One
    wrapper for every concern, because each layer is an extra coroutine per call and an extra
    async-generator hop per streamed message.
    """

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    def registrar(self, server: grpc.aio.Server) -> grpc.aio.Server:
        """``server`` for ``add_*_to_server``: what is registered through it is observed."""
        return _Registrar(server, self.wrap)

    def wrap(self, handler: Handler, path: str) -> Handler:
        """``handler`` (of the method at ``path``) inside the call wrapper."""
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
        gate = self._gate
        in_flight = (method,)

        async def unary(request: Any, context: Any) -> Any:
            record = _start(method, in_flight)
            error: BaseException | None = None
            try:
                request = _admitted(gate, parse, request, context, record)
                if type(request) is _Refusal:
                    await context.abort(request.code, request.details)
                return await inner(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                _finish(record, in_flight, context, error)

        return unary

    def _streaming(
        self, inner: Any, method: str, parse: Any
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        gate = self._gate
        in_flight = (method,)

        async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
            record = _start(method, in_flight)
            error: BaseException | None = None
            try:
                request = _admitted(gate, parse, request, context, record)
                if type(request) is _Refusal:
                    await context.abort(request.code, request.details)
                async for item in inner(request, context):
                    if record.first_chunk_seconds is None:
                        record.first_chunk_seconds = time.monotonic() - record.started
                    yield item
            except BaseException as raised:
                error = raised
                raise
            finally:
                _finish(record, in_flight, context, error)

        return streaming
