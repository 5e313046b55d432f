"""How services reach the gateway's grpc.aio server: through generic handlers only.

The generated ``add_*_to_server`` functions register every method twice: in a generic handler
and as a *registered method*. grpc.aio's server loop keeps one pending "request call" task per
registered method, plus one for everything else, and for every call it accepts it runs
``asyncio.wait`` over all of those tasks (a done-callback added to each and removed again). With
the gateway's nine methods (RouterService, health, reflection) that was ten tasks per accepted
call, about 50,000 instructions per unary call more than one task (``python -m bench.insitu``,
c=1: 1,123k -> 1,076k; in CPU time an interleaved A/B on the shared benchmark VM could not tell
the two apart). Served through the generic handlers alone, a call's handler is found by
one dict lookup in the generated handler; unknown methods stay UNIMPLEMENTED, and nothing a
caller can see changes.
"""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio

__all__ = ["GenericOnly"]


class GenericOnly(grpc.aio.Server):
    """``server`` as ``add_*_to_server`` sees it: generic handlers are added, registered
    methods are not (the same handlers reach the server through the generic ones). Everything
    else is passed through to ``server``."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        """Not registered: each would add a task to every accepted call's wait."""

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self._server.wait_for_termination(timeout)
