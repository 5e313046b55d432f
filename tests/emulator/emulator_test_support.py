"""Helpers shared by the emulator tests (not collected: the name does not start with test_)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

EMULATOR_SRC = Path(__file__).resolve().parents[2] / "emulator"
USER_TEXT = "hello emulator world"


def chat_body(model: str = "openai/gpt-4o", text: str = USER_TEXT, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def read_sse_lines(response: httpx.Response) -> list[str]:
    """Every non-empty line of an event stream, comments included, in arrival order."""
    return [line async for line in response.aiter_lines() if line != ""]


def data_payloads(lines: list[str]) -> list[str]:
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


def json_events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(p) for p in data_payloads(lines) if p != "[DONE]"]
