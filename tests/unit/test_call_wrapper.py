"""The call wrapper is put around handlers as they are registered, once per method, only
generic handlers reach the server, and an unknown method stays unknown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from routerpc_gateway.observe import CallObserver


class _Gate:
    refusal = "no"

    def admit(self, context: Any) -> str | None:
        return "anonymous"


@dataclass
class _Server:
    """What a grpc.aio server is handed at registration."""

    generic: list[Any] = field(default_factory=list)
    registered: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.registered[service] = handlers


@dataclass(frozen=True)
class _Details:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


async def _chat(request: Any, context: Any) -> Any:
    return request


def _registered(server: _Server, deserializer: Any = None) -> Any:
    """Register ``Chat`` as generated code does (generic handler and registered method)."""
    handler: Any = grpc.unary_unary_rpc_method_handler(_chat, request_deserializer=deserializer)
    registrar: Any = CallObserver(_Gate()).registrar(server)  # type: ignore[arg-type]
    registrar.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("t.S", {"Chat": handler}),)
    )
    registrar.add_registered_method_handlers("t.S", {"Chat": handler})
    return handler


def test_generic_handlers_come_out_wrapped_once_per_method() -> None:
    server = _Server()
    inner = _registered(server)
    [generic] = server.generic
    first = generic.service(_Details("/t.S/Chat"))
    assert first is not None
    assert first.unary_unary is not inner.unary_unary
    assert generic.service(_Details("/t.S/Chat")) is first  # built once, then reused
    assert generic.service(_Details("/t.S/Missing")) is None  # UNIMPLEMENTED, as before


def test_the_wrapper_decodes_instead_of_grpc() -> None:
    server = _Server()
    _registered(server, deserializer=bytes)
    [generic] = server.generic
    wrapped = generic.service(_Details("/t.S/Chat"))
    assert wrapped.request_deserializer is None  # the wrapper decodes (INVALID_ARGUMENT)


def test_registered_methods_are_not_registered_only_generic_handlers() -> None:
    server = _Server()
    _registered(server)
    assert server.registered == {}  # each would add a task to every accepted call's wait
    assert len(server.generic) == 1
