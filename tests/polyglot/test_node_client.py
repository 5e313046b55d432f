"""Polyglot end to end: a Node.js gRPC client (``chat_client.js``) talks to a real gateway.

The client is built at run time from the repo's ``.proto`` files with ``@grpc/proto-loader``, so
this proves the contract (including the buf.validate options and google.protobuf.Struct imports)
is usable outside Python. Processes: ``python -m routerpc_emulator`` on a free port, then
``routerpc serve --host 127.0.0.1 --port 0 --upstream-url <emulator>/api/v1`` with a test key,
then ``node tests/polyglot/chat_client.js 127.0.0.1:<port>``. Every wait is bounded and every
process is stopped with SIGTERM (killed only if it outlives its bounded wait).

Needs ``node`` and ``tests/polyglot/node_modules`` (``npm ci --prefix tests/polyglot``). Without
them the e2e test is skipped locally but FAILS when the ``CI`` environment variable is set, so a
CI job that forgot the install step cannot pass silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

POLYGLOT_DIR = Path(__file__).resolve().parent
REPO_ROOT = POLYGLOT_DIR.parents[1]
CLIENT_JS = POLYGLOT_DIR / "chat_client.js"
NODE_PACKAGES = ("@grpc/grpc-js", "@grpc/proto-loader")
INSTALL_HINT = "run `npm ci --prefix tests/polyglot`"

BIN = Path(sys.executable).parent
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
ROUTERPC = str(BIN / "routerpc")

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
NODE_TIMEOUT_S = 60.0

EMULATOR_LISTENING = re.compile(r"emulator listening on http://127\.0\.0\.1:(\d+)/api/v1")
GATEWAY_LISTENING = re.compile(r"routerpc listening on 127\.0\.0\.1:(\d+)")

USER_TEXT = "Hello from Node"
# The emulator answers "Echo: <last user text>" (routerpc_emulator.responses.echo_answer).
EXPECTED_TEXT = f"Echo: {USER_TEXT}"
MODEL = "openai/gpt-4o"
TEST_KEY = "sk-or-v1-polyglot-test-key"


# Node toolchain ------------------------------------------------------------------------------


def _ci() -> bool:
    return bool(os.environ.get("CI"))


def _missing_node_toolchain() -> str | None:
    """Why the Node client cannot run, or None when node and the pinned packages are there."""
    node = shutil.which("node")
    if node is None:
        return "`node` is not on PATH"
    pins = json.loads((POLYGLOT_DIR / "package.json").read_text())["dependencies"]
    for name in NODE_PACKAGES:
        manifest = POLYGLOT_DIR / "node_modules" / name / "package.json"
        if not manifest.is_file():
            return f"tests/polyglot/node_modules has no {name}"
        installed = json.loads(manifest.read_text()).get("version")
        if installed != pins[name]:
            return f"node_modules has {name} {installed} but package.json pins {pins[name]}"
    return None


def require_node() -> str:
    """The ``node`` executable; otherwise skip, or fail when ``CI`` is set (never skip in CI)."""
    problem = _missing_node_toolchain()
    if problem is not None:
        message = f"Node.js polyglot client unavailable ({problem}): {INSTALL_HINT}"
        if _ci():
            pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)
    node = shutil.which("node")
    assert node is not None
    return node


# Processes -----------------------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment minus anything that could configure a gateway behind the test's back."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ROUTERPC_") and k not in ("OPENROUTER_API_KEY", "GRPC_VERBOSITY")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


Popen = subprocess.Popen[bytes]


def _stop(process: Popen) -> None:
    """SIGTERM, a bounded wait, then SIGKILL (and another bounded wait) if still running."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def _process(command: list[str], log_path: Path, env: dict[str, str]) -> Iterator[Popen]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
        )
    try:
        yield process
    finally:
        _stop(process)


def _wait_for_port(process: Popen, log_path: Path, pattern: re.Pattern[str], what: str) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        match = pattern.search(log_path.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"{what} never logged its port (exit code {process.poll()}); output:\n"
                + log_path.read_text(errors="replace")
            )
        time.sleep(0.05)


