"""Caller authentication with bearer tokens from a callers file (issue 7, "Caller authentication").

The tokens are hashed with ``routerpc hash-token`` as an operator would. Every RPC except the
health service needs a credential; a missing and a wrong one are refused identically, so a
caller cannot learn which part was wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, seed_request
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from security_support import (
    RECEIVED,
    Creds,
    Outcome,
    bearer,
    canary_token,
    open_channel,
    rpc,
    rpc_stream,
    write_yaml,
)

from routerpc import pb

pytestmark = pytest.mark.e2e

AUTH_FAILED = "missing or invalid credentials"


def _toml(digest: str) -> str:
    return f'require_auth = true\n\n[callers.team-alpha]\ntoken_sha256 = ["{digest}"]\n'


@pytest.fixture(scope="module", params=["yaml", "toml"])
def auth_gateway(
    request: pytest.FixtureRequest,
    module_gateways: Callable[..., Gateway],
    emulator: Emulator,
    creds: Creds,
    tmp_path_factory: pytest.TempPathFactory,
) -> Gateway:
    gateway_key, digests = creds.gateway_key, creds.digests
    folder = tmp_path_factory.mktemp(f"auth-{request.param}")
    if request.param == "yaml":
        path = write_yaml(
            folder / "callers.yaml",
            {"callers": {"team-alpha": {"token_sha256": [digests["alpha"]]}}},
        )
    else:
        path = folder / "callers.toml"
        path.write_text(_toml(digests["alpha"]))
    return module_gateways(
        f"auth-{request.param}",
        "--callers-file",
        str(path),
        upstream_url=emulator.base_url,
        key=gateway_key,
    )


@pytest.fixture
def stub(auth_gateway: Gateway) -> Any:
    with open_channel(auth_gateway.target) as channel:
        yield pb.RouterServiceStub(channel)


def test_the_digests_are_what_hash_token_prints(
    tokens: dict[str, str], digests: dict[str, str]
) -> None:
    assert digests["alpha"] == hashlib.sha256(tokens["alpha"].encode()).hexdigest()
    assert len(set(digests.values())) == len(digests)


def _refused_alike(outcome: Outcome, reference: Outcome) -> None:
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED
    assert outcome.details == AUTH_FAILED
    assert (outcome.reason, outcome.info) == (reference.reason, reference.info)
    assert [k for k, _ in outcome.trailers] == [k for k, _ in reference.trailers]


def test_no_token_wrong_token_and_right_token(
    stub: Any, upstream: Emulator, tokens: dict[str, str], digests: dict[str, str]
) -> None:
    request = seed_request().proto
    missing = rpc(stub.Chat, request)
    assert missing.code == grpc.StatusCode.UNAUTHENTICATED
    assert missing.details == AUTH_FAILED

    wrong_ones = [
        bearer(canary_token()),  # a token nobody was given
        bearer(tokens["beta"]),  # a real token, but not in this file
        bearer(digests["alpha"]),  # the stored digest is not a credential
        bearer(tokens["alpha"] + "x"),
        (("authorization", f"Basic {tokens['alpha']}"),),
        (("authorization", tokens["alpha"]),),
        (("x-api-key", tokens["alpha"]),),
    ]
    for metadata in wrong_ones:
        _refused_alike(rpc(stub.Chat, request, metadata=metadata), missing)
    assert upstream.requests() == [], "a refused call never reaches the upstream"

    right = rpc(stub.Chat, request, metadata=bearer(tokens["alpha"]))
    assert right.ok, right.text
    assert right.response.choices[0].message.content
    assert len(upstream.requests()) == 1


def test_every_router_rpc_needs_credentials(
    stub: Any, upstream: Emulator, tokens: dict[str, str]
) -> None:
    calls: list[tuple[str, Callable[..., Outcome]]] = [
        ("Chat", lambda md: rpc(stub.Chat, seed_request().proto, metadata=md)),
        (
            "StreamChat",
            lambda md: rpc_stream(
                stub.StreamChat, pb.StreamChatRequest(request=seed_request().proto), metadata=md
            ),
        ),
        ("ListModels", lambda md: rpc(stub.ListModels, pb.ListModelsRequest(), metadata=md)),
        (
            "ListEndpoints",
            lambda md: rpc(
                stub.ListEndpoints, pb.ListEndpointsRequest(model="openai/gpt-4o"), metadata=md
            ),
        ),
        (
            "GetGeneration",
            lambda md: rpc(
                stub.GetGeneration, pb.GetGenerationRequest(id="gen-nothing"), metadata=md
            ),
        ),
    ]
    for name, call in calls:
        refused = call(())
        assert (refused.code, refused.details) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED), (
            name
        )
        assert call(bearer(canary_token())).code == grpc.StatusCode.UNAUTHENTICATED, name
    assert upstream.requests() == []

    for name, call in calls[:4]:
        allowed = call(bearer(tokens["alpha"]))
        assert allowed.ok, f"{name}: {allowed.text}"
    models = calls[2][1](bearer(tokens["alpha"])).response.models
    assert any(m.id == "openai/gpt-4o" for m in models)
    # An unknown generation id is the upstream's NOT_FOUND: the call got past authentication.
    assert calls[4][1](bearer(tokens["alpha"])).code == grpc.StatusCode.NOT_FOUND


def test_health_is_open_without_credentials(auth_gateway: Gateway) -> None:
    with open_channel(auth_gateway.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", pb.SERVICE_NAME):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _reflect(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> Outcome:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
        metadata=metadata,
        timeout=10,
    )
    try:
        replies = list(call)
    except grpc.RpcError:
        outcome = Outcome(call.code(), call.details() or "", tuple(call.trailing_metadata() or ()))
    else:
        outcome = Outcome(call.code(), "", tuple(call.trailing_metadata() or ()), response=replies)
    RECEIVED.append(f"{outcome.details} {outcome.trailers!r}")
    return outcome


def test_reflection_needs_credentials(auth_gateway: Gateway, tokens: dict[str, str]) -> None:
    with open_channel(auth_gateway.target) as channel:
        refused = _reflect(channel, ())
        assert (refused.code, refused.details) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)
        assert _reflect(channel, bearer(canary_token())).code == grpc.StatusCode.UNAUTHENTICATED

        allowed = _reflect(channel, bearer(tokens["alpha"]))
        assert allowed.ok
        names = {s.name for r in allowed.response for s in r.list_services_response.service}
        assert pb.SERVICE_NAME in names


def test_require_auth_false_lets_anonymous_callers_in(
    start_gateway: Callable[..., Gateway],
    upstream: Emulator,
    creds: Creds,
    tmp_path: Path,
) -> None:
    gateway_key, digests, tokens = creds.gateway_key, creds.digests, creds.tokens
    path = write_yaml(
        tmp_path / "open.yaml",
        {"require_auth": False, "callers": {"team-alpha": {"token_sha256": [digests["alpha"]]}}},
    )
    gateway = start_gateway(
        "auth-open", "--callers-file", str(path), upstream_url=upstream.base_url, key=gateway_key
    )
    with open_channel(gateway.target) as channel:
        stub = pb.RouterServiceStub(channel)
        anonymous = rpc(stub.Chat, seed_request().proto)
        assert anonymous.ok, anonymous.text
        assert rpc(stub.ListModels, pb.ListModelsRequest()).ok
        assert rpc(stub.Chat, seed_request().proto, metadata=bearer(tokens["alpha"])).ok
        # A token that is presented must still be a valid one.
        wrong = rpc(stub.Chat, seed_request().proto, metadata=bearer(canary_token()))
        assert (wrong.code, wrong.details) == (grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)
    assert len(upstream.requests()) == 2
    log = gateway.log_text()
    assert "caller=anonymous" in log
    assert "caller=team-alpha" in log
