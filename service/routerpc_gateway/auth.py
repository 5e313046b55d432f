"""Caller authentication: bearer tokens and/or mTLS client certificates, for every RPC but health.

The interceptor wraps each method handler so the check runs with the call's context (an aio
interceptor alone sees only the method name and metadata, not the TLS peer). A missing or wrong
credential gets UNAUTHENTICATED with one fixed message, whichever part was wrong. The caller it
finds is put in ``current_caller`` for the servicer's policy. Health stays open so load
balancers and kubelets can probe without credentials.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
import grpc.aio

from routerpc_gateway.callers import Caller, CallersStore

__all__ = ["AUTH_FAILED", "AuthInterceptor", "Identity", "current_caller"]

AUTH_FAILED = "missing or invalid credentials"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_OPEN_PREFIX = "/grpc.health.v1.Health/"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: a named caller from the callers file, or nobody (auth off)."""

    name: str
    caller: Caller | None


ANONYMOUS = Identity("anonymous", None)
current_caller: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "current_caller", default=ANONYMOUS
)


def _bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip() or None
    return None


def _subjects(context: grpc.aio.ServicerContext[Any, Any]) -> list[str]:
    properties = context.auth_context() or {}
    names = []
    for key in ("x509_common_name", "x509_subject"):
        names += [value.decode(errors="replace") for value in properties.get(key, [])]
    return names


def identify(store: CallersStore, context: grpc.aio.ServicerContext[Any, Any]) -> Identity | None:
    """The caller behind ``context``, ANONYMOUS when auth is off, None when it must be refused."""
    if not store.auth_required and not store.config.callers:
        return ANONYMOUS  # no callers file: authentication is off, credentials are ignored
    token = _bearer(context.invocation_metadata())
    if token is not None:
        found = store.by_token(token)
        if found is not None:
            return Identity(*found)
        return None  # a wrong token is refused even when a certificate would pass
    for subject in _subjects(context):
        found = store.by_subject(subject)
        if found is not None:
            return Identity(*found)
    return None if store.auth_required else ANONYMOUS


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call except health before its handler runs."""

    def __init__(self, store: CallersStore) -> None:
        self._store = store

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_OPEN_PREFIX):
            return handler
        return _wrap(handler, self._store)


async def _admit(store: CallersStore, context: grpc.aio.ServicerContext[Any, Any]) -> Identity:
    identity = identify(store, context)
    if identity is None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)
        raise AssertionError("unreachable: abort raises")
    return identity


def _wrap(handler: Handler, store: CallersStore) -> Handler:
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            current_caller.set(await _admit(store, context))
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
    if handler.unary_stream is not None:
        inner_us: Any = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            current_caller.set(await _admit(store, context))
            async for item in inner_us(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codec)
    if handler.stream_stream is not None:
        inner_ss: Any = handler.stream_stream

        async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
            current_caller.set(await _admit(store, context))
            async for item in inner_ss(requests, context):
                yield item

        return grpc.stream_stream_rpc_method_handler(stream_stream, **codec)
    inner_su: Any = handler.stream_unary

    async def stream_unary(requests: Any, context: Any) -> Any:
        current_caller.set(await _admit(store, context))
        return await inner_su(requests, context)

    return grpc.stream_unary_rpc_method_handler(stream_unary, **codec)
