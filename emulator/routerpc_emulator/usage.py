"""Token counts and cost, computed so that a test can predict them exactly.

Real tokenizers are model-specific and not available offline; one token per started group of four
characters is close enough to look plausible and trivial to reproduce in an assertion. Cost uses
exact decimal arithmetic on the serving endpoint's per-token prices and is rounded to 12 decimal
places before becoming a JSON number, which keeps sub-micro-dollar prices visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .catalogue import Endpoint

CHARS_PER_TOKEN = 4
_COST_QUANTUM = Decimal("1e-12")


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def cost_usd(endpoint: Endpoint, prompt_tokens: int, completion_tokens: int) -> float:
    total = (
        endpoint.price("prompt") * prompt_tokens
        + endpoint.price("completion") * completion_tokens
        + endpoint.price("request")
    )
    return float(total.quantize(_COST_QUANTUM))


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost: float

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def priced(cls, endpoint: Endpoint, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost_usd(endpoint, prompt_tokens, completion_tokens),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
