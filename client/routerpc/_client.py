"""``RouterClient``: the blocking client. ``AsyncRouterClient`` is its asyncio twin."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Self

import grpc

from routerpc import pb
from routerpc._channel import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TIMEOUT,
    LoadBalancing,
    Metadata,
    as_proto,
    channel_options,
)
from routerpc._errors import error_from_rpc
from routerpc._request import ChatRequest
from routerpc._response import ChatChunk, ChatResult

__all__ = ["RouterClient"]


class RouterClient:
    """Calls a routerpc gateway over one gRPC channel.

    ``target`` is "host:port" or any gRPC target ("dns:///routerpc-headless:50051" with
    ``load_balancing="round_robin"`` spreads calls over every replica). Each call takes
    ``timeout`` (seconds; every call has a deadline, ``DEFAULT_TIMEOUT`` unless given) and
    extra ``metadata``. Failures raise the typed ``RouterError`` subclass for their code.
    """

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Metadata = (),
        timeout: float = DEFAULT_TIMEOUT,
        load_balancing: LoadBalancing | None = None,
        retry_unavailable: bool = True,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        validate: bool = True,
    ) -> None:
        options = channel_options(
            load_balancing=load_balancing,
            retry_unavailable=retry_unavailable,
            max_message_bytes=max_message_bytes,
        )
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = pb.RouterServiceStub(self._channel)
        self._metadata = tuple(metadata)
        self._timeout = timeout
        self._validate = validate

    def chat(
        self,
        request: ChatRequest | pb.ChatRequest,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> ChatResult:
        """Run one completion and return it whole."""
        proto = as_proto(request, validate=self._validate)
        try:
            response = self._stub.Chat(
                proto, timeout=timeout or self._timeout, metadata=self._metadata + tuple(metadata)
            )
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None
        return ChatResult(response)

    def stream_chat(
        self,
        request: ChatRequest | pb.ChatRequest,
        *,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> Iterator[ChatChunk]:
        """Yield each chunk as the gateway relays it; leaving the loop early cancels the call.

        A stream that was cut raises (``UnavailableError`` and others) instead of just ending.
        """
        proto = pb.StreamChatRequest(request=as_proto(request, validate=self._validate))
        call = self._stub.StreamChat(
            proto, timeout=timeout or self._timeout, metadata=self._metadata + tuple(metadata)
        )
        try:
            for chunk in call:
                yield ChatChunk(chunk)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None
        finally:
            call.cancel()

    def list_models(
        self, *, supported_parameters: tuple[str, ...] = (), timeout: float | None = None
    ) -> list[pb.Model]:
        """Models available through the gateway."""
        request = pb.ListModelsRequest(supported_parameters=list(supported_parameters))
        try:
            response = self._stub.ListModels(
                request, timeout=timeout or self._timeout, metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None
        return list(response.models)

    def list_endpoints(self, model: str, *, timeout: float | None = None) -> list[pb.Endpoint]:
        """A model's provider endpoints, with quantization, pricing and uptime."""
        try:
            response = self._stub.ListEndpoints(
                pb.ListEndpointsRequest(model=model),
                timeout=timeout or self._timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None
        return list(response.endpoints)

    def get_generation(self, generation_id: str, *, timeout: float | None = None) -> pb.Generation:
        """Final cost and statistics of a past completion (its ``ChatResult.proto.id``)."""
        try:
            response = self._stub.GetGeneration(
                pb.GetGenerationRequest(id=generation_id),
                timeout=timeout or self._timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None
        return response.generation

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
