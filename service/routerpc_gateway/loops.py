"""The event loop a process serves on: uvloop by default, the standard asyncio loop on request
or where uvloop is not installed. Shared by the gateway and the benchmark's own servers, so the
floor and ceiling it measures run on the same loop as the gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["loop_kind", "run_loop"]

log = logging.getLogger("routerpc.gateway")


def run_loop(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run ``main`` to completion on a new loop of the configured kind.

    uvloop's libuv loop spends less CPU per call than the standard loop for the same work
    (the aiohttp upstream's sockets and timers, the task steps of every RPC); grpc.aio runs on
    any asyncio loop. bench/RESULTS.md has the comparison.
    """
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # no build for this platform (Windows): the standard loop serves
            log.warning("uvloop is not installed here; using the asyncio event loop")
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(main)
            return
    asyncio.run(main)


def loop_kind() -> str:
    """The running loop's implementation ("uvloop" or "asyncio"), as operators see it."""
    return type(asyncio.get_running_loop()).__module__.split(".", 1)[0]
