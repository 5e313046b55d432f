"""Bounded log of received chat requests, for tests that check what a client actually sent.

Emulator-only (``GET``/``DELETE /_emulator/requests``). Headers are reduced to the few a gateway
is expected to forward; the Authorization value is never stored, only whether it was present, so
the log can be dumped in test output without leaking keys.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

DEFAULT_CAPACITY = 200


class RequestLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, path: str, body: object, headers: Mapping[str, str]) -> None:
        self._entries.append(
            {
                "received_at": time.time(),
                "path": path,
                "body": body,
                "http_referer": headers.get("HTTP-Referer"),
                "x_openrouter_title": headers.get("X-OpenRouter-Title", headers.get("X-Title")),
                "x_openrouter_categories": headers.get("X-OpenRouter-Categories"),
                "x_session_id": headers.get("X-Session-Id"),
                "x_emulator_fault": headers.get("X-Emulator-Fault"),
                "user_agent": headers.get("User-Agent"),
                "content_type": headers.get("Content-Type"),
                "has_authorization": "Authorization" in headers,
            }
        )

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Oldest first; ``limit`` keeps only the most recent entries."""
        items = list(self._entries)
        return items[-limit:] if limit else items

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count