@dataclass
class Stack:
    emulator_origin: str
    target: str
    gateway_log: Path

    def recorded_chat_bodies(self) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.emulator_origin}/_emulator/requests", timeout=5)
        reply.raise_for_status()
        entries: list[dict[str, Any]] = reply.json()["data"]
        return [e["body"] for e in entries if e["path"] == "/api/v1/chat/completions"]


@contextmanager
def running_stack(tmp_path: Path) -> Iterator[Stack]:
    """Emulator (port 0: the OS picks a free port, read back from its log), then the gateway.

    A context manager rather than a fixture so the test checks for Node first (a missing
    toolchain is then a test failure in CI, not a setup error) and starts nothing it won't use.
    """
    emulator_log = tmp_path / "emulator.log"
    emulator_cmd = [PYTHON, "-m", "routerpc_emulator", "--host", "127.0.0.1", "--port", "0"]
    with _process(emulator_cmd, emulator_log, _clean_env()) as emulator:
        port = _wait_for_port(emulator, emulator_log, EMULATOR_LISTENING, "emulator")
        origin = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{origin}/_emulator/health", timeout=5).status_code == 200

        gateway_log = tmp_path / "gateway.log"
        gateway_cmd = [ROUTERPC, "serve", "--host", "127.0.0.1", "--port", "0"]
        gateway_cmd += ["--upstream-url", f"{origin}/api/v1"]
        env = _clean_env(OPENROUTER_API_KEY=TEST_KEY)
        with _process(gateway_cmd, gateway_log, env) as gateway:
            gateway_port = _wait_for_port(gateway, gateway_log, GATEWAY_LISTENING, "gateway")
            yield Stack(origin, f"127.0.0.1:{gateway_port}", gateway_log)


def _run_client(node: str, target: str) -> list[dict[str, Any]]:
    try:
        result = subprocess.run(
            [node, str(CLIENT_JS), target],
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT_S,
            cwd=REPO_ROOT,
            env=_clean_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has already killed it
        raise AssertionError(
            f"node client did not finish in {NODE_TIMEOUT_S}s; stderr:\n{exc.stderr!r}"
        ) from exc
    assert result.returncode == 0, (
        f"node client exited {result.returncode}\nstderr:\n{result.stderr}\n"
        f"stdout:\n{result.stdout}"
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# Tests ---------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_node_client_chat_and_stream_chat(tmp_path: Path) -> None:
    node = require_node()
    with running_stack(tmp_path) as stack:
        lines = _run_client(node, stack.target)
        bodies = stack.recorded_chat_bodies()
        gateway_log = stack.gateway_log.read_text(errors="replace")

    chats = [line["response"] for line in lines if line["rpc"] == "Chat"]
    assert len(chats) == 1, lines
    response = chats[0]
    assert response["choices"][0]["message"]["content"] == EXPECTED_TEXT, response
    assert response["provider"], response
    assert response["model"] == MODEL, response

    chunks = [line for line in lines if line["rpc"] == "StreamChat" and "index" in line]
    summary = [line for line in lines if line["rpc"] == "StreamChat" and line.get("done")]
    assert chunks, lines
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    assert "".join(c["text"] for c in chunks) == EXPECTED_TEXT, chunks
    assert summary == [
        {"rpc": "StreamChat", "done": True, "chunks": len(chunks), "text": EXPECTED_TEXT}
    ]

    assert len(bodies) == 2, bodies  # Chat, then StreamChat
    for body in bodies:
        assert body["model"] == MODEL, body
        assert body["provider"] == {"quantizations": ["fp8"]}, body
        assert body["messages"] == [{"role": "user", "content": USER_TEXT}], body
    assert "stream" not in bodies[0] or bodies[0]["stream"] is False, bodies[0]
    assert bodies[1].get("stream") is True, bodies[1]
    assert TEST_KEY not in gateway_log


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [("true", pytest.fail.Exception), (None, pytest.skip.Exception)],
    ids=["ci-fails", "local-skips"],
)
def test_missing_node_fails_in_ci_and_skips_locally(
    monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name, *a, **k: None)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=re.escape(INSTALL_HINT)):
        require_node()
