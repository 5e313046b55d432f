"""A tiny cleartext HTTP/2 upstream (h2c, prior knowledge) for the ``httpx-http2`` client's tests.

The emulator speaks HTTP/1.1 only, so this server stands in for OpenRouter when the gateway must
talk HTTP/2 over ``http://``. It is built on the ``h2`` state machine over asyncio streams, runs in
its own thread on 127.0.0.1, and understands nothing but HTTP/2: a connection that does not open
with the HTTP/2 preface is counted in ``rejected`` and closed, so every exchange it records was
HTTP/2 on the wire.

What it answers (the request's ``model`` chooses, as the emulator's suffixes do):

* ``POST /api/v1/chat/completions``: a completion whose content is ``"Echo: <last message>"``,
  or, when the body has ``"stream": true``, the same text as server-sent events (one event per
  word, a usage event, ``[DONE]``);
* model ``HANG``: a unary request is never answered; a stream gets one ``"partial"`` chunk, then
  an SSE keep-alive comment every 50 ms, for ``hang_s`` seconds;
* model ``status-NNN``: HTTP NNN with OpenRouter's error JSON (``Retry-After: 2`` on 429);
* model ``BIG``: a completion of about ``BIG_BYTES`` bytes;
* model ``REDIRECT``: 307 to ``/api/v1/redirected`` (a client that followed it would be recorded);
* model ``CUT``: a stream gets one chunk, then the connection is dropped (no END_STREAM);
* ``GET /api/v1/models/<author>/<slug>/endpoints``: one endpoint serving fp16;
* anything else: 404 with an error JSON.

With ``answer_early`` set, a chat request is answered (a completion) as soon as its headers
arrive, and its stream is then ended with RST_STREAM(NO_ERROR) while the client may still be
sending the body: legal HTTP/2 (RFC 9113 section 8.1), and what nginx's ``return`` does.

Every request is recorded as an :class:`H2Exchange`: its connection number, stream id, method,
path, headers (pseudo-headers included) and JSON body, and how it ended: ``completed`` (the whole
reply was sent), ``reset`` (the client sent RST_STREAM), ``disconnected`` (the connection closed
first) or ``running``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from gateway_e2e import ThreadedServer

HANG = "h2/hang"
BIG = "h2/big"
REDIRECT = "h2/redirect"
CUT = "h2/cut"
BIG_BYTES = 8192
START_TIMEOUT_S = 10.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def status_model(status: int) -> str:
    """The model that makes the server answer ``status`` with an OpenRouter error body."""
    return f"h2/status-{status}"


@dataclass
class H2Exchange:
    """One request the server received, and how it ended."""

    connection: int
    stream_id: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    protocol: str = "HTTP/2"
    outcome: str = "running"  # "running", "completed", "reset", "disconnected"
    ended: float | None = None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "gen-h2-0001",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "provider": "H2Upstream",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "native_finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "cost": 0.0001},
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "gen-h2-0001",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "provider": "H2Upstream",
        "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}
        ],
    }


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(payload) + b"\n\n"


def echo_text(body: Any) -> str:
    """The content the server answers a chat body with."""
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    return f"Echo: {content if isinstance(content, str) else ''}"


def _endpoints(model: str) -> dict[str, Any]:
    return {
        "data": {
            "id": model,
            "name": model,
            "endpoints": [
                {
                    "name": model,
                    "provider_name": "H2Upstream",
                    "tag": "h2",
                    "quantization": "fp16",
                    "context_length": 128000,
                    "max_completion_tokens": 4096,
                    "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                    "supported_parameters": ["max_tokens", "temperature"],
                    "status": 0,
                    "uptime_last_30m": 100.0,
                }
            ],
        }
    }


class _Connection:
    """One client connection: the h2 state machine, its socket and its streams' tasks."""

    def __init__(
        self,
        server: H2Upstream,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.number = number
        self.reader = reader
        self.writer = writer
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=config)
        self.requests: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.exchanges: dict[int, H2Exchange] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.window_open = asyncio.Event()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def run(self) -> None:
        try:
            preface = await self.reader.readexactly(len(PREFACE))
        except (asyncio.IncompleteReadError, ConnectionError):
            self.writer.close()
            return
        if preface != PREFACE:
            self.server.reject(preface)
            self.writer.close()
            return
        self.h2.initiate_connection()
        self.flush()
        try:
            self.handle(self.h2.receive_data(preface))
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.handle(self.h2.receive_data(data))
                self.flush()
                await self.writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            for task in self.tasks.values():
                task.cancel()
            for exchange in self.exchanges.values():
                self.server.finish(exchange, "disconnected")
            self.writer.close()

    def handle(self, events: list[h2.events.Event]) -> None:
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers or []}
                if self.server.answer_early and headers.get(":method") == "POST":
                    self.answer_early(event.stream_id or 0, headers)
                    continue
                self.requests[event.stream_id or 0] = (headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                stream_id = event.stream_id or 0
                if stream_id in self.requests:
                    self.requests[stream_id][1].extend(event.data or b"")
                self.h2.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in self.requests:
                self.start(event.stream_id or 0)
            elif isinstance(event, h2.events.StreamReset):
                stream_id = event.stream_id or 0
                task = self.tasks.pop(stream_id, None)
                if task is not None:
                    task.cancel()
                exchange = self.exchanges.pop(stream_id, None)
                if exchange is not None:
                    self.server.finish(exchange, "reset")
            elif isinstance(event, h2.events.WindowUpdated):
                self.window_open.set()
        self.flush()

    def answer_early(self, stream_id: int, headers: dict[str, str]) -> None:
        """A completion before the request body, then RST_STREAM(NO_ERROR)."""
        exchange = H2Exchange(
            self.number, stream_id, "POST", headers.get(":path", ""), headers, None
        )
        self.server.record(exchange)
        body = _dumps(_completion("h2/early", "Early!"))
        reply = [(":status", "200"), ("content-type", "application/json")]
        self.h2.send_headers(stream_id, [*reply, ("content-length", str(len(body)))])
        self.h2.send_data(stream_id, body, end_stream=True)
        self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        self.server.finish(exchange, "completed")

    def start(self, stream_id: int) -> None:
        headers, raw = self.requests.pop(stream_id)
        body: Any = None
        if raw:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
        exchange = H2Exchange(
            self.number,
            stream_id,
            headers.get(":method", ""),
            headers.get(":path", ""),
            headers,
            body,
        )
        self.exchanges[stream_id] = exchange
        self.server.record(exchange)
        self.tasks[stream_id] = asyncio.get_running_loop().create_task(
            self.respond(exchange), name=f"h2-stream-{stream_id}"
        )

    async def send(
        self, stream_id: int, data: bytes, *, end: bool, headers: list[tuple[str, str]] | None
    ) -> None:
        """Headers (when given), then ``data`` within the client's flow-control window."""
        if headers is not None:
            self.h2.send_headers(stream_id, headers)
        while data:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                self.window_open.clear()
                self.flush()
                await asyncio.wait_for(self.window_open.wait(), 10)
                continue
            piece, data = data[:window], data[window:]
            self.h2.send_data(stream_id, piece)
        if end:
            self.h2.end_stream(stream_id)
        self.flush()
        await self.writer.drain()

    async def reply(
        self, stream_id: int, status: int, body: bytes, kind: str, extra: dict[str, str]
    ) -> None:
        headers = [(":status", str(status)), ("content-type", kind)]
        headers += [("content-length", str(len(body))), *extra.items()]
        await self.send(stream_id, body, end=True, headers=headers)

    async def respond(self, exchange: H2Exchange) -> None:
        stream_id = exchange.stream_id
        try:
            await self._respond(exchange)
        except asyncio.CancelledError:
            return
        except (ConnectionError, h2.exceptions.ProtocolError):
            self.server.finish(exchange, "disconnected")
            return
        self.tasks.pop(stream_id, None)
        self.exchanges.pop(stream_id, None)
        self.server.finish(exchange, "completed")

    async def _respond(self, exchange: H2Exchange) -> None:
        stream_id, path, body = exchange.stream_id, exchange.path, exchange.body
        json_kind = "application/json"
        if exchange.method == "GET" and path.startswith("/api/v1/models/"):
            model = path.removeprefix("/api/v1/models/").removesuffix("/endpoints")
            await self.reply(stream_id, 200, _dumps(_endpoints(model)), json_kind, {})
            return
        if exchange.method != "POST" or path != "/api/v1/chat/completions":
            error = {"error": {"code": 404, "message": f"no route {path}"}}
            await self.reply(stream_id, 404, _dumps(error), json_kind, {})
            return
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        if model.startswith("h2/status-"):
            status = int(model.removeprefix("h2/status-"))
            error = {"error": {"code": status, "message": f"h2 upstream says {status}"}}
            extra = {"retry-after": "2"} if status == 429 else {}
            await self.reply(stream_id, status, _dumps(error), json_kind, extra)
            return
        if model == REDIRECT:
            location = {"location": "/api/v1/redirected"}
            await self.reply(stream_id, 307, b"", json_kind, location)
            return
        if model == HANG:
            await self.hang(stream_id, model, bool(body.get("stream")))
            return
        if model == CUT:
            headers = [(":status", "200"), ("content-type", "text/event-stream")]
            first = _chunk(model, {"role": "assistant", "content": "partial"})
            await self.send(stream_id, _event(first), end=False, headers=headers)
            self.writer.transport.abort()
            raise ConnectionResetError("cut on purpose")
        text = "x" * BIG_BYTES if model == BIG else echo_text(body)
        if not body.get("stream"):
            await self.reply(stream_id, 200, _dumps(_completion(model, text)), json_kind, {})
            return
        headers = [(":status", "200"), ("content-type", "text/event-stream")]
        await self.send(stream_id, b": OPENROUTER PROCESSING\n\n", end=False, headers=headers)
        words = text.split(" ")
        for i, word in enumerate(words):
            delta: dict[str, Any] = {"content": word if i == 0 else " " + word}
            if i == 0:
                delta["role"] = "assistant"
            finish = "stop" if i == len(words) - 1 else None
            await self.send(
                stream_id, _event(_chunk(model, delta, finish)), end=False, headers=None
            )
        usage = {**_chunk(model, {}), "choices": []}
        usage["usage"] = _completion(model, text)["usage"]
        await self.send(stream_id, _event(usage) + b"data: [DONE]\n\n", end=True, headers=None)

    async def hang(self, stream_id: int, model: str, stream: bool) -> None:
        if not stream:
            await asyncio.sleep(self.server.hang_s)
            error = {"error": {"code": 504, "message": "h2 upstream gave up"}}
            await self.reply(stream_id, 504, _dumps(error), "application/json", {})
            return
        headers = [(":status", "200"), ("content-type", "text/event-stream")]
        first = _chunk(model, {"role": "assistant", "content": "partial"})
        await self.send(stream_id, _event(first), end=False, headers=headers)
        for _ in range(int(self.server.hang_s / 0.05)):
            await asyncio.sleep(0.05)
            await self.send(stream_id, b": keep-alive\n\n", end=False, headers=None)
        await self.send(stream_id, b"data: [DONE]\n\n", end=True, headers=None)


@dataclass
class H2Upstream(ThreadedServer):
    """The server, in its own thread; ``start()`` returns once it listens."""

    hang_s: float = 30.0
    answer_early: bool = False
    rejected: list[bytes] = field(default_factory=list)
    exchanges: list[H2Exchange] = field(default_factory=list)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, exchange: H2Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def reject(self, preface: bytes) -> None:
        with self._lock:
            self.rejected.append(preface)

    def finish(self, exchange: H2Exchange, outcome: str) -> None:
        with self._lock:
            if exchange.ended is None:
                exchange.ended = time.monotonic()
                exchange.outcome = outcome

    def snapshot(self) -> list[H2Exchange]:
        with self._lock:
            return [H2Exchange(**{**vars(e), "headers": dict(e.headers)}) for e in self.exchanges]

    def chats(self) -> list[H2Exchange]:
        """Recorded chat-completion requests, oldest first."""
        return [e for e in self.snapshot() if e.path == "/api/v1/chat/completions"]

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()
            self.rejected.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
            number = self.connections
        with contextlib.suppress(asyncio.CancelledError):  # stop() cancels whatever still runs
            await _Connection(self, number, reader, writer).run()

    def start(self, name: str = "HTTP/2 upstream", timeout_s: float = START_TIMEOUT_S) -> None:
        super().start(name, timeout_s)

    async def _serve(self, listening: Callable[[], None]) -> None:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        listening()
        assert self._stopped is not None
        async with server:
            await self._stopped.wait()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.wait(others, timeout=5) if others else None
