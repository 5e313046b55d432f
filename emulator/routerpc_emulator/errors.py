"""OpenRouter's error envelope, in one place so every failure path answers in the same shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web


def error_body(
    status: int, message: str, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        error["metadata"] = dict(metadata)
    return {"error": error}


def error_response(
    status: int,
    message: str,
    metadata: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(error_body(status, message, metadata), status=status, headers=headers)
