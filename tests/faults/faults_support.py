"""Helpers for the fault suite: calls that record what a caller saw, /proc readers, and a raw TCP
upstream that misbehaves below HTTP.

A plain module (not conftest) so test files can import it by a unique name. Process helpers come
from tests/gateway/gateway_e2e.py (tests/faults/conftest.py puts that directory on ``sys.path``).

Every call made through :class:`Caller` sends the suite's canary caller token as
``authorization: Bearer`` metadata, has a deadline, never raises ``grpc.RpcError`` (it returns an
:class:`Outcome`), and appends everything the caller could read (status message, details,
trailing metadata) to ``Caller.received`` for the final canary sweep.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx
from gateway_e2e import Emulator, Gateway, describe_error, free_port, launch_gateway

from routerpc import RouterError, error_from_rpc, pb

ATTEMPTS_KEY = "routerpc-attempts"
CHAT = "/routerpc.v1.RouterService/Chat"
STREAM_CHAT = "/routerpc.v1.RouterService/StreamChat"


# Gateways ------------------------------------------------------------------------------------


@dataclass
class Canaries:
    """Secrets that must never be seen outside the gateway's upstream Authorization header."""

    key: str
    token: str

    @property
    def all(self) -> tuple[str, ...]:
        return (self.key, self.token)


@dataclass
class Launched:
    gateway: Gateway
    metrics_port: int | None


@dataclass
class Launcher:
    """Starts gateways with the suite's flags; remembers every log file and metrics port."""

    logs_dir: Path
    canaries: Canaries
    callers_file: Path
    launched: list[Launched] = field(default_factory=list)

    def start(
        self,
        name: str,
        *args: str,
        upstream_url: str,
        client: str = "aiohttp",
        metrics: bool = False,
    ) -> Gateway:
        metrics_port = free_port() if metrics else None
        extra = ["--metrics-port", str(metrics_port)] if metrics_port is not None else []
        gateway = launch_gateway(
            self.logs_dir / f"gateway-{len(self.launched):02d}-{name}-{client}.log",
            "--workers",
            "1",
            "--upstream-client",
            client,
            "--drain-delay",
            "0",
            "--grace-period",
            "2",
            "--log-level",
            "debug",
            "--callers-file",
            str(self.callers_file),
            *extra,
            *args,
            upstream_url=upstream_url,
            key=self.canaries.key,
            env={"ROUTERPC_CANARY_CALLER_TOKEN": self.canaries.token},
        )
        self.launched.append(Launched(gateway, metrics_port))
        return gateway


# Calls ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one RPC gave its caller."""

    code: grpc.StatusCode
    details: str
    trailers: tuple[tuple[str, Any], ...]
    elapsed: float
    chunks: int = 0
    response: Any = None
    error: RouterError | None = None

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK

    @property
    def reason(self) -> str:
        return self.error.reason if self.error is not None else ""

    @property
    def retry_delay(self) -> float | None:
        return self.error.retry_delay if self.error is not None else None

    @property
    def attempts(self) -> int | None:
        value = dict(self.trailers).get(ATTEMPTS_KEY)
        return int(value) if value is not None else None

    def __str__(self) -> str:
        return (
            f"{self.code.name} reason={self.reason!r} details={self.details!r} "
            f"chunks={self.chunks} attempts={self.attempts} elapsed={self.elapsed:.3f}s"
        )


