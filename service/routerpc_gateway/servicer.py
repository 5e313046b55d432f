"""``RouterService`` over grpc.aio: validate, convert, call the upstream, answer typed.

Each handler validates before any I/O, bounds the upstream call by the caller's deadline, and
reports every failure as a rich status (``errors.GatewayError``). Streams relay each upstream
event as one message the moment it arrives and end with OK only after ``[DONE]``.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import grpc
import grpc.aio
import pydantic_core
from grpc_status import rpc_status

from routerpc import FieldViolation, pb
from routerpc._gen import enums
from routerpc._validation import field_violations
from routerpc_gateway import convert, responses
from routerpc_gateway.auth import current_caller
from routerpc_gateway.callers import Caller
from routerpc_gateway.catalog import Catalog
from routerpc_gateway.config import Settings
from routerpc_gateway.errors import GatewayError, invalid_argument, upstream_error
from routerpc_gateway.metrics import count_upstream_status
from routerpc_gateway.observe import REQUEST_ID_KEY, CallRecord, current_record
from routerpc_gateway.policy import apply_policy
from routerpc_gateway.resilience import (
    Attempts,
    ConcurrencyLimiter,
    RetryBudget,
    RetryPolicy,
    call_with_retries,
)
from routerpc_gateway.upstream import SseEvent, Upstream, budget

__all__ = ["RouterServicer"]

log = logging.getLogger("routerpc.gateway")

_LOOKUP_SECONDS = 2.0
"""Longest a quantization lookup may add to a response (only on a cold catalogue cache)."""


ATTEMPTS_KEY = "routerpc-attempts"
"""Trailing metadata key: how many upstream attempts the call made (retries + 1)."""


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any],
    error: GatewayError,
    attempts: Attempts | None = None,
) -> None:
    status = rpc_status.to_status(error.to_status())
    await context.abort(
        status.code, status.details, tuple(status.trailing_metadata) + _trailers(attempts)
    )


def _trailers(attempts: Attempts | None) -> tuple[tuple[str, str], ...]:
    """Request id (as in the access log) and attempt count, for the caller."""
    trailers: tuple[tuple[str, str], ...] = ()
    record = current_record.get()
    if record is not None:
        trailers += ((REQUEST_ID_KEY, record.request_id),)
        if attempts is not None:
            record.attempts = attempts.count
    if attempts is not None and attempts.count:
        trailers += ((ATTEMPTS_KEY, str(attempts.count)),)
    return trailers


def _record() -> CallRecord:
    """This call's record, for its access-log line and metrics (a throwaway one when the
    servicer runs without the gateway's call wrapper, as in some tests)."""
    return current_record.get() or CallRecord("", "")


def _note_served(
    record: CallRecord, model: str, provider: str, quantization: int, usage: pb.Usage
) -> None:
    record.model = model or record.model
    record.provider = provider
    name = convert.wire(enums.Quantization, quantization) if quantization else "unknown"
    record.add_usage(usage, name)


def _status_label(error: GatewayError) -> str:
    return error.metadata.get("httpStatus") or error.reason.lower()


def _validated(message: Any, what: str) -> None:
    violations = field_violations(message)
    if violations:
        fields = ", ".join(dict.fromkeys(v.field or what for v in violations))
        raise invalid_argument(f"invalid {what}: {fields}", violations)


def _encode(request: pb.ChatRequest, *, stream: bool, prefix: str = "") -> bytes:
    try:
        return convert.encode_chat(request, stream=stream)
    except convert.InvalidBodyError as error:
        field = f"{prefix}{error.field}"
        reason = "reserved" if isinstance(error, convert.ExtraBodyConflictError) else "json"
        raise invalid_argument(
            f"invalid ChatRequest: {field}", [FieldViolation(field, error.description, reason)]
        ) from None


BYOK_KEY = "x-openrouter-api-key"
"""Metadata key for a caller's own OpenRouter key (bring-your-own-key, off by default)."""


def _caller_key(context: grpc.aio.ServicerContext[Any, Any], allowed: bool) -> str | None:
    """The caller's own key when it sent one and may; PERMISSION_DENIED when it may not."""
    for key, value in context.invocation_metadata() or ():
        if key == BYOK_KEY and isinstance(value, str) and value:
            if not allowed:
                raise GatewayError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"this caller may not send its own key ({BYOK_KEY})",
                    reason="BYOK_NOT_ALLOWED",
                )
            return value
    return None


