"""deploy/healthcheck.py (the image's HEALTHCHECK) against a real gRPC health service.

Runs without any container engine: the script is run by this venv's Python, as the image runs
it with /opt/venv/bin/python.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest
from aiohttp import web
from deploy_support import BIN, DEPLOY, free_port, run
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SCRIPT = DEPLOY / "healthcheck.py"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class HealthServer:
    servicer: health.HealthServicer
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def health_server() -> Iterator[HealthServer]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield HealthServer(servicer, port)
    finally:
        server.stop(None)


def _check(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = run([sys.executable, SCRIPT, *args], timeout=30, env=env)
    return result.returncode, result.stderr


def test_serving_target_passes(health_server: HealthServer) -> None:
    health_server.servicer.set("", SERVING)
    assert _check(health_server.target) == (0, "")


def test_default_target_is_loopback_on_routerpc_port(health_server: HealthServer) -> None:
    health_server.servicer.set("", SERVING)
    code, _ = _check(env={"ROUTERPC_PORT": str(health_server.port), "PATH": "/usr/bin:/bin"})
    assert code == 0


def test_draining_target_fails(health_server: HealthServer) -> None:
    health_server.servicer.set("", SERVING)
    health_server.servicer.enter_graceful_shutdown()
    code, stderr = _check(health_server.target)
    assert code == 1
    assert "NOT_SERVING" in stderr


def test_named_service(health_server: HealthServer) -> None:
    health_server.servicer.set("routerpc.v1.RouterService", SERVING)
    assert _check(health_server.target, "--service=routerpc.v1.RouterService")[0] == 0
    code, stderr = _check(health_server.target, "--service=other.Service")
    assert code == 1
    assert "NOT_FOUND" in stderr


def test_unreachable_target_fails_within_the_timeout() -> None:
    code, stderr = _check(f"127.0.0.1:{free_port()}")
    assert code == 1
    assert "UNAVAILABLE" in stderr or "DEADLINE_EXCEEDED" in stderr


def test_unknown_option_is_a_usage_error() -> None:
    assert _check("--bogus")[0] == 2


async def test_http_mode_checks_the_emulator_health_url() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({}, status=503)

    app = web.Application()
    app.router.add_get("/_emulator/health", ok)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        good = await asyncio.to_thread(_check, f"--http=http://127.0.0.1:{port}/_emulator/health")
        bad = await asyncio.to_thread(_check, f"--http=http://127.0.0.1:{port}/broken")
    finally:
        await runner.cleanup()
    assert good == (0, "")
    assert bad[0] == 1


def test_healthcheck_script_passes_strict_mypy_and_ruff() -> None:
    """deploy/ is outside the suite's package-wide lint paths, so its one script is checked here."""
    mypy = run([sys.executable, "-m", "mypy", "--strict", SCRIPT], timeout=300)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    ruff = BIN / "ruff"
    for args in (["check"], ["format", "--check"]):
        result = run([ruff, *args, DEPLOY])
        assert result.returncode == 0, result.stdout + result.stderr
