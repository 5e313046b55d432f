"""The documented seed snippet runs verbatim and builds the request (and wire body) it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from routerpc import ChatRequest, Quantization, Role, pb
from routerpc_gateway.convert import encode_chat

SNIPPET = """\
from routerpc import ChatRequestBuilder, ProviderConfig, Quantization

provider_config = ProviderConfig(
    quantizations=[Quantization.FP8, Quantization.FP16]
)

request = (ChatRequestBuilder()
    .with_model("openai/gpt-4o")
    .with_text("Hello!")
    .build())
request.provider = provider_config
"""

QUANTIZATION_LISTS = [
    [Quantization.FP8, Quantization.FP16],
    [Quantization.FP32, Quantization.BF16],
    [Quantization.INT8, Quantization.FP8],
]


def _snippet_for(quantizations: list[Quantization]) -> str:
    """The snippet with only its quantization list swapped (the first list is the original)."""
    original = "[Quantization.FP8, Quantization.FP16]"
    assert SNIPPET.count(original) == 1
    listed = ", ".join(f"Quantization.{q.name}" for q in quantizations)
    return SNIPPET.replace(original, f"[{listed}]")


def _run(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<seed snippet>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize(
    "quantizations", QUANTIZATION_LISTS, ids=lambda qs: "+".join(q.name for q in qs)
)
def test_seed_snippet_builds_the_request_with_the_quantization_filter(
    quantizations: list[Quantization],
) -> None:
    namespace = _run(_snippet_for(quantizations))

    request = namespace["request"]
    assert isinstance(request, ChatRequest)
    proto = request.proto
    assert proto.model == "openai/gpt-4o"
    assert list(proto.messages) == [pb.Message(role=Role.USER, text="Hello!")]
    assert proto.HasField("provider")
    assert list(proto.provider.quantizations) == [int(q) for q in quantizations]
    # The provider holds nothing but the filter, and the filter was copied in, not shared.
    assert proto.provider == pb.ProviderConfig(quantizations=quantizations)
    namespace["provider_config"].quantizations.append(Quantization.INT4)
    assert list(proto.provider.quantizations) == [int(q) for q in quantizations]


def test_seed_snippet_is_the_unmodified_documented_text_for_the_first_list() -> None:
    assert _snippet_for(QUANTIZATION_LISTS[0]) == SNIPPET


def test_seed_request_encodes_to_the_documented_openrouter_body() -> None:
    request = _run(SNIPPET)["request"]

    assert encode_chat(request.proto, stream=False) == (
        b'{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hello!"}],'
        b'"provider":{"quantizations":["fp8","fp16"]}}'
    )


@pytest.mark.parametrize(
    ("quantizations", "wire"),
    [
        (QUANTIZATION_LISTS[1], b'["fp32","bf16"]'),
        (QUANTIZATION_LISTS[2], b'["int8","fp8"]'),
    ],
    ids=["FP32+BF16", "INT8+FP8"],
)
def test_other_seed_lists_encode_in_the_given_order(
    quantizations: list[Quantization], wire: bytes
) -> None:
    request = _run(_snippet_for(quantizations))["request"]

    assert encode_chat(request.proto, stream=False) == (
        b'{"model":"openai/gpt-4o","messages":[{"role":"user","content":"Hello!"}],'
        b'"provider":{"quantizations":' + wire + b"}}"
    )


def test_seed_snippet_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    """Users run mypy too: the required snippet must type-check as written."""
    snippet = tmp_path / "seed.py"
    snippet.write_text(
        "from routerpc import ChatRequestBuilder, ProviderConfig, Quantization\n\n"
        "provider_config = ProviderConfig(\n"
        "    quantizations=[Quantization.FP8, Quantization.FP16]\n"
        ")\n\n"
        "request = (ChatRequestBuilder()\n"
        '    .with_model("openai/gpt-4o")\n'
        '    .with_text("Hello!")\n'
        "    .build())\n"
        "request.provider = provider_config\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
