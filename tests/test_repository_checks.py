"""Repository-wide gates run inside the suite: proto lint and format, codegen drift, ruff, mypy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_buf_lint_passes() -> None:
    result = _run(str(BIN / "buf"), "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_format_leaves_our_protos_unchanged() -> None:
    result = _run(str(BIN / "buf"), "format", "-d", "--path", "proto/routerpc")
    assert result.returncode == 0 and not result.stdout, result.stdout + result.stderr


def test_committed_generated_code_matches_a_fresh_generation() -> None:
    result = _run(sys.executable, "scripts/generate.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("command", [("check",), ("format", "--check")])
def test_ruff_is_clean(command: tuple[str, ...]) -> None:
    result = _run(str(BIN / "ruff"), *command, "client/routerpc", "service", "emulator", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_hand_written_code() -> None:
    result = _run(
        sys.executable,
        "-m",
        "mypy",
        "client/routerpc",
        "service/routerpc_gateway",
        "emulator/routerpc_emulator",
        "scripts",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_seed_request_arrives_as_the_documented_json() -> None:
    from routerpc import ChatRequestBuilder, ProviderConfig, Quantization
    from routerpc_gateway.convert import encode_chat

    for quantizations, wire in [
        ([Quantization.FP8, Quantization.FP16], '["fp8","fp16"]'),
        ([Quantization.FP32, Quantization.BF16], '["fp32","bf16"]'),
        ([Quantization.INT8, Quantization.FP8], '["int8","fp8"]'),
    ]:
        provider_config = ProviderConfig(quantizations=quantizations)
        request = ChatRequestBuilder().with_model("openai/gpt-4o").with_text("Hello!").build()
        request.provider = provider_config
        assert encode_chat(request.proto, stream=False) == (
            b'{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hello!"}],'
            b'"provider":{"quantizations":' + wire.encode() + b"}}"
        )
