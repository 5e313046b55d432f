"""Services reach the gRPC server through generic handlers only: the registered-method copies
the generated code also adds are dropped, and everything else is passed through."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from routerpc_gateway.registration import GenericOnly


class _Recorder:
    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        self.registered.append(service)

    def add_insecure_port(self, address: str) -> int:
        return 4242


def test_generated_registration_adds_the_generic_handler_and_no_registered_methods() -> None:
    server = _Recorder()
    health_pb2_grpc.add_HealthServicer_to_server(
        health.aio.HealthServicer(),
        GenericOnly(server),  # type: ignore[arg-type]
    )
    assert server.registered == []
    [generic] = server.generic
    details: Any = type("D", (), {"method": "/grpc.health.v1.Health/Check"})()
    assert generic.service(details) is not None
    assert GenericOnly(server).add_insecure_port("127.0.0.1:0") == 4242  # type: ignore[arg-type]


def test_a_real_server_serves_generic_only_services() -> None:
    async def check() -> None:
        server = grpc.aio.server()
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, GenericOnly(server))
        port = GenericOnly(server).add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                missing: Any = channel.unary_unary("/grpc.health.v1.Health/Missing")
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await missing(b"", timeout=5)
                assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        finally:
            await server.stop(None)

    asyncio.run(check())
