"""The benchmark's Python gRPC client: correctness checks, relay delay, many open streams.

The orchestrator (``bench.bench``) never imports grpc itself; it runs this module as a child
process, one sub-command at a time, and reads one JSON document (or JSON lines) from stdout.

    check      one Chat or StreamChat call; fails unless it ends with status OK and the
               expected content; prints the bytes of DATA the response took on the wire, so the
               orchestrator can check h2load's byte count (h2load cannot read trailers).
    checker    the same, as a long-lived process answering one check per stdin line.
    relay      StreamChat calls against a drip upstream; per chunk, arrival - send time.
    relay-http the same straight from the drip upstream over HTTP (the baseline).
    memory     open N StreamChat streams at once, report when all are open, hold them until
               stdin says "cancel" (or a time limit), cancel them all, report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import aiohttp
import grpc
import grpc.aio

from bench import fixtures
from routerpc import pb

_CHAT = "/routerpc.v1.RouterService/Chat"
_STREAM = "/routerpc.v1.RouterService/StreamChat"


def _emit(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


def _channel(target: str, *, separate: bool = False) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [("grpc.enable_retries", 0)]
    if separate:
        # One TCP connection per channel instead of a shared subchannel.
        options.append(("grpc.use_local_subchannel_pool", 1))
    return grpc.aio.insecure_channel(target, options=options)


def _wire(message: Any) -> int:
    return 5 + len(message.SerializeToString())


async def _check(channel: grpc.aio.Channel, mode: str, timeout: float) -> dict[str, Any]:
    """One call; ``ok`` only when it ended with status OK and the expected content."""
    try:
        await asyncio.wait_for(channel.channel_ready(), timeout)
        if mode == "unary":
            call = channel.unary_unary(
                _CHAT,
                request_serializer=pb.ChatRequest.SerializeToString,
                response_deserializer=pb.ChatResponse.FromString,
            )
            response = await call(fixtures.seed_request(), timeout=timeout)
            ok = bool(response.choices) and response.choices[0].message.content != ""
            return {
                "ok": ok,
                "messages": 1,
                "wire_bytes": _wire(response),
                "quantization": int(response.quantization),
                "detail": "" if ok else f"unexpected response: {response}",
            }
        stream = channel.unary_stream(
            _STREAM,
            request_serializer=pb.StreamChatRequest.SerializeToString,
            response_deserializer=pb.StreamChatResponse.FromString,
        )
        text: list[str] = []
        wire, count, usage = 0, 0, False
        request = pb.StreamChatRequest(request=fixtures.seed_request())
        async for chunk in stream(request, timeout=timeout):
            count += 1
            wire += _wire(chunk)
            usage = usage or chunk.HasField("usage")
            text.extend(c.delta.content for c in chunk.choices)
        ok = "".join(text) == "".join(fixtures.STREAM_PIECES) and usage
        detail = "" if ok else f"text {''.join(text)!r}, usage {usage}"
        return {"ok": ok, "messages": count, "wire_bytes": wire, "detail": detail}
    except grpc.aio.AioRpcError as error:
        return {"ok": False, "detail": f"{error.code().name}: {error.details()}"}
    except TimeoutError:
        return {"ok": False, "detail": f"no answer within {timeout}s"}


async def check(target: str, mode: str, timeout: float) -> int:
    async with _channel(target) as channel:
        result = await _check(channel, mode, timeout)
    _emit(result)
    return 0 if result["ok"] else 1


async def checker(timeout: float) -> int:
    """``check`` as a service: one JSON request per stdin line ({"target", "mode"}), one JSON
    answer per stdout line, channels kept per target; ends at end of input. Saves the
    orchestrator a Python start-up before every measured run."""
    channels: dict[str, grpc.aio.Channel] = {}
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            ask = json.loads(line)
            target = ask["target"]
            if ask.get("forget"):
                channel = channels.pop(target, None)
                if channel is not None:
                    await channel.close()
                _emit({"ok": True})
                continue
            if target not in channels:
                channels[target] = _channel(target)
            _emit(await _check(channels[target], ask["mode"], timeout))
    finally:
        for channel in channels.values():
            await channel.close()
    return 0


def _delays_of(text: str, arrived_ns: int, delays: list[float]) -> None:
    if text.isdigit():
        delays.append((arrived_ns - int(text)) / 1000.0)


async def relay(target: str, streams: int, chunks: int, timeout: float) -> int:
    delays: list[float] = []
    errors: list[str] = []
    async with _channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout)
        call = channel.unary_stream(
            _STREAM,
            request_serializer=pb.StreamChatRequest.SerializeToString,
            response_deserializer=pb.StreamChatResponse.FromString,
        )
        request = pb.StreamChatRequest(request=fixtures.seed_request(max_tokens=chunks))
        for _ in range(streams):
            try:
                async for chunk in call(request, timeout=timeout):
                    arrived = time.time_ns()
                    for choice in chunk.choices:
                        _delays_of(choice.delta.content, arrived, delays)
            except grpc.aio.AioRpcError as error:
                errors.append(f"{error.code().name}: {error.details()}")
    _emit({"delays_us": delays, "errors": errors})
    return 0 if not errors else 1


async def relay_http(url: str, streams: int, chunks: int, timeout: float) -> int:
    delays: list[float] = []
    body = json.loads(fixtures.request_json(stream=True))
    body["max_tokens"] = chunks
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for _ in range(streams):
            async with session.post(url, json=body) as response:
                async for line in response.content:
                    arrived = time.time_ns()
                    if not line.startswith(b"data: {"):
                        continue
                    for choice in json.loads(line[6:]).get("choices") or ():
                        _delays_of(choice["delta"].get("content") or "", arrived, delays)
    _emit({"delays_us": delays, "errors": []})
    return 0


async def memory(target: str, streams: int, channels: int, chunks: int, hold: float) -> int:
    """Open ``streams`` StreamChat calls over ``channels`` connections; hold; cancel."""
    opened = 0
    all_open = asyncio.Event()
    failures: list[str] = []
    received = 0
    pool = [_channel(target, separate=True) for _ in range(channels)]
    request = pb.StreamChatRequest(request=fixtures.seed_request(max_tokens=chunks))

    async def one(index: int) -> None:
        nonlocal opened, received
        channel = pool[index % channels]
        call = channel.unary_stream(
            _STREAM,
            request_serializer=pb.StreamChatRequest.SerializeToString,
            response_deserializer=pb.StreamChatResponse.FromString,
        )
        first = True
        try:
            async for _chunk in call(request, timeout=hold + 120):
                received += 1
                if first:
                    first = False
                    opened += 1
                    if opened == streams:
                        all_open.set()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                failures.append(f"{error.code().name}: {error.details()}")
                all_open.set()

    started = time.monotonic()
    tasks = [asyncio.create_task(one(i)) for i in range(streams)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_open.wait(), hold)
    _emit(
        {
            "event": "open",
            "open": opened,
            "wanted": streams,
            "seconds": round(time.monotonic() - started, 3),
            "failures": failures[:5],
            "failed": len(failures),
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.readline(), hold)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in pool:
        await channel.close()
    _emit({"event": "cancelled", "chunks_received": received, "failed": len(failures)})
    return 0 if not failures and opened == streams else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("check")
    c.add_argument("--target", required=True)
    c.add_argument("--mode", choices=["unary", "stream"], required=True)
    c.add_argument("--timeout", type=float, default=10.0)
    k = commands.add_parser("checker")
    k.add_argument("--timeout", type=float, default=10.0)
    r = commands.add_parser("relay")
    r.add_argument("--target", required=True)
    r.add_argument("--streams", type=int, default=4)
    r.add_argument("--chunks", type=int, default=40)
    r.add_argument("--timeout", type=float, default=60.0)
    h = commands.add_parser("relay-http")
    h.add_argument("--url", required=True)
    h.add_argument("--streams", type=int, default=4)
    h.add_argument("--chunks", type=int, default=40)
    h.add_argument("--timeout", type=float, default=60.0)
    m = commands.add_parser("memory")
    m.add_argument("--target", required=True)
    m.add_argument("--streams", type=int, default=1000)
    m.add_argument("--channels", type=int, default=10)
    m.add_argument("--chunks", type=int, default=60)
    m.add_argument("--hold", type=float, default=60.0, help="longest wait for open / cancel")
    args = parser.parse_args()
    if args.command == "check":
        return asyncio.run(check(args.target, args.mode, args.timeout))
    if args.command == "checker":
        return asyncio.run(checker(args.timeout))
    if args.command == "relay":
        return asyncio.run(relay(args.target, args.streams, args.chunks, args.timeout))
    if args.command == "relay-http":
        return asyncio.run(relay_http(args.url, args.streams, args.chunks, args.timeout))
    return asyncio.run(memory(args.target, args.streams, args.channels, args.chunks, args.hold))


if __name__ == "__main__":
    sys.exit(main())
