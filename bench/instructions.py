"""Instructions per call of the gateway's own work, counted by valgrind: a figure that does not
move between runs.

    python -m bench.instructions [--calls N] [--parts call,validation,...] [--tree DIR ...]

CPU time per request moves by up to a quarter between two runs of the same code on a shared VM
(bench/README.md): too much to judge a change worth a few percent. Callgrind counts the
instructions a process executes, which for the same code and input is the same number run after
run. Counted here, in one process and with no gRPC or HTTP I/O:

* ``call``: the gateway's call wrapper and ``Chat`` on the seed request, with an upstream that
  answers at once with the benchmark's completion (decoded from bytes, as a reply would be);
* ``stream``: the same for ``StreamChat``, the upstream's SSE body (10 content chunks, a usage
  chunk) arriving as one read and going through the gateway's SSE parser;
* its parts alone: ``validation``, ``body`` (request to JSON bytes), ``reply`` (completion to
  ``ChatResponse``), ``access-line`` (metrics and the access log line, written to /dev/null).

Each figure is (instructions of a run making N more calls - those of a run without them) / N,
so start-up and imports cancel out. ``--tree DIR`` counts another checkout as well (its
``service`` and ``client`` folders), for a before/after comparison on one machine. What it
cannot show: grpc.aio, uvloop and the HTTP client, and what the kernel does (system calls are
not counted). ``bench/run`` stays the benchmark of record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("call", "stream", "validation", "body", "reply", "access-line")
_WARM_UP = 300
_BASE_CALLS = 10


class _Context:
    """The few ServicerContext methods ``Chat`` and its wrapper use."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "grpc-python/bench"),)

    def time_remaining(self) -> float | None:
        return None

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"the call failed: {code} {details}")


class _AnsweringUpstream:
    """An upstream that answers every call at once with the benchmark's bodies."""

    def __init__(self) -> None:
        from bench import fixtures
        from routerpc_gateway.upstream._base import decode_json

        self._decode = decode_json  # looked up once: an import statement per call is counted
        self._completion = fixtures.completion_json().encode()
        self._endpoints = fixtures.endpoints_json().encode()
        self._sse = fixtures.sse_body().encode()

    async def chat(self, body: bytes, *, seconds: float, api_key: str | None = None) -> Any:
        return self._decode(200, self._completion)

    async def get(self, path: str, *, seconds: float, api_key: str | None = None) -> Any:
        return self._decode(200, self._endpoints)

    @contextlib.asynccontextmanager
    async def stream_chat(
        self, body: bytes, *, seconds: float, api_key: str | None = None
    ) -> AsyncIterator[AsyncIterator[Any]]:
        from routerpc_gateway.upstream._base import sse_events

        async def one_read() -> AsyncIterator[bytes]:
            yield self._sse

        async def no_body() -> bytes:
            return b""

        yield sse_events((200, "text/event-stream"), no_body, one_read(), 1 << 20)

    async def aclose(self) -> None:
        return None


