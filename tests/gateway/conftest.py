"""End-to-end fixtures: real emulator and gateway processes, a real gRPC channel, 127.0.0.1 only.

Session-scoped (shared, to keep the suite fast):

* ``emulator``: ``python -m routerpc_emulator`` as a subprocess, ready once
  ``GET /_emulator/health`` answers 200;
* ``gateway``: ``routerpc serve --host 127.0.0.1 --port 0 --upstream-url <emulator>/api/v1`` with
  ``OPENROUTER_API_KEY`` set to a random canary, ready once it logs ``routerpc listening on``;
  its stderr goes to a file (``gateway.log_text()``);
* ``received_errors``: every error text a test received, for the secrets test to scan.

Factories (``start_emulator``, ``start_gateway``) start extra processes for one test and stop
them afterwards. Every process is stopped with SIGTERM and killed after a bounded wait; every
wait in here is bounded.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from gateway_e2e import (
    Emulator,
    Gateway,
    RecordingUpstream,
    describe_error,
    launch_emulator,
    launch_gateway,
    single_attempt_gateway,
    stop_process,
)
from h2_upstream import H2Upstream

from routerpc import RouterClient


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-e2e")


@pytest.fixture(scope="session")
def canary_key() -> str:
    """A key that must never be seen anywhere but in the upstream's Authorization header."""
    return f"sk-or-v1-canary-{secrets.token_hex(16)}"


@pytest.fixture(scope="session")
def emulator(logs_dir: Path) -> Iterator[Emulator]:
    emu = launch_emulator(logs_dir / "emulator.log")
    try:
        yield emu
    finally:
        stop_process(emu.process)


UPSTREAM_CLIENTS = ["aiohttp", "httpx", "httpx-aiohttp"]
"""Every upstream client must give the same guarantees: the shared gateways run each in turn.
``httpx-http2`` needs an HTTP/2 upstream (the emulator speaks HTTP/1.1 only): its end-to-end
tests are in test_gateway_http2.py, against tests/gateway/h2_upstream.py."""


@pytest.fixture(scope="session", params=UPSTREAM_CLIENTS)
def upstream_client(request: pytest.FixtureRequest) -> str:
    client: str = request.param
    return client


@pytest.fixture(scope="session")
def gateway(
    logs_dir: Path, emulator: Emulator, canary_key: str, upstream_client: str
) -> Iterator[Gateway]:
    # One attempt per call, so each error test sees exactly one upstream exchange; retries have
    # their own gateways in test_gateway_retries.py.
    with single_attempt_gateway(
        logs_dir / f"gateway-{upstream_client}.log", upstream_client, emulator.base_url, canary_key
    ) as gw:
        yield gw


@pytest.fixture(scope="session")
def recording_upstream() -> Iterator[RecordingUpstream]:
    with RecordingUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="session")
def recorded_gateway(
    logs_dir: Path, recording_upstream: RecordingUpstream, canary_key: str, upstream_client: str
) -> Iterator[Gateway]:
    """A second gateway process whose upstream is the in-test recording server."""
    with single_attempt_gateway(
        logs_dir / f"recorded-gateway-{upstream_client}.log",
        upstream_client,
        recording_upstream.base_url,
        canary_key,
    ) as gw:
        yield gw


@pytest.fixture(scope="module")
def h2_upstream() -> Iterator[H2Upstream]:
    """The HTTP/2 test upstream (``h2_upstream.py``), one per test module that asks for it."""
    with H2Upstream() as server:
        yield server


@pytest.fixture
def recorder(recording_upstream: RecordingUpstream) -> RecordingUpstream:
    recording_upstream.clear()
    return recording_upstream


@pytest.fixture
def upstream(emulator: Emulator) -> Emulator:
    """The shared emulator with its request log cleared for this test."""
    emulator.clear()
    return emulator


@pytest.fixture(scope="session")
def received_errors() -> list[str]:
    return []


@pytest.fixture
def expect_error(
    received_errors: list[str],
) -> Callable[[type[BaseException]], contextlib.AbstractContextManager[Any]]:
    """``with expect_error(NotFoundError) as info: ...``: pytest.raises that also records the
    error's full text for the secrets test."""

    @contextlib.contextmanager
    def expect(kind: type[BaseException]) -> Iterator[Any]:
        with pytest.raises(kind) as info:
            yield info
        received_errors.append(describe_error(info.value))

    return expect


@pytest.fixture
def client(gateway: Gateway) -> Iterator[RouterClient]:
    """A blocking client that sends exactly what it is given: no local validation, no retries
    (so one call is one upstream request)."""
    with RouterClient(
        gateway.target, timeout=15, validate=False, retry_unavailable=False
    ) as router:
        yield router


@pytest.fixture
def channel(gateway: Gateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.target) as chan:
        yield chan


@pytest.fixture
def start_gateway(logs_dir: Path) -> Iterator[Callable[..., Gateway]]:
    """Start extra gateways for one test; each is stopped (SIGTERM, bounded) afterwards."""
    started: list[Gateway] = []

    def start(name: str, *args: str, **kwargs: Any) -> Gateway:
        gw = launch_gateway(logs_dir / f"{name}.log", *args, **kwargs)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        stop_process(gw.process)


@pytest.fixture
def start_emulator(logs_dir: Path) -> Iterator[Callable[..., Emulator]]:
    """Start extra emulators for one test; each is stopped (SIGTERM, bounded) afterwards."""
    started: list[Emulator] = []

    def start(name: str, *args: str) -> Emulator:
        emu = launch_emulator(logs_dir / f"{name}.log", *args)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        stop_process(emu.process)
