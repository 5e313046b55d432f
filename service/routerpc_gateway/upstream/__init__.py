"""The one door to OpenRouter. Everything that touches the network goes through an
:class:`Upstream`; the rest of the gateway never sees an HTTP library.

Interchangeable clients implement it (``--upstream-client``): ``aiohttp`` (the default: the
least CPU per request, see bench/RESULTS.md), and httpx in three flavours (``_httpx.py``):
``httpx`` (HTTP/1.1), ``httpx-http2`` (HTTP/2: ALPN over https, prior knowledge over cleartext
http) and ``httpx-aiohttp`` (httpx over an aiohttp transport). All give the same guarantees, and
the end-to-end suite runs against each (``httpx-http2`` against an HTTP/2 test upstream):

- every call is bounded as a whole by ``asyncio.timeout`` (per-read timeouts never bound a
  trickling upstream); the caller's remaining gRPC deadline sets the budget (:func:`budget`);
- when the calling task is cancelled (caller cancelled, deadline passed) the request is aborted
  and its connection closed (over HTTP/2, its stream reset): ``CancelledError`` is never
  swallowed;
- at most ``pool_size`` upstream connections; redirects are never followed and no proxy is taken
  from the environment;
- replies are read with a size bound, so a huge reply is an error, not an out-of-memory;
- the base URL and the key come from configuration only; callers choose neither.
"""

from __future__ import annotations

from routerpc_gateway.config import Settings
from routerpc_gateway.upstream._base import (
    DEADLINE_MARGIN,
    SseEvent,
    Upstream,
    budget,
)

__all__ = ["DEADLINE_MARGIN", "SseEvent", "Upstream", "budget", "create_upstream"]


def create_upstream(settings: Settings) -> Upstream:
    """The configured client; call inside the running event loop that will use it."""
    if settings.upstream_client != "aiohttp":
        from routerpc_gateway.upstream._httpx import HttpxUpstream

        return HttpxUpstream(settings, flavour=settings.upstream_client)
    from routerpc_gateway.upstream._aiohttp import AiohttpUpstream

    return AiohttpUpstream(settings)