@dataclass
class Caller:
    """Makes calls as the suite's authenticated caller and keeps what every call returned."""

    token: str
    received: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """``authorization: Bearer <token>`` (nothing for a caller without a token)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def _failed(self, failure: grpc.RpcError, started: float, chunks: int = 0) -> Outcome:
        call: Any = failure
        error = error_from_rpc(failure)
        outcome = Outcome(
            call.code(),
            call.details() or "",
            tuple(call.trailing_metadata() or ()),
            time.monotonic() - started,
            chunks=chunks,
            error=error,
        )
        self.received.append(describe_error(failure) + "\n" + describe_error(error))
        return outcome

    def unary(self, target: str, request: pb.ChatRequest, timeout: float = 10) -> Outcome:
        """``Chat`` on a fresh channel (so one test's channel state never leaks into another)."""
        return self.unary_with(target, request, (), timeout)

    def unary_with(
        self,
        target: str,
        request: pb.ChatRequest,
        extra: tuple[tuple[str, str], ...],
        timeout: float = 10,
    ) -> Outcome:
        """``Chat`` with ``extra`` metadata next to the credential."""
        started = time.monotonic()
        with grpc.insecure_channel(target) as channel:
            stub = pb.RouterServiceStub(channel)
            try:
                response, call = stub.Chat.with_call(
                    request, timeout=timeout, metadata=self.metadata + extra
                )
            except grpc.RpcError as failure:
                return self._failed(failure, started)
        trailers = tuple(call.trailing_metadata() or ())
        self.received.append(repr(trailers))
        return Outcome(
            grpc.StatusCode.OK, "", trailers, time.monotonic() - started, response=response
        )

    def stream(self, target: str, request: pb.ChatRequest, timeout: float = 10) -> Outcome:
        """``StreamChat`` drained to its end; ``chunks`` counts the messages relayed."""
        started = time.monotonic()
        chunks = 0
        with grpc.insecure_channel(target) as channel:
            call = pb.RouterServiceStub(channel).StreamChat(
                pb.StreamChatRequest(request=request), timeout=timeout, metadata=self.metadata
            )
            try:
                for _ in call:
                    chunks += 1
            except grpc.RpcError as failure:
                return self._failed(failure, started, chunks)
            trailers = tuple(call.trailing_metadata() or ())
        self.received.append(repr(trailers))
        return Outcome(grpc.StatusCode.OK, "", trailers, time.monotonic() - started, chunks=chunks)

    def raw(self, channel: grpc.Channel, method: str, data: bytes, timeout: float = 5) -> Outcome:
        """Send ``data`` as the request message, byte for byte (identity serializers)."""
        started = time.monotonic()
        if method == CHAT:
            chat = channel.unary_unary(
                method, request_serializer=_identity, response_deserializer=_identity
            )
            try:
                response, call = chat.with_call(data, timeout=timeout, metadata=self.metadata)
            except grpc.RpcError as failure:
                return self._failed(failure, started)
            trailers = tuple(call.trailing_metadata() or ())
            self.received.append(repr(trailers))
            return Outcome(
                grpc.StatusCode.OK, "", trailers, time.monotonic() - started, response=response
            )
        stream = channel.unary_stream(
            method, request_serializer=_identity, response_deserializer=_identity
        )
        call = stream(data, timeout=timeout, metadata=self.metadata)
        chunks = 0
        try:
            for _ in call:
                chunks += 1
        except grpc.RpcError as failure:
            return self._failed(failure, started, chunks)
        trailers = tuple(call.trailing_metadata() or ())
        self.received.append(repr(trailers))
        return Outcome(grpc.StatusCode.OK, "", trailers, time.monotonic() - started, chunks=chunks)

    def record_aio(self, error: grpc.aio.AioRpcError) -> None:
        self.received.append(describe_error(error) + "\n" + describe_error(error_from_rpc(error)))


def _identity(raw: bytes) -> bytes:
    return raw


def clear_emulator(emulator: Emulator) -> int:
    """Clear the emulator's request log (and ``fail-first`` counters); how many it held."""
    reply = httpx.delete(f"{emulator.origin}/_emulator/requests", timeout=5)
    reply.raise_for_status()
    cleared: int = reply.json()["cleared"]
    return cleared


def wait_until(check: Callable[[], bool], timeout_s: float, step_s: float = 0.1) -> bool:
    """Poll ``check`` until it holds or ``timeout_s`` passed; its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step_s)
    return check()


# /proc ------------------------------------------------------------------------------------------


def open_fds(pid: int) -> int:
    return len(_listdir_fds(pid))


def _listdir_fds(pid: int) -> list[str]:
    return os.listdir(f"/proc/{pid}/fd")


def status_kib(pid: int, name: str) -> int:
    """A number from /proc/<pid>/status (``VmRSS``, ``VmHWM``: KiB; ``Threads``: a count)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {name}")


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS) in KiB."""
    return status_kib(pid, "VmRSS")


def threads(pid: int) -> int:
    return status_kib(pid, "Threads")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for name in _listdir_fds(pid):
        with contextlib.suppress(OSError):  # an fd may close between listdir and readlink
            target = os.readlink(f"/proc/{pid}/fd/{name}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def established_to(pid: int, port: int) -> int:
    """Established TCP connections (state 01) owned by process ``pid`` whose remote end is
    127.0.0.1:``port``: /proc/net/tcp rows whose socket inode is one of the process's fds."""
    owned = _socket_inodes(pid)
    count = 0
    with open(f"/proc/{pid}/net/tcp") as table:
        next(table)
        for row in table:
            fields = row.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            remote_port = int(remote.split(":")[1], 16)
            if state == "01" and remote_port == port and inode in owned:
                count += 1
    return count


@dataclass(frozen=True)
class ProcessSnapshot:
    fds: int
    upstream_connections: int
    rss_kib: int
    threads: int

    @classmethod
    def take(cls, pid: int, upstream_port: int) -> ProcessSnapshot:
        return cls(open_fds(pid), established_to(pid, upstream_port), rss_kib(pid), threads(pid))


