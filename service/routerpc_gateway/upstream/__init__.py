"""The one door to OpenRouter. Everything that touches the network goes through an
:class:`Upstream`; the rest of the gateway never sees an HTTP library.

Two interchangeable clients implement it (``--upstream-client``): ``aiohttp`` (the default: about
a third of httpx's CPU per request, see bench/RESULTS.md) and ``httpx``. Both give the same
guarantees, and the end-to-end suite runs against both:

- every call is bounded as a whole by ``asyncio.timeout`` (per-read timeouts never bound a
  trickling upstream); the caller's remaining gRPC deadline sets the budget (:func:`budget`);
- when the calling task is cancelled (caller cancelled, deadline passed) the request is aborted
  and its connection closed: ``CancelledError`` is never swallowed;
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
    if settings.upstream_client == "httpx":
        from routerpc_gateway.upstream._httpx import HttpxUpstream

        return HttpxUpstream(settings)
    from routerpc_gateway.upstream._aiohttp import AiohttpUpstream

    return AiohttpUpstream(settings)
