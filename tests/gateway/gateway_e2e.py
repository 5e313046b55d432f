"""Helpers for the gateway end-to-end tests: processes, requests, a recording upstream.

A plain module (not conftest) so that test files can import it by a unique name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import grpc
import httpx
from aiohttp import web

from routerpc import (
    ChatRequest,
    ChatRequestBuilder,
    ProviderConfig,
    Quantization,
    RouterError,
)

BIN = Path(sys.executable).parent
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
ROUTERPC = str(BIN / "routerpc")
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
ENDS_WITHOUT_DONE = "recorder/ends-without-done"
"""Model that makes the recording upstream end a stream cleanly but without ``[DONE]``."""
LISTENING = re.compile(r"routerpc listening on 127\.0\.0\.1:(\d+)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything that could configure a gateway behind our back."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ROUTERPC_") and k not in ("OPENROUTER_API_KEY", "GRPC_VERBOSITY")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    return process.returncode


def seed_request(model: str = "openai/gpt-4o", text: str = "Hello!") -> ChatRequest:
    """The README's seed request: the builder, then routing preferences assigned afterwards."""
    request = ChatRequestBuilder().with_model(model).with_text(text).build()
    request.provider = ProviderConfig(quantizations=[Quantization.FP8, Quantization.FP16])
    return request


def faulty(fault: str, text: str = "Hello!") -> ChatRequest:
    """The seed request with an emulator fault chosen by model suffix (callers set no headers)."""
    return seed_request(f"openai/gpt-4o~fault={fault}", text)


@dataclass
class Emulator:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/v1"

    def requests(self) -> list[dict[str, Any]]:
        """Recorded chat requests, oldest first."""
        reply = httpx.get(f"{self.origin}/_emulator/requests", timeout=5)
        reply.raise_for_status()
        data: list[dict[str, Any]] = reply.json()["data"]
        return data

    def clear(self) -> None:
        httpx.delete(f"{self.origin}/_emulator/requests", timeout=5).raise_for_status()


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    key: str | None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def launch_emulator(log_path: Path, *args: str) -> Emulator:
    """``python -m routerpc_emulator`` on a free port; returns once health answers 200."""
    last_log = ""
    for _attempt in range(3):  # the free port can be taken between probe and bind: retry
        port = free_port()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "routerpc_emulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(),
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1)
                if health.status_code == 200:
                    return Emulator(process, port, log_path)
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        stop_process(process)
        last_log = log_path.read_text(errors="replace")
    raise AssertionError(f"emulator did not become healthy; its output:\n{last_log}")


def launch_gateway(
    log_path: Path,
    *args: str,
    upstream_url: str | None = None,
    key: str | None = None,
    env: dict[str, str] | None = None,
) -> Gateway:
    """``routerpc serve --host 127.0.0.1 --port 0``; returns once it logs its port."""
    command = [ROUTERPC, "serve", "--host", "127.0.0.1", "--port", "0"]
    if upstream_url is not None:
        command += ["--upstream-url", upstream_url]
    command += list(args)
    environment = clean_env(**(env or {}))
    if key is not None:
        environment["OPENROUTER_API_KEY"] = key
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=environment)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return Gateway(process, int(match.group(1)), log_path, key)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop_process(process)
    raise AssertionError(
        f"gateway did not log 'routerpc listening on' (exit code {process.poll()}):\n"
        + log_path.read_text(errors="replace")
    )


@contextlib.contextmanager
def single_attempt_gateway(
    log_path: Path, upstream_client: str, upstream_url: str, key: str
) -> Iterator[Gateway]:
    """A gateway making one upstream attempt per call (so a test sees exactly the exchanges its
    calls cause), stopped when the block ends."""
    gw = launch_gateway(
        log_path,
        "--upstream-client",
        upstream_client,
        "--max-attempts",
        "1",
        upstream_url=upstream_url,
        key=key,
    )
    try:
        yield gw
    finally:
        stop_process(gw.process)


# Recording upstream ---------------------------------------------------------------------------


@dataclass
class Exchange:
    """One request the recording upstream received, and how it ended."""

    method: str
    path: str
    body: Any
    started: float
    ended: float | None = None
    outcome: str = "running"  # "running", "completed", "cancelled", "disconnected"


