"""The canary sweep over the whole fault suite (collected last: ``zz``).

Two canaries: the gateways' OpenRouter key (``OPENROUTER_API_KEY``) and the suite's caller token
(in every gateway's environment as ``ROUTERPC_CANARY_CALLER_TOKEN``, and sent as
``authorization: Bearer`` on every call the suite made). Neither may appear in any gateway log the
suite's fixtures wrote, in any status message, error detail or trailing metadata a call received
(``caller.received``), or in any gateway's Prometheus metrics. The test also makes calls of its
own (successes, upstream faults, refused credentials, a refused caller key) so it means something
when run alone, and checks that both canaries were really in use.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import grpc
import httpx
import pytest
from faults_support import Caller, Canaries, Launcher
from gateway_e2e import Emulator, faulty, seed_request

pytestmark = pytest.mark.e2e

FAULTS = ("rate-limit", "server-error", "bad-gateway", "cut-stream", "garbage-json", "garbage-sse")


def _fragments(secret: str) -> list[str]:
    """The secret and its tail (what a truncated or partially masked echo would leave)."""
    return [secret, secret[-12:]]


def test_zz_canaries_appear_in_no_gateway_log_error_trailer_or_metrics(
    launcher: Launcher,
    canaries: Canaries,
    caller: Caller,
    emulator: Emulator,
) -> None:
    gateway = launcher.start(
        "canaries", "--max-attempts", "1", upstream_url=emulator.base_url, metrics=True
    )
    wrong_token = f"canary-token-{secrets.token_hex(12)}"
    stranger = Caller(wrong_token, received=caller.received)
    own_key = f"sk-or-v1-canary-{secrets.token_hex(16)}"

    emulator.clear()
    ok = caller.unary(gateway.target, seed_request().proto)
    assert ok.ok, f"the canary key or token is not accepted: {ok}"
    assert emulator.requests()[-1]["has_authorization"], "the key must be in use"
    # The emulator requires the canary key (--require-key): a success proves it was sent.
    assert caller.stream(gateway.target, seed_request().proto).ok
    for fault in FAULTS:
        assert not caller.unary(gateway.target, faulty(fault).proto).ok
        assert not caller.stream(gateway.target, faulty(fault).proto).ok
    # The token is load-bearing: without it, or with another one, the call is refused.
    refused = stranger.unary(gateway.target, seed_request().proto)
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED, str(refused)
    with grpc.insecure_channel(gateway.target) as channel:
        bare = caller.raw(channel, "/routerpc.v1.RouterService/ListModels", b"", timeout=5)
    assert bare.ok, "with the token a listing works"
    anonymous = Caller("", received=caller.received)
    nobody = anonymous.unary(gateway.target, seed_request().proto)
    assert nobody.code == grpc.StatusCode.UNAUTHENTICATED, str(nobody)
    # A caller key the caller may not send (no byok in the callers file) is refused, not echoed.
    byok = caller.unary_with(
        gateway.target, seed_request().proto, (("x-openrouter-api-key", own_key),)
    )
    assert byok.code == grpc.StatusCode.PERMISSION_DENIED, str(byok)

    secrets_ = [*canaries.all, wrong_token, own_key]
    needles = [fragment for secret in secrets_ for fragment in _fragments(secret)]

    received = "\n".join(caller.received)
    assert len(caller.received) >= 2 * len(FAULTS) + 5, "the sweep must have material"
    assert [n for n in needles if n in received] == [], "a caller received a secret"

    logs: list[Path] = [launched.gateway.log_path for launched in launcher.launched]
    scanned = 0
    for log in logs:
        text = log.read_text(errors="replace")
        assert "routerpc listening on" in text, f"{log} is not a gateway's log"
        leaked = [n for n in needles if n in text]
        assert leaked == [], f"{log} holds a secret (fragment)"
        scanned += 1
    own_log = gateway.log_text()
    assert " DEBUG " in own_log, "debug logging must be on for the sweep to mean much"
    assert "routerpc.access" in own_log

    metrics_scraped = 0
    for launched in launcher.launched:
        if launched.metrics_port is None or launched.gateway.process.poll() is not None:
            continue
        reply = httpx.get(f"http://127.0.0.1:{launched.metrics_port}/metrics", timeout=5)
        assert reply.status_code == 200
        assert "routerpc_rpcs_total" in reply.text
        assert [n for n in needles if n in reply.text] == [], "metrics hold a secret"
        metrics_scraped += 1
    assert metrics_scraped >= 1
    print(
        f"canary sweep: {scanned} gateway logs, {len(caller.received)} received statuses/"
        f"trailers, {metrics_scraped} metrics endpoints: no hits"
    )