class RouterServicer(pb.RouterServiceServicer):
    """The gateway's RPCs."""

    def __init__(
        self,
        settings: Settings,
        upstream: Upstream,
        catalog: Catalog,
        *,
        retry: RetryPolicy | None = None,
        limiter: ConcurrencyLimiter | None = None,
    ) -> None:
        self._settings = settings
        self._upstream = upstream
        self._catalog = catalog
        self.retry = retry or RetryPolicy(
            max_attempts=settings.max_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            budget=RetryBudget(settings.retry_budget_ratio),
        )
        self.limiter = limiter or ConcurrencyLimiter(
            settings.max_concurrent_upstream, settings.max_queued
        )

    def _shape(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[pb.ChatRequest, str | None]:
        """The request after the caller's policy, and the caller's own key if it sent one."""
        caller = current_caller.get().caller
        return apply_policy(request, caller), _caller_key(context, self._may_byok(caller))

    def _may_byok(self, caller: Caller | None) -> bool:
        return caller.byok if caller is not None else self._settings.allow_byok

    async def _chat_once(
        self, body: bytes, deadline: float, left: float, api_key: str | None
    ) -> dict[str, Any]:
        async with self.limiter.slot(left):
            try:
                reply = await self._upstream.chat(
                    body, seconds=deadline - time.monotonic(), api_key=api_key
                )
            except GatewayError as error:
                count_upstream_status(_status_label(error))
                raise
            count_upstream_status("200")
            return reply

    async def _open_stream(
        self, body: bytes, deadline: float, left: float, api_key: str | None
    ) -> tuple[AsyncExitStack, AsyncIterator[SseEvent]]:
        """Hold a slot and open the upstream stream; failures here relayed nothing yet, so
        they may be retried."""
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self.limiter.slot(left))
            events = await stack.enter_async_context(
                self._upstream.stream_chat(
                    body, seconds=deadline - time.monotonic(), api_key=api_key
                )
            )
        except GatewayError as error:
            count_upstream_status(_status_label(error))
            await stack.aclose()
            raise
        except BaseException:
            await stack.aclose()
            raise
        count_upstream_status("200")
        return stack, events

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ChatResponse:
        attempts = Attempts()
        try:
            _validated(request, "ChatRequest")
            request, api_key = self._shape(request, context)
            body = _encode(request, stream=False)
            seconds = budget(self._settings, context.time_remaining())
            deadline = time.monotonic() + seconds
            record = _record()
            record.model = request.model
            started = time.monotonic()
            reply = await call_with_retries(
                self.retry,
                lambda left: self._chat_once(body, deadline, left, api_key),
                deadline=deadline,
                attempts=attempts,
            )
            record.upstream_seconds = time.monotonic() - started
            context.set_trailing_metadata(_trailers(attempts))
            try:
                response = responses.chat_response(reply)
            except ValueError as error:
                raise GatewayError(
                    grpc.StatusCode.INTERNAL, str(error), reason="UPSTREAM_BAD_RESPONSE"
                ) from None
            for choice in reply.get("choices") or []:
                if isinstance(choice, dict) and isinstance(choice.get("error"), dict):
                    raise upstream_error(200, {"error": choice["error"]})
            model, provider = response.model, response.provider  # each read is a new str
            quantization = await self._catalog.served_quantization(
                model,
                provider,
                request.provider.quantizations,
                seconds=min(_LOOKUP_SECONDS, seconds),
            )
            response.quantization = quantization
            _note_served(record, model, provider, quantization, response.usage)
            return response
        except GatewayError as error:
            await _abort(context, error, attempts)
            raise AssertionError("unreachable: abort raises") from None

    async def StreamChat(
        self, request: pb.StreamChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamChatResponse]:
        attempts = Attempts()
        try:
            _validated(request, "StreamChatRequest")
            chat, api_key = self._shape(request.request, context)
            body = _encode(chat, stream=True, prefix="request.")
            seconds = budget(self._settings, context.time_remaining())
            deadline = time.monotonic() + seconds
            record = _record()
            record.model = chat.model
            started = time.monotonic()
            stack, events = await call_with_retries(
                self.retry,
                lambda left: self._open_stream(body, deadline, left, api_key),
                deadline=deadline,
                attempts=attempts,
            )
            # From here on bytes reach the caller: nothing below is ever retried.
            try:
                async with stack:
                    async for message in self._relay(events, chat, seconds, record):
                        yield message
            finally:
                record.upstream_seconds = time.monotonic() - started
            context.set_trailing_metadata(_trailers(attempts))
        except GatewayError as error:
            await _abort(context, error, attempts)

    async def _relay(
        self,
        events: AsyncIterator[Any],
        chat: pb.ChatRequest,
        seconds: float,
        record: CallRecord,
    ) -> AsyncIterator[pb.StreamChatResponse]:
        """Turn SSE events into messages; only ``[DONE]`` ends the relay cleanly."""
        async for event in events:
            data = event.data
            if data == "[DONE]":
                return
            if not data:
                continue
            try:
                payload = pydantic_core.from_json(data)
            except ValueError:
                raise GatewayError(
                    grpc.StatusCode.INTERNAL,
                    "the upstream sent an unreadable stream event",
                    reason="UPSTREAM_BAD_RESPONSE",
                ) from None
            if not isinstance(payload, dict):
                raise GatewayError(
                    grpc.StatusCode.INTERNAL,
                    "the upstream sent a stream event that is not an object",
                    reason="UPSTREAM_BAD_RESPONSE",
                )
            if isinstance(payload.get("error"), dict):
                raise upstream_error(200, payload)
            try:
                chunk = responses.stream_chunk(payload)
            except ValueError as error:
                raise GatewayError(
                    grpc.StatusCode.INTERNAL, str(error), reason="UPSTREAM_BAD_RESPONSE"
                ) from None
            if chunk.HasField("usage"):
                chunk.quantization = await self._catalog.served_quantization(
                    chunk.model,
                    chunk.provider,
                    chat.provider.quantizations,
                    seconds=min(_LOOKUP_SECONDS, seconds),
                )
                _note_served(record, chunk.model, chunk.provider, chunk.quantization, chunk.usage)
            yield chunk
        raise GatewayError(
            grpc.StatusCode.UNAVAILABLE,
            "the upstream stream ended before [DONE]",
            reason="STREAM_INTERRUPTED",
        )

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListModelsResponse:
        try:
            _validated(request, "ListModelsRequest")
            seconds = budget(self._settings, context.time_remaining())
            models = await self._catalog.models(seconds=seconds)
            wanted = set(request.supported_parameters)
            return pb.ListModelsResponse(
                models=[m for m in models if wanted <= set(m.supported_parameters)]
            )
        except GatewayError as error:
            await _abort(context, error)
            raise AssertionError("unreachable: abort raises") from None

    async def ListEndpoints(
        self, request: pb.ListEndpointsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListEndpointsResponse:
        try:
            _validated(request, "ListEndpointsRequest")
            seconds = budget(self._settings, context.time_remaining())
            endpoints = await self._catalog.endpoints(request.model, seconds=seconds)
            return pb.ListEndpointsResponse(model=request.model, endpoints=endpoints)
        except GatewayError as error:
            await _abort(context, error)
            raise AssertionError("unreachable: abort raises") from None

    async def GetGeneration(
        self, request: pb.GetGenerationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetGenerationResponse:
        try:
            _validated(request, "GetGenerationRequest")
            seconds = budget(self._settings, context.time_remaining())
            query = urllib.parse.urlencode({"id": request.id})
            # A caller with its own key looks up generations under its own account.
            api_key = _caller_key(context, self._may_byok(current_caller.get().caller))
            body = await self._upstream.get(f"generation?{query}", seconds=seconds, api_key=api_key)
            data = body.get("data")
            if not isinstance(data, dict):
                raise GatewayError(
                    grpc.StatusCode.INTERNAL,
                    "the upstream generation reply has no data object",
                    reason="UPSTREAM_BAD_RESPONSE",
                )
            return pb.GetGenerationResponse(generation=responses.generation(data))
        except GatewayError as error:
            await _abort(context, error)
            raise AssertionError("unreachable: abort raises") from None
