"""Secrets never leak: caller tokens, the gateway's key and BYOK keys appear in no gateway log, no
status message or detail, and no trailing metadata.

Every call in this directory goes through ``security_support.rpc()``, which fails the call's test
on the spot if anything the caller could read holds a known secret, and every gateway started
by the fixtures has its log scanned when it stops. This file adds a gateway logging at debug
level in JSON, driven through every refusal and error path with secrets in play, and finally
sweeps everything every earlier test received.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_e2e import Gateway, faulty, launch_emulator, seed_request, stop_process
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from security_support import (
    KNOWN_SECRETS,
    RECEIVED,
    Creds,
    Outcome,
    assert_log_clean,
    bearer,
    canary_key,
    canary_token,
    open_channel,
    rpc,
    rpc_stream,
    write_yaml,
)

from routerpc import MaxPrice, ProviderConfig, pb

pytestmark = pytest.mark.e2e

BYOK = "x-openrouter-api-key"


def test_no_secret_in_logs_errors_or_metadata_on_any_path(
    start_gateway: Callable[..., Gateway],
    sec_logs: Path,
    creds: Creds,
    tmp_path: Path,
) -> None:
    gateway_key, tokens, digests = creds.gateway_key, creds.tokens, creds.digests
    # The upstream accepts only the gateway's key: an OK answer proves that key was sent, and not
    # the caller's bearer token.
    emulator = launch_emulator(sec_logs / "secrets-emulator.log", "--require-key", gateway_key)
    byok_key = canary_key()
    try:
        callers = write_yaml(
            tmp_path / "callers.yaml",
            {
                "callers": {
                    "team-alpha": {
                        "token_sha256": [digests["alpha"]],
                        "limits": {"mode": "reject", "max_price": {"prompt": 5}},
                    },
                    "team-byok": {"token_sha256": [digests["byok"]], "byok": True},
                }
            },
        )
        gateway = start_gateway(
            "secrets-debug-json",
            "--callers-file",
            str(callers),
            "--log-level",
            "debug",
            "--log-format",
            "json",
            upstream_url=emulator.base_url,
            key=gateway_key,
        )
        alpha, byok = bearer(tokens["alpha"]), bearer(tokens["byok"])
        outcomes: list[Outcome] = []
        with open_channel(gateway.target) as channel:
            stub = pb.RouterServiceStub(channel)

            def both(request: pb.ChatRequest, metadata: tuple[tuple[str, str], ...]) -> None:
                outcomes.append(rpc(stub.Chat, request, metadata=metadata))
                stream = pb.StreamChatRequest(request=request)
                outcomes.append(rpc_stream(stub.StreamChat, stream, metadata=metadata))

            ok = seed_request().proto
            both(ok, ())  # no credentials
            both(ok, bearer(canary_token()))  # a wrong token
            both(ok, ((BYOK, byok_key),))  # a key but no credentials
            both(ok, alpha)  # fine
            both(ok, (*alpha, (BYOK, byok_key)))  # BYOK not allowed
            both(ok, (*byok, (BYOK, byok_key)))  # BYOK allowed: the upstream refuses it (401)
            pricey = seed_request().proto
            pricey.provider.CopyFrom(ProviderConfig(max_price=MaxPrice(prompt=50)))
            both(pricey, alpha)  # policy refusal
            escape = seed_request().proto
            escape.extra_body.update({"provider": {"only": ["x"]}, "api_key": byok_key})
            both(escape, alpha)  # extra_body refusal
            both(pb.ChatRequest(model="openai/gpt-4o"), alpha)  # invalid request
            for fault in ("rate-limit", "server-error", "mid-stream-error", "garbage-json"):
                both(faulty(fault).proto, alpha)
            outcomes.append(rpc(stub.ListModels, pb.ListModelsRequest(), metadata=alpha))
            listing = pb.ListEndpointsRequest(model="nobody/nothing")
            outcomes.append(rpc(stub.ListEndpoints, listing, metadata=alpha))
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                metadata=alpha,
                timeout=10,
            )
            assert replies.next().list_services_response.service
            replies.cancel()

        seen = [(o.code.name, o.reason) for o in outcomes]
        expected = [
            *[("UNAUTHENTICATED", "")] * 6,
            *[("OK", "")] * 2,
            *[("PERMISSION_DENIED", "BYOK_NOT_ALLOWED")] * 2,
            *[("UNAUTHENTICATED", "UPSTREAM_UNAUTHENTICATED")] * 2,
            *[("PERMISSION_DENIED", "POLICY_VIOLATION")] * 2,
            *[("INVALID_ARGUMENT", "INVALID_REQUEST")] * 4,
        ]
        assert seen[: len(expected)] == expected
        assert all(code != "OK" for code, _ in seen[len(expected) : -2]), "every fault failed"
        assert seen[-2:] == [("OK", ""), ("NOT_FOUND", "NOT_FOUND")]
        for served in outcomes[6:8]:  # trailing metadata was really there to be scanned
            assert any(key == "routerpc-request-id" for key, _ in served.trailers), served.trailers
        for outcome in outcomes:
            for secret in (gateway_key, byok_key, *tokens.values()):
                assert secret not in outcome.text
                assert secret not in repr(outcome.trailers)
                assert secret not in repr(outcome.response)

        recorded = emulator.requests()
        assert recorded, "the OK calls reached the upstream"
        assert all(entry["has_authorization"] for entry in recorded)
        assert not any(s in repr(recorded) for s in KNOWN_SECRETS), "no secret in any body"
    finally:
        stop_process(emulator.process)
    stop_process(gateway.process)
    log = gateway.log_text()
    assert '"caller":"team-alpha"' in log, "the calls were logged"
    assert '"caller":"team-byok"' in log
    assert_log_clean(gateway)
    for secret in (gateway_key, byok_key, *tokens.values()):
        assert secret not in log
        assert secret[-10:] not in log, "not even a fragment"


def test_nothing_any_caller_received_in_this_run_held_a_secret() -> None:
    """The sweep behind every ``rpc()`` check, over every test of this directory that ran."""
    if len(RECEIVED) < 20:
        pytest.skip("only meaningful when the security tests run together")
    assert len(KNOWN_SECRETS) >= 3
    leaks = [text for text in RECEIVED for s in KNOWN_SECRETS if s in text]
    assert leaks == []
