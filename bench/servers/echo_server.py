"""The floor: a grpc.aio ``RouterService`` that answers from memory, no upstream call.

``Chat`` returns one prebuilt ``ChatResponse``; ``StreamChat`` yields ten prebuilt content chunks
and the usage chunk, the same content the static upstream serves. Whatever a real gateway spends
above this is the cost of its upstream client, conversion and features.

A ``StreamChat`` request that sets ``max_tokens`` gets a slow drip instead: ``max_tokens`` chunks,
one every ``--drip-ms``, each carrying the ``time.time_ns()`` it was sent at (the gRPC baseline of
the relay-delay test: a chunk's trip with no relay in between).

    python -m bench.servers.echo_server --port 50061
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio

from bench import fixtures
from bench.servers.loops import add_loop_argument, run_loop, serve_until_signalled
from routerpc import pb

_STOP: Any = 1  # FinishReason.FINISH_REASON_STOP (Any: stub enum types vary)


def _usage() -> pb.Usage:
    u = fixtures.USAGE
    return pb.Usage(
        prompt_tokens=u["prompt_tokens"],
        completion_tokens=u["completion_tokens"],
        total_tokens=u["total_tokens"],
        cost=u["cost"],
    )


def _response() -> pb.ChatResponse:
    body = fixtures.completion()
    return pb.ChatResponse(
        id=body["id"],
        model=body["model"],
        provider=body["provider"],
        created=body["created"],
        choices=[
            pb.Choice(
                index=0,
                message=pb.AssistantMessage(content=body["choices"][0]["message"]["content"]),
                finish_reason=_STOP,
                native_finish_reason="stop",
            )
        ],
        usage=_usage(),
    )


def _chunks() -> list[pb.StreamChatResponse]:
    last = len(fixtures.STREAM_PIECES) - 1
    chunks = []
    for i, piece in enumerate(fixtures.STREAM_PIECES):
        delta = pb.Delta(role="assistant" if i == 0 else "", content=piece)
        chunks.append(
            pb.StreamChatResponse(
                id=fixtures.GENERATION_ID,
                model=fixtures.MODEL,
                provider=fixtures.PROVIDER,
                created=fixtures.CREATED,
                choices=[
                    pb.ChunkChoice(
                        index=0,
                        delta=delta,
                        finish_reason=_STOP if i == last else 0,
                        native_finish_reason="stop" if i == last else "",
                    )
                ],
            )
        )
    chunks.append(
        pb.StreamChatResponse(
            id=fixtures.GENERATION_ID,
            model=fixtures.MODEL,
            provider=fixtures.PROVIDER,
            created=fixtures.CREATED,
            usage=_usage(),
        )
    )
    return chunks


class EchoServicer(pb.RouterServiceServicer):
    """Fixed answers, no I/O."""

    def __init__(self, drip_ms: float = 50.0) -> None:
        self._drip_s = drip_ms / 1000.0
        self._response = _response()
        self._chunks = _chunks()

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ChatResponse:
        return self._response

    async def StreamChat(
        self, request: pb.StreamChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamChatResponse]:
        if request.request.HasField("max_tokens"):
            # Drip mode (the gRPC baseline of the relay-delay test): max_tokens chunks, one
            # every drip interval, each carrying the time.time_ns() it was sent at.
            template = self._chunks[0]
            for _ in range(request.request.max_tokens):
                await asyncio.sleep(self._drip_s)
                chunk = pb.StreamChatResponse()
                chunk.CopyFrom(template)
                chunk.choices[0].delta.content = str(time.time_ns())
                yield chunk
            yield self._chunks[-1]
            return
        for chunk in self._chunks:
            yield chunk


async def serve(host: str, port: int, drip_ms: float) -> None:
    # Any: the stubs mark RPCs this bench does not serve as abstract (they answer UNIMPLEMENTED).
    servicer: Any = EchoServicer
    await serve_until_signalled(servicer(drip_ms), host, port, "echo server")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--drip-ms", type=float, default=50.0, help="chunk interval of a request with max_tokens"
    )
    add_loop_argument(parser)
    args = parser.parse_args()
    run_loop(serve(args.host, args.port, args.drip_ms), args.loop)


if __name__ == "__main__":
    main()
