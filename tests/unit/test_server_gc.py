"""The collector and a serving gateway: start-up objects stay out of full collections."""

from __future__ import annotations

import asyncio
import gc

from routerpc_gateway.config import Settings
from routerpc_gateway.server import serve


async def test_a_serving_gateway_keeps_its_start_up_objects_out_of_the_collector() -> None:
    """Full collections would otherwise walk every descriptor, compiled rule and module object
    the gateway built (tens of thousands), pausing every call in flight; an embedded gateway
    hands them back when it stops."""
    settings = Settings.model_validate(
        {"emulator": True, "host": "127.0.0.1", "port": 0, "drain_delay": 0, "grace_period": 0}
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    assert gc.get_freeze_count() == 0
    serving = asyncio.create_task(serve(settings, stop=stop, on_ready=lambda _port: ready.set()))
    await asyncio.wait_for(ready.wait(), 60)
    try:
        assert gc.get_freeze_count() > 10_000
        new = object.__new__(type("New", (), {}))  # made after start-up: still collectable
        assert gc.is_tracked(new)
        assert any(o is new for o in gc.get_objects())
    finally:
        stop.set()
        await asyncio.wait_for(serving, 60)
    assert gc.get_freeze_count() == 0
