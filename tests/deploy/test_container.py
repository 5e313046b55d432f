"""The image, built and run for real with podman: health, a chat, the drain on SIGTERM, compose.

Needs rootful podman and the base image, which ``scripts/setup-containers`` provides (``.ci/run``
calls it when CI is set). Where podman is missing these tests skip, naming what is missing;
in CI (or with ROUTERPC_CONTAINER_TESTS=1) they fail instead, so they cannot vanish unnoticed.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from deploy_support import (
    COMPOSE_FILE,
    GRPC_PORT,
    METRICS_PORT,
    compose_binary,
    free_port,
    run,
    tool_env,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from routerpc import ChatRequest, ChatRequestBuilder, ProviderConfig, Quantization, RouterClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

IMAGE = "localhost/routerpc:test"
BASE_IMAGE = "docker.io/library/python:3.11-slim"
REQUIRED = bool(os.environ.get("CI")) or os.environ.get("ROUTERPC_CONTAINER_TESTS") == "1"
READY_TIMEOUT_S = 60.0


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (required when CI or ROUTERPC_CONTAINER_TESTS=1 is set)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def podman() -> str:
    path = shutil.which("podman")
    if path is None:
        _unavailable("podman is not installed: run scripts/setup-containers as root")
        raise AssertionError("unreachable")
    if run([path, "image", "exists", BASE_IMAGE]).returncode != 0:
        _unavailable(f"base image {BASE_IMAGE} is missing: run scripts/setup-containers")
    return path


@pytest.fixture(scope="module")
def image(podman: str) -> str:
    """``podman build`` of the repository's Dockerfile (docker format keeps HEALTHCHECK)."""
    result = run([podman, "build", "--format", "docker", "-t", IMAGE, "."], timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return IMAGE


def seed_request() -> ChatRequest:
    """The README's seed request: builder first, routing preferences assigned afterwards."""
    request = ChatRequestBuilder().with_model("openai/gpt-4o").with_text("Hello!").build()
    request.provider = ProviderConfig(quantizations=[Quantization.FP8, Quantization.FP16])
    return request


def wait_serving(target: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll the gRPC health service until it answers SERVING."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as error:
                last = str(error.code()) if isinstance(error, grpc.Call) else repr(error)
            time.sleep(0.3)
    raise AssertionError(f"{target} not SERVING after {timeout_s}s: {last}")


def logs(podman: str, name: str) -> str:
    result = run([podman, "logs", name], timeout=30)
    return result.stdout + result.stderr


@dataclass
class Container:
    name: str
    port: int
    metrics_port: int


@pytest.fixture
def container(podman: str, image: str) -> Iterator[Container]:
    """The image run as Kubernetes runs it: read-only root, no capabilities, metrics on, no key."""
    name = f"routerpc-test-{secrets.token_hex(4)}"
    port, metrics_port = free_port(), free_port()
    result = run(
        [
            podman,
            "run",
            "-d",
            "--name",
            name,
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "-e",
            f"ROUTERPC_METRICS_PORT={METRICS_PORT}",
            "-p",
            f"127.0.0.1:{port}:{GRPC_PORT}",
            "-p",
            f"127.0.0.1:{metrics_port}:{METRICS_PORT}",
            image,
        ],
        timeout=60,
        env=tool_env(),
    )
    assert result.returncode == 0, result.stderr
    try:
        yield Container(name, port, metrics_port)
    finally:
        run([podman, "rm", "-f", "-t", "0", name], timeout=60)


def test_image_serves_chats_from_its_emulator_and_drains_on_sigterm(
    podman: str, container: Container
) -> None:
    name = container.name
    target = f"127.0.0.1:{container.port}"
    try:
        wait_serving(target)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{logs(podman, name)}") from None

    with RouterClient(target, timeout=30) as client:
        result = client.chat(seed_request())
    assert result.text == "Echo: Hello!"
    assert result.provider
    assert "no OPENROUTER_API_KEY set" in logs(podman, name)

    # Prometheus metrics work on the read-only root (the workers' metric files go to /tmp).
    metrics = httpx.get(f"http://127.0.0.1:{container.metrics_port}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "routerpc_" in metrics.text

    # The non-root user the image declares, and the image's own HEALTHCHECK.
    assert run([podman, "exec", name, "id", "-u"]).stdout.strip() == "10001"
    script = run([podman, "exec", name, "/opt/venv/bin/python", "/app/healthcheck.py"])
    assert script.returncode == 0, script.stderr
    check = run([podman, "healthcheck", "run", name], timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    inspect = run([podman, "inspect", "--format", "{{.Config.Healthcheck.Test}}", name])
    assert "/app/healthcheck.py" in inspect.stdout

    started = time.monotonic()
    stop = run([podman, "stop", "-t", "30", name], timeout=60)
    elapsed = time.monotonic() - started
    assert stop.returncode == 0, stop.stderr
    code = run([podman, "inspect", "--format", "{{.State.ExitCode}}", name]).stdout.strip()
    text = logs(podman, name)
    assert code == "0", text
    assert elapsed < 30, f"SIGTERM did not stop it; podman killed it after {elapsed:.0f}s"
    assert "draining" in text, text
    assert "stopped" in text, text


@pytest.fixture
def podman_service(podman: str) -> Iterator[str]:
    """``podman system service`` on a private socket: the Docker API that compose talks to."""
    directory = Path(tempfile.mkdtemp(prefix="routerpc-podman-"))
    socket_path = directory / "podman.sock"
    log = (directory / "service.log").open("wb")
    process = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{socket_path}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not socket_path.exists() and time.monotonic() < deadline:
            assert process.poll() is None, (directory / "service.log").read_text()
            time.sleep(0.1)
        assert socket_path.exists(), "podman system service did not create its socket"
        yield f"unix://{socket_path}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def test_compose_up_runs_the_offline_demo_through_the_emulator_service(
    podman: str, image: str, podman_service: str
) -> None:
    project = f"routerpc-test-{secrets.token_hex(4)}"
    port = free_port()
    env = tool_env(
        DOCKER_HOST=podman_service,
        DOCKER_BUILDKIT="0",  # podman has no BuildKit; compose would try to pull one
        ROUTERPC_IMAGE=image,
        ROUTERPC_PUBLISH_PORT=str(port),
    )
    compose: list[str | Path] = [compose_binary(), "-f", COMPOSE_FILE, "-p", project]
    try:
        up = run([*compose, "up", "-d", "--build"], timeout=600, env=env)
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        gateway, emulator = f"{project}-gateway-1", f"{project}-emulator-1"
        try:
            wait_serving(f"127.0.0.1:{port}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{logs(podman, gateway)}") from None

        with RouterClient(f"127.0.0.1:{port}", timeout=30) as client:
            result = client.chat(seed_request())
        assert result.text == "Echo: Hello!"

        # The chat went to the emulator service, not to an emulator inside the gateway.
        assert "serving from the upstream at http://emulator:8080/api/v1" in logs(podman, gateway)
        recorded = run(
            [
                podman,
                "exec",
                emulator,
                "/opt/venv/bin/python",
                "-c",
                "import urllib.request; print(urllib.request.urlopen("
                "'http://127.0.0.1:8080/_emulator/requests').read().decode())",
            ]
        )
        assert recorded.returncode == 0, recorded.stderr
        assert '"quantizations": ["fp8", "fp16"]' in recorded.stdout
        for name in (gateway, emulator):
            check = run([podman, "healthcheck", "run", name], timeout=60)
            assert check.returncode == 0, f"{name}: {check.stdout}{check.stderr}"
    finally:
        down = run([*compose, "down", "-t", "30"], timeout=120, env=env)
    assert down.returncode == 0, down.stderr
    left = run(
        [podman, "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"]
    )
    assert left.stdout.strip() == ""
