"""SIGHUP re-reads the callers file; a file that fails validation leaves the previous one in force.

With ``--workers 2`` the signal goes to the master, which forwards it to every worker: the test
waits until the log shows one "callers file reloaded" per worker before judging the tokens.
Each judgement uses several fresh connections so that, with two workers, both are asked.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, seed_request
from security_support import Creds, bearer, open_channel, rpc, wait_for, write_yaml

from routerpc import pb

pytestmark = pytest.mark.e2e

CONNECTIONS = 6


def codes(gateway: Gateway, token: str) -> set[grpc.StatusCode]:
    found = set()
    for _ in range(CONNECTIONS):
        with open_channel(gateway.target) as channel:
            stub = pb.RouterServiceStub(channel)
            found.add(rpc(stub.Chat, seed_request().proto, metadata=bearer(token), timeout=10).code)
    return found


def hangup(gateway: Gateway, marker: str, expected: int) -> None:
    before = gateway.log_text().count(marker)
    os.kill(gateway.process.pid, signal.SIGHUP)
    assert wait_for(lambda: gateway.log_text().count(marker) >= before + expected, 15), (
        f"expected {expected} more {marker!r} lines:\n{gateway.log_text()}"
    )
    assert gateway.process.poll() is None, "SIGHUP must not stop the gateway"


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_swaps_tokens_and_a_bad_file_keeps_the_last_good_one(
    workers: int,
    start_gateway: Callable[..., Gateway],
    upstream: Emulator,
    creds: Creds,
    tmp_path: Path,
) -> None:
    gateway_key, tokens, digests = creds.gateway_key, creds.tokens, creds.digests
    path = tmp_path / "callers.yaml"
    write_yaml(path, {"callers": {"team": {"token_sha256": [digests["alpha"]]}}})
    gateway = start_gateway(
        f"reload-{workers}-workers",
        "--callers-file",
        str(path),
        "--workers",
        str(workers),
        upstream_url=upstream.base_url,
        key=gateway_key,
    )
    alpha, beta = tokens["alpha"], tokens["beta"]
    assert codes(gateway, alpha) == {grpc.StatusCode.OK}
    assert codes(gateway, beta) == {grpc.StatusCode.UNAUTHENTICATED}

    write_yaml(path, {"callers": {"team": {"token_sha256": [digests["beta"]]}}})
    hangup(gateway, "callers file reloaded", workers)
    assert codes(gateway, alpha) == {grpc.StatusCode.UNAUTHENTICATED}
    assert codes(gateway, beta) == {grpc.StatusCode.OK}

    path.write_text("callers:\n  team:\n    token_sha256: [not-a-digest]\n")
    hangup(gateway, "not reloaded", workers)
    assert codes(gateway, beta) == {grpc.StatusCode.OK}
    assert codes(gateway, alpha) == {grpc.StatusCode.UNAUTHENTICATED}

    path.write_text("callers: [\n")  # not even YAML
    hangup(gateway, "not reloaded", workers)
    assert codes(gateway, beta) == {grpc.StatusCode.OK}

    log = gateway.log_text()
    assert log.count("callers file reloaded") == workers
    assert "Traceback" not in log
