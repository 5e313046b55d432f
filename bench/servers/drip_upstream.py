"""A slow-drip OpenRouter stand-in: one stream chunk every ``--interval-ms``.

Each content chunk's text is the ``time.time_ns()`` at which it is written to the socket, so a
client on the same machine can measure how long the chunk took to get through a gateway
(relay delay = arrival - send). The request's ``max_tokens`` (when present) sets how many
content chunks a stream has; otherwise ``--chunks``. A stream ends like OpenRouter's: a finish
chunk, a usage chunk with ``choices: []``, ``data: [DONE]``.

Also answers non-streaming completions and ``GET /api/v1/models/{author}/{slug}/endpoints``
with the static bodies of ``bench.fixtures``.

    python -m bench.servers.drip_upstream --port 8090 --interval-ms 50 --chunks 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time

from aiohttp import web

from bench import fixtures


class Drip:
    def __init__(self, interval_s: float, chunks: int, max_chunks: int) -> None:
        self._interval_s = interval_s
        self._chunks = chunks
        self._max_chunks = max_chunks

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        if not body.get("stream"):
            return web.Response(text=fixtures.completion_json(), content_type="application/json")
        count = body.get("max_tokens") or self._chunks
        count = max(1, min(int(count), self._max_chunks))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(fixtures.KEEPALIVE.encode())
        for i in range(count):
            await asyncio.sleep(self._interval_s)
            payload = fixtures.chunk(str(time.time_ns()), first=i == 0, last=i == count - 1)
            await response.write(fixtures.sse_event(payload).encode())
        await response.write(fixtures.sse_event(fixtures.usage_chunk()).encode())
        await response.write(fixtures.DONE.encode())
        await response.write_eof()
        return response

    async def endpoints(self, request: web.Request) -> web.Response:
        return web.Response(text=fixtures.endpoints_json(), content_type="application/json")


async def serve(host: str, port: int, drip: Drip) -> None:
    app = web.Application()
    app.router.add_post("/api/v1/chat/completions", drip.completions)
    app.router.add_get("/api/v1/models/{author}/{slug}/endpoints", drip.endpoints)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    print(f"drip upstream listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval-ms", type=float, default=50.0)
    parser.add_argument("--chunks", type=int, default=40, help="content chunks per stream")
    parser.add_argument("--max-chunks", type=int, default=600, help="cap on max_tokens")
    args = parser.parse_args()
    drip = Drip(args.interval_ms / 1000.0, args.chunks, args.max_chunks)
    asyncio.run(serve(args.host, args.port, drip))


if __name__ == "__main__":
    main()
