"""Method handlers wrapped once per method by the gateway's interceptors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

__all__ = ["Handler", "WrappedHandlers"]

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


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
