"""The ceiling for a Python gateway: grpc.aio in front of one shared upstream HTTP client.

``Chat`` turns the request into the upstream JSON with the least work that is still correct for
the benchmark's request (model, text messages, provider quantizations), POSTs it with one shared
client, and builds the ``ChatResponse`` from the reply. ``StreamChat`` relays each SSE ``data:``
line as one ``StreamChatResponse`` the moment it arrives. No validation, no retries, no deadline
budget, no catalogue lookup: whatever the real gateway spends above this is its features.

    python -m bench.servers.passthrough_server --port 50062 \
        --upstream-url http://127.0.0.1:8081/api/v1 --client aiohttp

Clients (``--client``), as the gateway's ``--upstream-client``: ``aiohttp``, ``httpx``
(HTTP/1.1), ``httpx-http2`` (HTTP/2; over ``http://`` with prior knowledge, so the upstream must
speak h2c) and ``httpx-aiohttp`` (httpx over the ``httpx_aiohttp`` transport).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp
import grpc
import grpc.aio
import httpx
from httpx_aiohttp import AiohttpTransport

from bench.servers.loops import add_loop_argument, run_loop, serve_until_signalled
from routerpc import pb

CLIENTS = ("aiohttp", "httpx", "httpx-http2", "httpx-aiohttp")

_ROLES = {1: "system", 2: "developer", 3: "user", 4: "assistant", 5: "tool"}


def _quantization_names() -> dict[int, str]:
    kind = pb.ProviderConfig.DESCRIPTOR.fields_by_name["quantizations"].enum_type
    assert kind is not None
    return {v.number: v.name.removeprefix("QUANTIZATION_").lower() for v in kind.values}


_QUANTIZATIONS = _quantization_names()
_FINISH = {"stop": 1, "length": 2, "tool_calls": 3, "content_filter": 4, "error": 5}
_POOL = 256


def _body(request: pb.ChatRequest, *, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": _ROLES[m.role], "content": m.text} for m in request.messages],
    }
    if request.provider.quantizations:
        body["provider"] = {
            "quantizations": [_QUANTIZATIONS[q] for q in request.provider.quantizations]
        }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def _usage(raw: Mapping[str, Any]) -> pb.Usage:
    usage = pb.Usage(
        prompt_tokens=raw.get("prompt_tokens", 0),
        completion_tokens=raw.get("completion_tokens", 0),
        total_tokens=raw.get("total_tokens", 0),
    )
    if "cost" in raw:
        usage.cost = raw["cost"]
    return usage


def _chat_response(raw: Mapping[str, Any]) -> pb.ChatResponse:
    response = pb.ChatResponse(
        id=raw.get("id", ""),
        model=raw.get("model", ""),
        provider=raw.get("provider", ""),
        created=raw.get("created", 0),
    )
    for choice in raw.get("choices") or ():
        message = choice.get("message") or {}
        response.choices.add(
            index=choice.get("index", 0),
            message=pb.AssistantMessage(content=message.get("content") or ""),
            finish_reason=_FINISH.get(choice.get("finish_reason") or "", 0),
            native_finish_reason=choice.get("native_finish_reason") or "",
        )
    if raw.get("usage"):
        response.usage.CopyFrom(_usage(raw["usage"]))
    return response


def _stream_chunk(raw: Mapping[str, Any]) -> pb.StreamChatResponse:
    chunk = pb.StreamChatResponse(
        id=raw.get("id", ""),
        model=raw.get("model", ""),
        provider=raw.get("provider", ""),
        created=raw.get("created", 0),
    )
    for choice in raw.get("choices") or ():
        delta = choice.get("delta") or {}
        added = chunk.choices.add(
            index=choice.get("index", 0),
            finish_reason=_FINISH.get(choice.get("finish_reason") or "", 0),
            native_finish_reason=choice.get("native_finish_reason") or "",
        )
        added.delta.role = delta.get("role") or ""
        if isinstance(delta.get("content"), str):
            added.delta.content = delta["content"]
    if raw.get("usage"):
        chunk.usage.CopyFrom(_usage(raw["usage"]))
    return chunk


class Client(Protocol):
    async def post(self, body: bytes) -> bytes: ...

    def stream(self, body: bytes) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class AiohttpClient:
    """One ``aiohttp.ClientSession`` for the whole process."""

    def __init__(self, url: str, key: str) -> None:
        self._url = url
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            connector=aiohttp.TCPConnector(limit=_POOL, limit_per_host=_POOL),
            timeout=aiohttp.ClientTimeout(total=600, sock_read=120),
        )

    async def post(self, body: bytes) -> bytes:
        async with self._session.post(self._url, data=body) as response:
            return await response.read()

    async def stream(self, body: bytes) -> AsyncIterator[bytes]:
        async with self._session.post(self._url, data=body) as response:
            async for line in response.content:
                yield line

    async def aclose(self) -> None:
        await self._session.close()


def _aiohttp_transport() -> AiohttpTransport:
    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=_POOL, limit_per_host=_POOL)
        return aiohttp.ClientSession(connector=connector)

    return AiohttpTransport(client=session)


class HttpxClient:
    """One ``httpx.AsyncClient`` for the whole process: HTTP/1.1 (``flavour`` ``httpx``),
    HTTP/2 (``httpx-http2``: ALPN over https, prior knowledge over http) or over the aiohttp
    transport (``httpx-aiohttp``)."""

    def __init__(self, url: str, key: str, flavour: str = "httpx") -> None:
        self._url = url
        http2 = flavour == "httpx-http2"
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=_POOL, max_keepalive_connections=_POOL),
            timeout=httpx.Timeout(120.0, connect=5.0),
            http1=not (http2 and url.startswith("http:")),
            http2=http2,
            transport=_aiohttp_transport() if flavour == "httpx-aiohttp" else None,
        )

    async def post(self, body: bytes) -> bytes:
        response = await self._client.post(self._url, content=body)
        return response.content

    async def stream(self, body: bytes) -> AsyncIterator[bytes]:
        async with self._client.stream("POST", self._url, content=body) as response:
            async for line in response.aiter_lines():
                yield line.encode()

    async def aclose(self) -> None:
        await self._client.aclose()


class PassthroughServicer(pb.RouterServiceServicer):
    def __init__(self, client: Client) -> None:
        self._client = client

    async def Chat(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ChatResponse:
        raw = await self._client.post(_body(request, stream=False))
        return _chat_response(json.loads(raw))

    async def StreamChat(
        self, request: pb.StreamChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.StreamChatResponse]:
        async for line in self._client.stream(_body(request.request, stream=True)):
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                return
            yield _stream_chunk(json.loads(data))


async def serve(host: str, port: int, upstream_url: str, client_name: str) -> None:
    url = upstream_url.rstrip("/") + "/chat/completions"
    client: Client = (
        AiohttpClient(url, "bench-key")
        if client_name == "aiohttp"
        else HttpxClient(url, "bench-key", client_name)
    )
    # Any: the stubs mark RPCs this bench does not serve as abstract (they answer UNIMPLEMENTED).
    servicer: Any = PassthroughServicer
    try:
        await serve_until_signalled(servicer(client), host, port, f"passthrough ({client_name})")
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-url", required=True, help="base URL, e.g. http://h:p/api/v1")
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    add_loop_argument(parser)
    args = parser.parse_args()
    run_loop(serve(args.host, args.port, args.upstream_url, args.client), args.loop)


if __name__ == "__main__":
    main()
