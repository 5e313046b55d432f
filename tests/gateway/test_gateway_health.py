"""Standard gRPC services on the gateway: grpc.health.v1 and server reflection."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from routerpc import pb

pytestmark = pytest.mark.e2e

SERVICE = "routerpc.v1.RouterService"


@pytest.mark.parametrize("service", ["", SERVICE], ids=["server", "router-service"])
def test_health_check_reports_serving(channel: grpc.Channel, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)

    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_an_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)

    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def _reflect(
    channel: grpc.Channel, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    assert len(replies) == 1
    return replies[0]


def test_reflection_lists_the_router_health_and_reflection_services(
    channel: grpc.Channel,
) -> None:
    reply = _reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))

    names = {s.name for s in reply.list_services_response.service}
    assert SERVICE in names
    assert "grpc.health.v1.Health" in names
    assert "grpc.reflection.v1alpha.ServerReflection" in names


def test_reflection_serves_the_file_that_defines_the_router_service(
    channel: grpc.Channel,
) -> None:
    reply = _reflect(
        channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
    )

    assert reply.WhichOneof("message_response") == "file_descriptor_response"
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    defining = [f for f in files if any(s.name == "RouterService" for s in f.service)]
    assert len(defining) == 1
    served = defining[0]
    assert served.package == "routerpc.v1"
    assert served.name == pb.ROUTER_SERVICE_FILE.name
    methods = {m.name for m in served.service[0].method}
    assert methods >= {"Chat", "StreamChat", "ListModels", "ListEndpoints"}
    stream_chat = next(m for m in served.service[0].method if m.name == "StreamChat")
    assert stream_chat.server_streaming
