"""Keys (issue 7, "Keys"): the gateway's own key by default, bring-your-own-key only when allowed,
and an upstream URL no caller can change.

For BYOK the upstream is an emulator started with ``--require-key <the caller's key>`` while the
gateway holds a different key: an answer other than 401 proves which key was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, launch_emulator, seed_request, stop_process
from security_support import (
    Creds,
    Outcome,
    bearer,
    canary_key,
    open_channel,
    rpc,
    rpc_stream,
    write_yaml,
)

from routerpc import pb

pytestmark = pytest.mark.e2e

BYOK = "x-openrouter-api-key"


@pytest.fixture(scope="module")
def caller_key() -> str:
    """The caller's own OpenRouter key (a canary: it must never be logged either)."""
    return canary_key()


@pytest.fixture(scope="module")
def keyed_emulator(sec_logs: Path, caller_key: str) -> Iterator[Emulator]:
    """Answers 401 unless the Authorization header carries the caller's own key."""
    emu = launch_emulator(sec_logs / "keyed-emulator.log", "--require-key", caller_key)
    try:
        yield emu
    finally:
        stop_process(emu.process)


def chat(
    gateway: Gateway, metadata: tuple[tuple[str, str], ...] = (), *, stream: bool = False
) -> Outcome:
    with open_channel(gateway.target) as channel:
        stub = pb.RouterServiceStub(channel)
        if stream:
            request = pb.StreamChatRequest(request=seed_request().proto)
            return rpc_stream(stub.StreamChat, request, metadata=metadata)
        return rpc(stub.Chat, seed_request().proto, metadata=metadata)


def byok_refused(outcome: Outcome) -> None:
    assert outcome.code == grpc.StatusCode.PERMISSION_DENIED, outcome.text
    assert outcome.reason == "BYOK_NOT_ALLOWED"
    assert BYOK in outcome.details


def upstream_refused(outcome: Outcome) -> None:
    """The upstream's 401 (the gateway's key is not the one the emulator wants)."""
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED, outcome.text
    assert outcome.reason == "UPSTREAM_UNAUTHENTICATED"
    assert outcome.info.get("httpStatus") == "401"


def test_byok_is_off_by_default(
    start_gateway: Callable[..., Gateway], upstream: Emulator, gateway_key: str, caller_key: str
) -> None:
    gateway = start_gateway("byok-default", upstream_url=upstream.base_url, key=gateway_key)
    byok_refused(chat(gateway, ((BYOK, caller_key),)))
    byok_refused(chat(gateway, ((BYOK, caller_key),), stream=True))
    assert upstream.requests() == [], "a refused call never reaches the upstream"
    assert chat(gateway).ok, "the gateway's own key serves callers that send none"
    assert upstream.requests()[0]["has_authorization"] is True


def test_a_caller_with_byok_true_uses_its_own_key(
    start_gateway: Callable[..., Gateway],
    keyed_emulator: Emulator,
    creds: Creds,
    caller_key: str,
    tmp_path: Path,
) -> None:
    gateway_key, tokens, digests = creds.gateway_key, creds.tokens, creds.digests
    keyed_emulator.clear()
    callers = write_yaml(
        tmp_path / "callers.yaml",
        {
            "callers": {
                "team-byok": {"token_sha256": [digests["byok"]], "byok": True},
                "team-plain": {"token_sha256": [digests["no-byok"]]},
            }
        },
    )
    gateway = start_gateway(
        "byok-callers",
        "--callers-file",
        str(callers),
        upstream_url=keyed_emulator.base_url,
        key=gateway_key,
    )
    allowed, plain = bearer(tokens["byok"]), bearer(tokens["no-byok"])
    upstream_refused(chat(gateway, allowed))
    assert keyed_emulator.requests() == [], "the emulator refused the gateway's key"

    assert chat(gateway, (*allowed, (BYOK, caller_key))).ok
    assert chat(gateway, (*allowed, (BYOK, caller_key)), stream=True).ok
    assert len(keyed_emulator.requests()) == 2

    byok_refused(chat(gateway, (*plain, (BYOK, caller_key))))
    upstream_refused(chat(gateway, (*allowed, (BYOK, canary_key()))))
    assert len(keyed_emulator.requests()) == 2


def test_allow_byok_without_a_callers_file(
    start_gateway: Callable[..., Gateway],
    keyed_emulator: Emulator,
    gateway_key: str,
    caller_key: str,
) -> None:
    keyed_emulator.clear()
    gateway = start_gateway(
        "byok-flag", "--allow-byok", upstream_url=keyed_emulator.base_url, key=gateway_key
    )
    upstream_refused(chat(gateway))
    assert chat(gateway, ((BYOK, caller_key),)).ok
    assert len(keyed_emulator.requests()) == 1


def test_no_caller_can_change_the_upstream_url(
    start_gateway: Callable[..., Gateway],
    upstream: Emulator,
    sec_logs: Path,
    gateway_key: str,
    caller_key: str,
) -> None:
    decoy = launch_emulator(sec_logs / "decoy-emulator.log")
    try:
        gateway = start_gateway(
            "upstream-fixed", "--allow-byok", upstream_url=upstream.base_url, key=gateway_key
        )
        elsewhere = decoy.base_url
        attempts: list[tuple[tuple[str, str], ...]] = [
            (("x-upstream-url", elsewhere),),
            (("x-openrouter-base-url", elsewhere),),
            (("x-openrouter-url", elsewhere),),
            (("upstream-url", elsewhere),),
            (("host", f"127.0.0.1:{decoy.port}"),),
            (("x-forwarded-host", f"127.0.0.1:{decoy.port}"),),
            (("x-original-url", elsewhere),),
            (("x-upstream-url", elsewhere), (BYOK, caller_key)),
        ]
        sent = 0
        for metadata in attempts:
            for stream in (False, True):
                outcome = chat(gateway, metadata, stream=stream)
                assert outcome.ok, f"{metadata}: {outcome.text}"
                sent += 1
        # :authority cannot be sent as metadata (gRPC refuses pseudo-headers); set it instead.
        authority = [("grpc.default_authority", f"127.0.0.1:{decoy.port}")]
        with open_channel(gateway.target, options=authority) as channel:
            assert rpc(pb.RouterServiceStub(channel).Chat, seed_request().proto).ok
            sent += 1
        assert len(upstream.requests()) == sent
        assert decoy.requests() == [], "nothing a caller sent moved a request elsewhere"
        listing = pb.ListEndpointsRequest(model="openai/../../../_emulator/requests")
        with open_channel(gateway.target) as channel:
            moved = rpc(pb.RouterServiceStub(channel).ListEndpoints, listing)
        assert moved.code == grpc.StatusCode.INVALID_ARGUMENT, moved.text
    finally:
        stop_process(decoy.process)
