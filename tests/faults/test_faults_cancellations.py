"""1000 client cancellations mid-stream, then the gateway process is back to its baseline.

A single-process gateway (``--workers 1``, so its pid is the process serving) sits in front of an
emulator that pauses 200 ms between streamed events, and gets a 200-word prompt: each stream would
last about 40 s. Ten waves of 100 streams each read their first chunk and are then cancelled by
the client (grpc.aio ``call.cancel()``: an HTTP/2 RST_STREAM to the gateway).

What is measured, from /proc of the gateway process, against a baseline taken after a warm-up:

* open file descriptors (``/proc/<pid>/fd``): within a small delta;
* established TCP connections from the gateway to the emulator's port (``/proc/<pid>/net/tcp``
  rows in state 01 whose socket inode is one of the process's fds): back to at most the
  keep-alive pool of the baseline, i.e. every cancelled stream's upstream connection was closed;
* asyncio tasks: the gateway has no way to report them (no debug endpoint, no metric), so they
  cannot be counted from outside; the test reports resident memory (VmRSS) and the thread count
  instead and bounds both. A leaked task that still held its stream would also hold its upstream
  connection and fd, which are checked exactly.

Upstream slots are a second leak detector: the gateway runs with ``--max-concurrent-upstream 100
--max-queued 100``, so a wave of 100 can only all reach their first chunk if the previous waves
gave every slot back (a leaked slot leaves one stream queued until the test's bound fails it).
The emulator's request log, read and cleared after each wave, shows all 1000 streams reached it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import grpc.aio
import pytest
from faults_support import Caller, ProcessSnapshot, clear_emulator
from gateway_e2e import Emulator, Gateway, seed_request

from routerpc import pb

pytestmark = pytest.mark.e2e

WAVES = 10
PER_WAVE = 100
FIRST_CHUNK_S = 15.0
"""Bound for every stream of a wave to relay its first chunk."""
SETTLE_S = 10.0
FD_SLACK = 8
RSS_BOUND_KIB = 64 * 1024
THREAD_SLACK = 4
LONG_TEXT = " ".join(f"word{i}" for i in range(200))


@pytest.fixture
def cancel_gateway(
    start_gateway: Callable[..., Gateway], slow_emulator: Emulator, upstream_client: str
) -> Gateway:
    return start_gateway(
        "cancellations",
        "--max-concurrent-upstream",
        str(PER_WAVE),
        "--max-queued",
        str(PER_WAVE),
        upstream_url=slow_emulator.base_url,
        client=upstream_client,
    )


async def _wave(
    stub: pb.RouterServiceStub,
    request: pb.StreamChatRequest,
    count: int,
    caller: Caller,
    while_open: Callable[[], object] | None = None,
) -> None:
    """Open ``count`` streams, read one chunk from each, (call ``while_open``,) cancel them."""
    calls = [stub.StreamChat(request, timeout=60, metadata=caller.metadata) for _ in range(count)]
    try:
        firsts = await asyncio.wait_for(
            asyncio.gather(*(call.read() for call in calls)), FIRST_CHUNK_S
        )
        if while_open is not None:
            while_open()
    except TimeoutError:
        pytest.fail(
            f"not every stream of the wave relayed a chunk within {FIRST_CHUNK_S}s: "
            "an upstream slot or connection leaked?"
        )
    except grpc.aio.AioRpcError as error:
        caller.record_aio(error)
        pytest.fail(f"a stream failed before its first chunk: {error.code()} {error.details()}")
    finally:
        for call in calls:
            call.cancel()
    assert all(isinstance(first, pb.StreamChatResponse) for first in firsts), "a stream ended"


def _settled(pid: int, port: int, timeout_s: float) -> ProcessSnapshot:
    """A snapshot once two taken 0.3 s apart agree on fds and connections (bounded)."""
    deadline = time.monotonic() + timeout_s
    previous = ProcessSnapshot.take(pid, port)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = ProcessSnapshot.take(pid, port)
        if (current.fds, current.upstream_connections) == (
            previous.fds,
            previous.upstream_connections,
        ):
            return current
        previous = current
    return previous


def _back_to(pid: int, port: int, baseline: ProcessSnapshot, timeout_s: float) -> ProcessSnapshot:
    deadline = time.monotonic() + timeout_s
    while True:
        now = ProcessSnapshot.take(pid, port)
        back = (
            now.fds <= baseline.fds + FD_SLACK
            and now.upstream_connections <= baseline.upstream_connections
        )
        if back or time.monotonic() >= deadline:
            return now
        time.sleep(0.2)


async def test_1000_cancelled_streams_leave_no_connections_fds_or_slots_behind(
    cancel_gateway: Gateway,
    slow_emulator: Emulator,
    caller: Caller,
    upstream_client: str,
    faults_dir: Path,
) -> None:
    pid, port = cancel_gateway.process.pid, slow_emulator.port
    request = pb.StreamChatRequest(request=seed_request(text=LONG_TEXT).proto)
    started = time.monotonic()
    async with grpc.aio.insecure_channel(cancel_gateway.target) as channel:
        stub = pb.RouterServiceStub(channel)
        # Warm-up: a stream read to its end (fills the keep-alive pool), a small wave.
        short = pb.StreamChatRequest(request=seed_request().proto)
        complete = [m async for m in stub.StreamChat(short, timeout=15, metadata=caller.metadata)]
        assert complete, "the warm-up stream relayed nothing"
        await _wave(stub, request, 10, caller)
        baseline = await asyncio.to_thread(_settled, pid, port, 5.0)
        clear_emulator(slow_emulator)

        reached = 0
        during: list[ProcessSnapshot] = []

        def look() -> None:
            during.append(ProcessSnapshot.take(pid, port))

        for number in range(WAVES):
            last = number == WAVES - 1  # the last wave is looked at while its streams are open
            await _wave(stub, request, PER_WAVE, caller, look if last else None)
            arrived = clear_emulator(slow_emulator)
            assert arrived == PER_WAVE, f"wave {number}: the emulator saw {arrived} streams"
            reached += arrived
        waves_s = time.monotonic() - started

        after = await asyncio.to_thread(_back_to, pid, port, baseline, SETTLE_S)
    summary = {
        "client": upstream_client,
        "streams_cancelled": WAVES * PER_WAVE,
        "reached_upstream": reached,
        "seconds": round(waves_s, 1),
        "baseline": vars(baseline),
        "during_last_wave": vars(during[0]),
        "after": vars(after),
    }
    (faults_dir / f"cancellations-{upstream_client}.json").write_text(json.dumps(summary))
    print(summary)

    assert reached == WAVES * PER_WAVE
    # The measurement sees what it should: one upstream connection per open stream.
    assert during[0].upstream_connections >= PER_WAVE, summary
    assert after.upstream_connections <= baseline.upstream_connections, summary
    assert after.fds <= baseline.fds + FD_SLACK, summary
    assert after.rss_kib - baseline.rss_kib < RSS_BOUND_KIB, summary
    assert after.threads <= baseline.threads + THREAD_SLACK, summary

    # The gateway keeps serving: a normal stream (to its end) and a unary call.
    streamed = caller.stream(cancel_gateway.target, seed_request().proto, timeout=15)
    assert streamed.ok, str(streamed)
    unary = caller.unary(cancel_gateway.target, seed_request().proto, timeout=15)
    assert unary.ok, str(unary)
