"""The README's commands work as written: the demo script, grpcurl via reflection, the CLI."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gateway_e2e import Gateway, clean_env, free_port, stop_process

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _readme_grpcurl_commands() -> list[list[str]]:
    """The grpcurl commands of the README's shell blocks, as argument lists."""
    readme = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.S):
        # A command runs on over continuation lines and quoted newlines until the next one.
        for chunk in re.split(r"\n(?=\S)", block.replace("\\\n", " ")):
            if chunk.startswith("grpcurl"):
                commands.append(shlex.split(chunk))
    return commands


def test_demo_script_runs_the_gateway_on_the_emulator_and_chats_through_it() -> None:
    env = clean_env(
        ROUTERPC_DEMO_ONCE="1",
        ROUTERPC_SKIP_INSTALL="1",
        ROUTERPC_VENV=str(Path(sys.prefix)),
        ROUTERPC_PORT=str(free_port()),
    )
    env.pop("OPENROUTER_API_KEY", None)
    result = subprocess.run(
        ["bash", "scripts/demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "built-in OpenRouter emulator" in lines[0]
    assert "Echo: Hello!" in lines
    assert any(line.startswith("-- served by ") and "cost $" in line for line in lines)
    assert any(line.split()[:2] == ["PROVIDER", "QUANT"] for line in lines)


def test_readme_grpcurl_commands_work_through_reflection(gateway: Gateway) -> None:
    commands = _readme_grpcurl_commands()
    assert len(commands) == 2, commands
    for written in commands:
        command = [gateway.target if arg == "127.0.0.1:50051" else arg for arg in written]
        command[0] = str(BIN / "grpcurl")
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        if command[-1] == "list":
            assert "routerpc.v1.RouterService" in result.stdout.split()
        else:
            reply = json.loads(result.stdout)
            assert reply["choices"][0]["message"]["content"] == "Echo: Hello!"
            assert reply["provider"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["models"], ["MODEL", "CONTEXT", "QUANTIZATIONS"]),
        (["endpoints", "openai/gpt-4o"], ["PROVIDER", "QUANT", "$/M", "IN"]),
    ],
)
def test_listing_commands_print_a_table(
    gateway: Gateway, args: list[str], expected: list[str]
) -> None:
    result = subprocess.run(
        [str(BIN / "routerpc"), *args, "--target", gateway.target],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[: len(expected)] == expected
    assert rows
    if args[0] == "endpoints":
        assert {row.split()[1] for row in rows} >= {"fp8", "fp16"}
    else:
        gpt4o = next(row for row in rows if row.startswith("openai/gpt-4o "))
        assert "fp8" in gpt4o.split()[-1].split(",")


def test_listing_commands_fail_with_one_line_when_nothing_listens() -> None:
    result = subprocess.run(
        [str(BIN / "routerpc"), "models", "--target", f"127.0.0.1:{free_port()}", "--timeout", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        check=False,
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("routerpc: UNAVAILABLE")
    assert os.environ.get("OPENROUTER_API_KEY", "\0") not in result.stderr


def test_routerpc_emulator_command_serves_the_openrouter_api() -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "routerpc"), "emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        models = None
        for _ in range(100):
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/api/v1/models", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert models is not None
        assert models.status_code == 200
        assert "openai/gpt-4o" in {m["id"] for m in models.json()["data"]}
    finally:
        assert stop_process(process) == 0
