"""``python -m routerpc_emulator`` as a real process: serves, then exits 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from emulator_test_support import EMULATOR_SRC, chat_body

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_log_line(process: subprocess.Popen[str], needle: str, timeout_s: float) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if needle in line:
            return line.strip()
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"emulator never logged {needle!r} (exit code {process.poll()})")


def test_module_entry_point_serves_requests_and_exits_zero_on_sigterm() -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(EMULATOR_SRC), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "routerpc_emulator", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = wait_for_log_line(process, "emulator listening on", timeout_s=20)
        assert line == f"emulator listening on http://127.0.0.1:{port}/api/v1"
        base_url = f"http://127.0.0.1:{port}/api/v1"
        response = httpx.post(f"{base_url}/chat/completions", json=chat_body(), timeout=10)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"].startswith("Echo: ")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
