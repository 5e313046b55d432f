"""How a bench gRPC server runs: on the gateway's default loop (uvloop) unless told otherwise,
until SIGTERM or SIGINT.

The floor and the ceiling are measured on the same loop as the gateway and register their service
as the gateway does (``routerpc_gateway.registration``), so a ratio compares the gateway's own
work and not two event loops or two ways of registering.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc
import grpc.aio

from routerpc import pb
from routerpc_gateway.loops import loop_kind, run_loop
from routerpc_gateway.registration import GenericOnly

__all__ = ["LOOPS", "add_loop_argument", "run_loop", "serve_until_signalled"]

LOOPS = ("uvloop", "asyncio")


def add_loop_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--loop", choices=LOOPS, default="uvloop", help="event loop (default: as the gateway's)"
    )


async def serve_until_signalled(servicer: Any, host: str, port: int, label: str) -> None:
    """Serve ``servicer`` as RouterService on ``host:port`` until SIGTERM or SIGINT."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    # Registered as the gateway registers its services (generic handlers only), so the floor
    # and the ceiling do not pay for grpc.aio's per-method tasks the gateway does not pay for.
    pb.add_RouterServiceServicer_to_server(servicer, GenericOnly(server))
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"{label} listening on {host}:{port} ({loop_kind()} loop)", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)
