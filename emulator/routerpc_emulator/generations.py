"""Generation stats for ``GET /api/v1/generation``: what OpenRouter remembers about each answer.

Only generations served by this process exist, kept in a bounded LRU so a long-running emulator
cannot grow without limit; a looked-up generation counts as recently used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .responses import Completion

DEFAULT_CAPACITY = 1000


@dataclass(frozen=True)
class Provenance:
    """Request facts OpenRouter echoes into generation stats."""

    http_referer: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    external_user: str | None = None
    origin: str = ""


@dataclass(frozen=True)
class Outcome:
    """How the generation ended on the wire."""

    streamed: bool
    finish_reason: str | None
    cancelled: bool = False


class GenerationStore:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, stats: Mapping[str, Any]) -> None:
        generation_id = str(stats["id"])
        self._items[generation_id] = dict(stats)
        self._items.move_to_end(generation_id)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def get(self, generation_id: str) -> dict[str, Any] | None:
        stats = self._items.get(generation_id)
        if stats is not None:
            self._items.move_to_end(generation_id)
        return stats

    def clear(self) -> None:
        self._items.clear()


def generation_stats(
    completion: Completion, outcome: Outcome, provenance: Provenance, latency_ms: float
) -> dict[str, Any]:
    endpoint = completion.served_by.endpoint
    usage = completion.usage
    latency = round(latency_ms, 3)
    return {
        "id": completion.id,
        "upstream_id": f"chatcmpl-{completion.id.rsplit('-', 1)[-1]}",
        "request_id": f"req-{completion.created}-{completion.id.rsplit('-', 1)[-1]}",
        "session_id": provenance.session_id,
        "model": completion.model,
        "provider_name": completion.provider,
        "api_type": "completions",
        "created_at": datetime.fromtimestamp(completion.created, UTC).isoformat(),
        "streamed": outcome.streamed,
        "cancelled": outcome.cancelled,
        "finish_reason": outcome.finish_reason,
        "native_finish_reason": outcome.finish_reason,
        "tokens_prompt": usage.prompt_tokens,
        "tokens_completion": usage.completion_tokens,
        "native_tokens_prompt": usage.prompt_tokens,
        "native_tokens_completion": usage.completion_tokens,
        "native_tokens_reasoning": 0,
        "native_tokens_cached": 0,
        "native_tokens_completion_images": 0,
        "num_media_prompt": 0,
        "num_media_completion": 0,
        "num_input_audio_prompt": 0,
        "num_search_results": 0,
        "num_fetches": 0,
        "total_cost": usage.cost,
        "usage": usage.cost,
        "cache_discount": None,
        "upstream_inference_cost": None,
        "is_byok": False,
        "latency": latency,
        "moderation_latency": None,
        "generation_time": latency,
        "service_tier": None,
        "router": None,
        "preset_id": None,
        "provider_responses": [
            {
                "endpoint_id": f"ep_{endpoint.tag.replace('/', '_')}",
                "id": f"chatcmpl-{completion.id.rsplit('-', 1)[-1]}",
                "is_byok": False,
                "latency": latency,
                "model_permaslug": completion.served_by.model.canonical_slug,
                "provider_name": completion.provider,
                "status": 200,
            }
        ],
        "origin": provenance.origin,
        "http_referer": provenance.http_referer,
        "user_agent": provenance.user_agent,
        "external_user": provenance.external_user,
        "app_id": None,
        "web_search_engine": None,
        "data_region": "global",
        "workspace_id": None,
        "response_cache_source_id": None,
    }
