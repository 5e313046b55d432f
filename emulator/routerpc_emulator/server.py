"""Running the emulator: in-process for tests (``start_emulator``) or blocking (``run``).

``start_emulator`` returns only once the socket is bound, and reads the real port back so that
``port=0`` gives every test its own free port without races.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import TracebackType

from aiohttp import web

from .app import API_PREFIX, create_app
from .catalogue import Catalogue

_log = logging.getLogger("routerpc_emulator")
SHUTDOWN_TIMEOUT_S = 5.0


class RunningEmulator:
    """A started emulator; ``close()`` (or ``async with``) stops it and frees the port."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self.host = host
        self.port = port

    @property
    def app(self) -> web.Application:
        return self._runner.app

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}{API_PREFIX}"

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningEmulator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def start_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    require_key: str | None = None,
    stream_delay_s: float = 0.0,
    *,
    catalogue: Catalogue | None = None,
) -> RunningEmulator:
    app = create_app(require_key=require_key, stream_delay_s=stream_delay_s, catalogue=catalogue)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
    except BaseException:
        await runner.cleanup()
        raise
    return RunningEmulator(runner, host, bound_port)


def run(
    host: str = "127.0.0.1",
    port: int = 8080,
    require_key: str | None = None,
    stream_delay_s: float = 0.0,
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down cleanly (so the process exits with 0)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _log.setLevel(logging.INFO)
    asyncio.run(_serve(host, port, require_key, stream_delay_s))


async def _serve(host: str, port: int, require_key: str | None, stream_delay_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread, or a platform without signal support
    emulator = await start_emulator(host, port, require_key, stream_delay_s)
    try:
        _log.info("emulator listening on %s", emulator.base_url)
        await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await emulator.close()
