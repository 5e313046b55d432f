"""Fixtures for the security end-to-end tests: real emulator and gateway processes on 127.0.0.1.

The process helpers are tests/gateway/gateway_e2e.py's (that directory is put on ``sys.path``
here). Every gateway these fixtures start runs one process unless a test asks for more, stops
without a drain delay, and has its log scanned for every secret of the session when it stops
(tokens, the gateway's key, BYOK keys): a hit fails the test that started it. Secrets are
canaries (``canary-token-...``, ``sk-or-v1-canary-...``) so the suite-wide log guard in
tests/conftest.py recognises them too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_GATEWAY_TESTS = Path(__file__).resolve().parents[1] / "gateway"
if str(_GATEWAY_TESTS) not in sys.path:
    sys.path.insert(0, str(_GATEWAY_TESTS))

from gateway_e2e import (  # noqa: E402
    Emulator,
    Gateway,
    launch_emulator,
    launch_gateway,
    stop_process,
)
from security_support import (  # noqa: E402
    Creds,
    assert_log_clean,
    canary_key,
    canary_token,
    hash_tokens,
)

from routerpc_gateway.callers import hash_token  # noqa: E402

TOKEN_NAMES = (
    "alpha",
    "beta",
    "policy-defaults",
    "policy-reject",
    "policy-narrow",
    "byok",
    "no-byok",
    "mtls-token",
)
CLI_HASHED = ("alpha", "beta")


@pytest.fixture(scope="session")
def sec_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security-e2e")


@pytest.fixture(scope="session")
def gateway_key() -> str:
    """The key every gateway here holds; never to be seen by a caller or in a log."""
    return canary_key()


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    return {name: canary_token() for name in TOKEN_NAMES}


@pytest.fixture(scope="session")
def digests(tokens: dict[str, str]) -> dict[str, str]:
    """Each token's ``token_sha256`` entry. The first two come from ``routerpc hash-token``, as an
    operator would produce them; the command is slow to start, so the rest are computed the same
    way in-process once the command's output is shown to match."""
    by_cli = dict(zip(CLI_HASHED, hash_tokens(*(tokens[n] for n in CLI_HASHED)), strict=True))
    for name, digest in by_cli.items():
        assert digest == hash_token(tokens[name]), "routerpc hash-token is plain SHA-256 hex"
    return {name: by_cli.get(name) or hash_token(token) for name, token in tokens.items()}


@pytest.fixture(scope="session")
def creds(gateway_key: str, tokens: dict[str, str], digests: dict[str, str]) -> Creds:
    return Creds(gateway_key, tokens, digests)


@pytest.fixture(scope="session")
def emulator(sec_logs: Path) -> Iterator[Emulator]:
    emu = launch_emulator(sec_logs / "emulator.log")
    try:
        yield emu
    finally:
        stop_process(emu.process)


@pytest.fixture
def upstream(emulator: Emulator) -> Emulator:
    """The shared emulator with its request log cleared for this test."""
    emulator.clear()
    return emulator


def start(log_path: Path, *args: str, **kwargs: Any) -> Gateway:
    """``routerpc serve`` with quick-stop defaults the test can override."""
    defaults = {
        "--workers": "1",
        "--drain-delay": "0",
        "--grace-period": "2",
        "--max-attempts": "1",
    }
    extra = [item for flag, value in defaults.items() if flag not in args for item in (flag, value)]
    return launch_gateway(log_path, *args, *extra, **kwargs)


class Gateways:
    """Starts gateways; ``close()`` stops them and checks each log for secrets."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self.started: list[Gateway] = []

    def __call__(self, name: str, *args: str, **kwargs: Any) -> Gateway:
        gateway = start(self._logs / f"{name}.log", *args, **kwargs)
        self.started.append(gateway)
        return gateway

    def close(self) -> None:
        for gateway in self.started:
            stop_process(gateway.process)
        for gateway in self.started:
            assert_log_clean(gateway)


@pytest.fixture
def start_gateway(sec_logs: Path) -> Iterator[Callable[..., Gateway]]:
    gateways = Gateways(sec_logs)
    yield gateways
    gateways.close()


@pytest.fixture(scope="module")
def module_gateways(sec_logs: Path) -> Iterator[Gateways]:
    gateways = Gateways(sec_logs)
    yield gateways
    gateways.close()