def _call_part(streaming: bool) -> Callable[[], object]:
    import grpc

    from bench import fixtures
    from routerpc import pb
    from routerpc_gateway.auth import Admission
    from routerpc_gateway.callers import CallersStore
    from routerpc_gateway.catalog import Catalog
    from routerpc_gateway.config import Settings
    from routerpc_gateway.observe import CallObserver
    from routerpc_gateway.servicer import RouterServicer

    settings = Settings.model_validate(  # fixed values: no environment, no .env file
        {"upstream_url": "http://127.0.0.1:9/api/v1", "openrouter_api_key": "sk-or-bench-none"}
    )
    upstream = _AnsweringUpstream()
    servicer = RouterServicer(
        settings,
        upstream,
        Catalog(upstream, settings.catalog_ttl),
    )
    wrapper = CallObserver(Admission(CallersStore(settings.callers_file)))
    context = _Context()
    loop = asyncio.new_event_loop()
    if streaming:
        streamer = grpc.unary_stream_rpc_method_handler(
            servicer.StreamChat,
            request_deserializer=pb.StreamChatRequest.FromString,
            response_serializer=pb.StreamChatResponse.SerializeToString,
        )
        stream: Any = wrapper.wrap(streamer, "/routerpc.v1.RouterService/StreamChat").unary_stream
        assert stream is not None
        raw = pb.StreamChatRequest(request=fixtures.seed_request()).SerializeToString()

        async def relayed() -> list[Any]:
            return [message async for message in stream(raw, context)]

        return lambda: loop.run_until_complete(relayed())
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.Chat,
        request_deserializer=pb.ChatRequest.FromString,
        response_serializer=pb.ChatResponse.SerializeToString,
    )
    call = wrapper.wrap(handler, "/routerpc.v1.RouterService/Chat").unary_unary
    assert call is not None
    raw = fixtures.seed_request().SerializeToString()
    # One task per call, as grpc.aio runs each RPC; the answer is returned so that a test can
    # see the counted call is a successful one.
    return lambda: loop.run_until_complete(call(raw, context))  # type: ignore[arg-type]


def _access_line_part() -> Callable[[], None]:
    from routerpc_gateway import observe

    record = observe.CallRecord(request_id=observe._request_id(), method="Chat")
    record.model, record.provider, record.quantization = "openai/gpt-4o", "OpenAI", "fp16"
    record.prompt_tokens, record.completion_tokens, record.cost = 9, 10, 0.0001225
    record.attempts, record.upstream_seconds = 1, 0.000081
    in_flight = ("Chat",)
    return lambda: observe._finish(record, in_flight, None, None)


def _part(name: str) -> Callable[[], object]:
    from bench import fixtures
    from routerpc._validation import field_violations
    from routerpc_gateway import convert, responses
    from routerpc_gateway.upstream._base import decode_json

    request = fixtures.seed_request()
    completion = decode_json(200, fixtures.completion_json().encode())
    if name in ("call", "stream"):
        return _call_part(streaming=name == "stream")
    if name == "access-line":
        return _access_line_part()
    runs: dict[str, Callable[[], object]] = {
        "validation": lambda: field_violations(request),
        "body": lambda: convert.encode_chat(request, stream=False),
        "reply": lambda: responses.chat_response(completion),
    }
    return runs[name]


def _child(part: str, calls: int) -> None:
    """Runs in the counted process: warm up, then ``calls`` more calls of ``part``."""
    import logging

    from routerpc_gateway.logs import configure_logging

    configure_logging("info", "text")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115  # lives as long as the process
    run = _part(part)
    for _ in range(_WARM_UP + calls):
        run()


def _instructions(tree: Path, part: str, calls: int) -> int:
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join(str(p) for p in (tree / "service", tree / "client", ROOT)),
    }
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    argv += ["-m", "bench.instructions", "--child", part, "--calls", str(calls)]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run of {part} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _per_call(tree: Path, part: str, calls: int) -> int:
    with ThreadPoolExecutor(2) as pool:  # one process per core of a 2-core machine
        base, more = pool.map(
            lambda n: _instructions(tree, part, n), (_BASE_CALLS, _BASE_CALLS + calls)
        )
    return (more - base) // calls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls counted per part")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"from {', '.join(PARTS)}")
    parser.add_argument("--tree", action="append", default=[], help="another checkout to count")
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.calls)
        return 0
    if shutil.which("valgrind") is None:
        print("bench.instructions needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not 0 < args.calls <= 100_000:
        parser.error(f"unknown parts {unknown}" if unknown else "--calls is 1..100000")
    trees = [ROOT, *(Path(t).resolve() for t in args.tree)]
    print(f"instructions per call ({args.calls} calls counted, callgrind)")
    print(f"{'part':<12}" + "".join(f"{tree!s:>28}" for tree in trees))
    for part in parts:
        counts = [_per_call(tree, part, args.calls) for tree in trees]
        print(f"{part:<12}" + "".join(f"{count:>28,}" for count in counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
