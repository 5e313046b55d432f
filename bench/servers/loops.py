"""The event loop a bench server runs on: the gateway's default (uvloop) unless told otherwise.

The floor and the ceiling are measured on the same loop as the gateway, so a ratio compares the
gateway's own work and not two event loops.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from typing import Any

LOOPS = ("uvloop", "asyncio")


def add_loop_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--loop", choices=LOOPS, default="uvloop", help="event loop (default: as the gateway's)"
    )


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main)
    else:
        asyncio.run(main)