# A raw TCP upstream ---------------------------------------------------------------------------


def _http_response(status: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode() + body


def completion_json(text: str = "Echo: Hello!") -> bytes:
    """A well-formed unary OpenRouter completion."""
    return json.dumps(
        {
            "id": "gen-raw",
            "object": "chat.completion",
            "created": 1,
            "model": "openai/gpt-4o",
            "provider": "OpenAI",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
        }
    ).encode()


@dataclass
class RawUpstream:
    """A TCP server on 127.0.0.1 (threads, blocking sockets) whose ``mode`` decides how each new
    connection is treated:

    * ``close``: accept and close at once (FIN) without reading the request;
    * ``reset``: accept and reset at once (RST: ``SO_LINGER`` on with a zero timeout);
    * ``reset-after-request``: read the whole request, then reset before any response byte;
    * ``close-after-request``: read the whole request, then close (FIN) without answering;
    * ``endless-sse-line``: answer 200 ``text/event-stream`` and then send one ``data:`` line that
      never ends, in 64 KiB writes, until the client hangs up or ``endless_limit`` bytes were
      sent; ``sent`` records how many body bytes went out;
    * ``gzip-json``: a valid completion, gzip-encoded (``Content-Encoding: gzip``), answered
      whatever the request asked for;
    * ``ok``: a well-behaved upstream: a completion (an SSE stream ending in ``[DONE]`` when the
      request asked for one) for chat requests, a 404 error envelope for anything else.

    Every socket operation has a timeout and the accept loop polls a stop flag, so nothing here
    can hang a test.
    """

    mode: str = "reset"
    endless_limit: int = 256 * 1024 * 1024
    port: int = 0
    accepted: int = 0
    sent: list[int] = field(default_factory=list)
    _listener: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, port: int = 0) -> None:
        """Listen (again: after ``stop()``, on the same port when given it)."""
        self._stop = threading.Event()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="raw-upstream", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def reset_counters(self) -> None:
        with self._lock:
            self.accepted = 0
            self.sent.clear()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            mode = self.mode
            threading.Thread(
                target=self._serve, args=(connection, mode), name="raw-conn", daemon=True
            ).start()

    def _serve(self, connection: socket.socket, mode: str) -> None:
        connection.settimeout(5)
        try:
            if mode == "close":
                connection.close()
                return
            if mode == "reset":
                _reset(connection)
                return
            request = _read_request(connection)
            if mode == "ok":
                connection.sendall(_well_behaved(request))
            elif mode == "reset-after-request":
                _reset(connection)
            elif mode == "close-after-request":
                connection.close()
            elif mode == "endless-sse-line":
                self._endless(connection)
            elif mode == "gzip-json":
                body = gzip.compress(completion_json())
                headers = [
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "gzip"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                ]
                connection.sendall(_http_response("200 OK", headers, body))
                connection.close()
            else:
                raise AssertionError(f"unknown raw upstream mode {mode!r}")
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                connection.close()

    def _endless(self, connection: socket.socket) -> None:
        headers = [("Content-Type", "text/event-stream"), ("Connection", "close")]
        connection.sendall(_http_response("200 OK", headers, b"data: "))
        piece = b"x" * (64 * 1024)
        sent = 0
        try:
            while sent < self.endless_limit and not self._stop.is_set():
                connection.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the client hung up: the point of the exercise
        finally:
            with self._lock:
                self.sent.append(sent)


def _well_behaved(request: bytes) -> bytes:
    head, _, body = request.partition(b"\r\n\r\n")
    request_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if not request_line.startswith("POST ") or "/chat/completions" not in request_line:
        error = json.dumps({"error": {"code": 404, "message": "not here"}}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(error)))]
        return _http_response("404 Not Found", [*headers, ("Connection", "close")], error)
    try:
        streaming = bool(json.loads(body).get("stream"))
    except ValueError:
        streaming = False
    if not streaming:
        reply = completion_json()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))]
        return _http_response("200 OK", [*headers, ("Connection", "close")], reply)
    base = {"id": "gen-raw", "model": "openai/gpt-4o", "provider": "OpenAI", "created": 1}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Echo:"}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": " Hello!"}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    sse = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    headers = [("Content-Type", "text/event-stream"), ("Connection", "close")]
    return _http_response("200 OK", headers, sse + b"data: [DONE]\n\n")


def _reset(connection: socket.socket) -> None:
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _read_request(connection: socket.socket, limit: int = 1 << 20) -> bytes:
    """Read one HTTP/1.1 request with a ``Content-Length`` body (bounded)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
        if len(data) > limit:
            raise OSError("request head too large")
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < min(length, limit):
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
