"""Fixtures for the fault suite (issue 7): real emulator and gateway processes on 127.0.0.1.

The process helpers are tests/gateway/gateway_e2e.py's (that directory is put on ``sys.path``
here). Every gateway started here

* runs one process (``--workers 1``, so ``gateway.process.pid`` is the process serving, whose
  /proc entries the leak checks read), stops without a drain delay;
* holds the canary API key (``OPENROUTER_API_KEY``) and has the canary caller token in its
  environment (``ROUTERPC_CANARY_CALLER_TOKEN``), logs at debug level to its own file;
* requires authentication: a callers file names one caller whose only credential is the canary
  token (stored as its SHA-256, as operators do). Every call the suite makes sends
  ``authorization: Bearer <canary token>``, so the token is load-bearing, not decorative.

The emulators require the canary key (``--require-key``), so every upstream request the suite
causes proves the key was really sent. ``test_faults_zz_canaries.py`` (collected last) then
greps every gateway log, every status/trailer a call received and every gateway's metrics for
both canaries. Every wait here is bounded.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_GATEWAY_TESTS = Path(__file__).resolve().parents[1] / "gateway"
if str(_GATEWAY_TESTS) not in sys.path:
    sys.path.insert(0, str(_GATEWAY_TESTS))

from faults_support import Caller, Canaries, Launcher, RawUpstream  # noqa: E402
from gateway_e2e import (  # noqa: E402
    Emulator,
    Gateway,
    launch_emulator,
    stop_process,
)

from routerpc_gateway.callers import hash_token  # noqa: E402

UPSTREAM_CLIENTS = ["aiohttp", "httpx", "httpx-aiohttp"]
STREAM_DELAY_MS = 200
"""The slow emulator's pause between streamed events: streams long enough to cancel midway."""


@pytest.fixture(scope="session")
def faults_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults-e2e")


@pytest.fixture(scope="session")
def canaries() -> Canaries:
    # Shapes the suite-wide log guard (tests/leakscan.py) also recognises.
    return Canaries(
        key=f"sk-or-v1-canary-{secrets.token_hex(16)}",
        token=f"canary-token-{secrets.token_hex(12)}",
    )


@pytest.fixture(scope="session")
def callers_file(faults_dir: Path, canaries: Canaries) -> Path:
    path = faults_dir / "callers.yaml"
    path.write_text(
        "require_auth: true\n"
        "callers:\n"
        "  fault-suite:\n"
        f"    token_sha256: ['{hash_token(canaries.token)}']\n"
    )
    return path


@pytest.fixture(scope="session")
def caller(canaries: Canaries) -> Caller:
    """The suite's one caller; ``caller.received`` holds what every call returned."""
    return Caller(canaries.token)


@pytest.fixture(scope="session")
def launcher(faults_dir: Path, canaries: Canaries, callers_file: Path) -> Iterator[Launcher]:
    """Session gateways: stopped (SIGTERM, bounded) when the session ends."""
    launch = Launcher(faults_dir, canaries, callers_file)
    yield launch
    for started in launch.launched:
        stop_process(started.gateway.process)


@pytest.fixture
def start_gateway(launcher: Launcher) -> Iterator[Callable[..., Gateway]]:
    """Gateways for one test, stopped when it ends (their logs stay for the canary sweep)."""
    mine: list[Gateway] = []

    def start(name: str, *args: str, **kwargs: Any) -> Gateway:
        gateway = launcher.start(name, *args, **kwargs)
        mine.append(gateway)
        return gateway

    yield start
    for gateway in mine:
        stop_process(gateway.process)


@pytest.fixture(scope="session")
def emulator(faults_dir: Path, canaries: Canaries) -> Iterator[Emulator]:
    emu = launch_emulator(faults_dir / "emulator.log", "--require-key", canaries.key)
    try:
        yield emu
    finally:
        stop_process(emu.process)


@pytest.fixture(scope="session")
def slow_emulator(faults_dir: Path, canaries: Canaries) -> Iterator[Emulator]:
    """Streams pause ``STREAM_DELAY_MS`` between events."""
    emu = launch_emulator(
        faults_dir / "emulator-slow.log",
        "--require-key",
        canaries.key,
        "--stream-delay-ms",
        str(STREAM_DELAY_MS),
    )
    try:
        yield emu
    finally:
        stop_process(emu.process)


@pytest.fixture
def upstream(emulator: Emulator) -> Emulator:
    """The shared emulator with its request log and ``fail-first-<n>`` counters cleared."""
    emulator.clear()
    return emulator


@pytest.fixture(scope="session")
def raw_upstream() -> Iterator[RawUpstream]:
    raw = RawUpstream()
    raw.start()
    try:
        yield raw
    finally:
        raw.stop()


@pytest.fixture(scope="session", params=UPSTREAM_CLIENTS)
def upstream_client(request: pytest.FixtureRequest) -> str:
    client: str = request.param
    return client


@pytest.fixture(scope="session")
def gateway(launcher: Launcher, emulator: Emulator, upstream_client: str) -> Gateway:
    """One attempt per call, upstream replies capped at 1 MiB, metrics on."""
    return launcher.start(
        "single",
        "--max-attempts",
        "1",
        "--max-upstream-response-bytes",
        str(1024 * 1024),
        upstream_url=emulator.base_url,
        client=upstream_client,
        metrics=True,
    )


@pytest.fixture(scope="session")
def retrying_gateway(launcher: Launcher, emulator: Emulator, upstream_client: str) -> Gateway:
    """Default attempts (3); a short backoff and a generous budget so that the budget, shared by
    every test using this gateway, never decides an attempt count here (it has its own test in
    tests/gateway)."""
    return launcher.start(
        "retrying",
        "--retry-base-delay",
        "0.02",
        "--retry-budget-ratio",
        "1",
        upstream_url=emulator.base_url,
        client=upstream_client,
    )


@pytest.fixture(scope="session")
def raw_gateway(launcher: Launcher, raw_upstream: RawUpstream, upstream_client: str) -> Gateway:
    """In front of the raw TCP upstream: one attempt, replies capped at 1 MiB."""
    return launcher.start(
        "raw",
        "--max-attempts",
        "1",
        "--max-upstream-response-bytes",
        str(1024 * 1024),
        upstream_url=raw_upstream.base_url,
        client=upstream_client,
    )


@pytest.fixture(scope="session")
def raw_retrying_gateway(
    launcher: Launcher, raw_upstream: RawUpstream, upstream_client: str
) -> Gateway:
    """In front of the raw TCP upstream with the default attempts (3)."""
    return launcher.start(
        "raw-retrying",
        "--retry-base-delay",
        "0.02",
        "--retry-budget-ratio",
        "1",
        upstream_url=raw_upstream.base_url,
        client=upstream_client,
    )