@dataclass
class ThreadedServer:
    """An asyncio server in a daemon thread: ``start()`` returns once it listens, ``stop()``
    ends it. A subclass's ``_serve(listening)`` binds 127.0.0.1, sets ``port``, calls
    ``listening()``, then serves until ``_stopped`` is set."""

    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopped: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    async def _serve(self, listening: Callable[[], None]) -> None:
        raise NotImplementedError

    def snapshot(self) -> list[Any]:
        raise NotImplementedError

    def wait_for(self, check: Callable[[list[Any]], bool], timeout_s: float) -> bool:
        """Poll ``check`` on the recorded exchanges until it holds or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check(self.snapshot()):
                return True
            time.sleep(0.02)
        return check(self.snapshot())

    def start(self, name: str = "upstream", timeout_s: float = START_TIMEOUT_S) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stopped = asyncio.Event()
            await self._serve(ready.set)

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
            except BaseException as error:  # surfaced to start() when it happens early
                failure.append(error)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s) or failure:
            raise AssertionError(f"{name} did not start: {failure}")

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class RecordingUpstream(ThreadedServer):
    """An aiohttp upstream in its own thread that records requests and client disconnects.

    ``POST /api/v1/chat/completions`` for model ``ENDS_WITHOUT_DONE`` streams two chunks and ends
    the body cleanly without ``[DONE]``. For any other model it never finishes on its own: a
    streaming request gets one content chunk and then an SSE keep-alive comment every 50 ms; a
    unary one just waits. Either way the handler records when the gateway dropped the connection
    (aiohttp cancels the handler on disconnect with ``handler_cancellation=True``, and a write to a
    closed stream fails). Every other path answers 404 after being recorded.
    """

    hang_s: float = 30.0
    exchanges: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return [Exchange(**vars(e)) for e in self.exchanges]

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def _finish(self, exchange: Exchange, outcome: str) -> None:
        with self._lock:
            if exchange.ended is None:
                exchange.ended = time.monotonic()
                exchange.outcome = outcome

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        exchange = Exchange(request.method, request.path, body, time.monotonic())
        with self._lock:
            self.exchanges.append(exchange)
        if body.get("model") == ENDS_WITHOUT_DONE:
            return await self._ends_without_done(request, exchange)
        try:
            if body.get("stream"):
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                first = {
                    "id": "gen-hang",
                    "model": body.get("model"),
                    "provider": "Recorder",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial"}}],
                }
                await response.write(b"data: " + _json(first) + b"\n\n")
                for _ in range(int(self.hang_s / 0.05)):
                    await asyncio.sleep(0.05)
                    await response.write(b": keep-alive\n\n")
            else:
                await asyncio.sleep(self.hang_s)
        except asyncio.CancelledError:
            self._finish(exchange, "cancelled")
            raise
        except (ConnectionResetError, OSError):
            self._finish(exchange, "disconnected")
            raise
        self._finish(exchange, "completed")
        return web.json_response(
            {"error": {"code": 504, "message": "recorder gave up"}}, status=504
        )

    async def _ends_without_done(
        self, request: web.Request, exchange: Exchange
    ) -> web.StreamResponse:
        """Two well-formed chunks, then a clean end of the HTTP body with no ``[DONE]``."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in ("Echo", ": cut"):
            event = {
                "id": "gen-no-done",
                "model": ENDS_WITHOUT_DONE,
                "provider": "Recorder",
                "choices": [{"index": 0, "delta": {"content": piece}}],
            }
            await response.write(b"data: " + _json(event) + b"\n\n")
        await response.write_eof()
        self._finish(exchange, "completed")
        return response

    async def _other(self, request: web.Request) -> web.Response:
        exchange = Exchange(request.method, request.path, None, time.monotonic())
        exchange.ended, exchange.outcome = exchange.started, "completed"
        with self._lock:
            self.exchanges.append(exchange)
        return web.json_response({"error": {"code": 404, "message": "not here"}}, status=404)

    def start(self, name: str = "recording upstream", timeout_s: float = START_TIMEOUT_S) -> None:
        super().start(name, timeout_s)

    async def _serve(self, listening: Callable[[], None]) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/chat/completions", self._chat)
        app.router.add_route("*", "/{tail:.*}", self._other)
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(runner.addresses[0][1])
        listening()
        try:
            assert self._stopped is not None
            await self._stopped.wait()
        finally:
            await runner.cleanup()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def describe_error(error: BaseException) -> str:
    """Everything a caller could read from an error, as one string."""
    parts = [str(error), repr(error)]
    if isinstance(error, RouterError):
        parts += [error.message, error.reason, error.domain, repr(error.metadata)]
        parts += [f"{v.field} {v.description} {v.reason}" for v in error.field_violations]
        parts += [bytes(d.SerializeToString()).decode("latin-1") for d in error.details]
    if isinstance(error, grpc.RpcError):
        call: Any = error
        parts += [str(call.details()), repr(call.trailing_metadata())]
        with contextlib.suppress(Exception):
            parts.append(str(call.debug_error_string()))
    return "\n".join(parts)
