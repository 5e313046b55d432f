"""Validation and normalisation of a chat-completions request body.

OpenRouter rejects malformed bodies with 400 before routing, and a gateway must learn that from
the emulator too; everything the rest of the emulator needs is extracted here once, so routing and
response building never look at raw JSON. Unknown top-level fields are accepted (OpenRouter passes
them through), but unknown keys inside ``provider`` are rejected: its schema is
``additionalProperties: false``, and a misspelt preference silently ignored would hide gateway bugs.

Choices beyond the digest: without ``model`` and ``models`` the emulator routes to
``DEFAULT_MODEL`` (OpenRouter would use the account default). A ``:variant`` suffix is stripped;
``:nitro``, ``:floor`` and ``:exacto`` imply ``sort`` ``throughput``, ``price`` and ``exacto``
unless ``provider.sort`` is given. ``response_format`` of type ``json_schema`` also requires the
``structured_outputs`` parameter under ``require_parameters``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .catalogue import PARAMETERS
from .faults import split_model_suffix
from .routing import (
    MAX_PRICE_KEYS,
    PARTITIONS,
    PERCENTILE_KEYS,
    SORTS,
    ProviderPreferences,
    RoutingRequest,
)
from .usage import count_tokens

DEFAULT_MODEL = "openai/gpt-4o-mini"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
VARIANT_SORTS: Mapping[str, str] = {"nitro": "throughput", "floor": "price", "exacto": "exacto"}
PROVIDER_KEYS = frozenset(
    {
        "order",
        "allow_fallbacks",
        "require_parameters",
        "data_collection",
        "zdr",
        "enforce_distillable_text",
        "only",
        "ignore",
        "quantizations",
        "sort",
        "max_price",
        "preferred_min_throughput",
        "preferred_max_latency",
        "options",
        "experimental",
        "min_throughput",
        "max_latency",
    }
)


class RequestError(ValueError):
    """The body is not a valid chat request; the message is returned with HTTP 400."""


@dataclass(frozen=True)
class ChatRequest:
    routing: RoutingRequest
    stream: bool
    last_user_text: str
    prompt_tokens: int
    max_output_tokens: int | None
    tool_call: str | None
    model_fault: str | None
    session_id: str | None = None
    user: str | None = None


def parse_chat_request(body: object) -> ChatRequest:
    if not isinstance(body, Mapping):
        raise RequestError("Request body must be a JSON object")
    messages = _messages(body.get("messages"))
    primary, fault, variant = _model_field(body.get("model"))
    fallbacks = [_bare_model(item) for item in _str_list(body.get("models"), "models")]
    models = _distinct([primary, *fallbacks] if primary else fallbacks) or [DEFAULT_MODEL]
    provider = _provider(body.get("provider"), variant)
    max_output = _max_output_tokens(body)
    prompt_tokens = count_tokens("".join(_message_text(message) for message in messages))
    return ChatRequest(
        routing=RoutingRequest(
            models=tuple(models),
            provider=provider,
            parameters=_requested_parameters(body),
            prompt_tokens=prompt_tokens,
            max_output_tokens=max_output,
        ),
        stream=_optional_bool(body.get("stream"), "stream") or False,
        last_user_text=_last_user_text(messages),
        prompt_tokens=prompt_tokens,
        max_output_tokens=max_output,
        tool_call=_tool_to_call(body, _last_user_text(messages)),
        model_fault=fault,
        session_id=_optional_str(body.get("session_id"), "session_id"),
        user=_optional_str(body.get("user"), "user"),
    )


def _messages(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not value:
        raise RequestError("messages: expected a non-empty array of message objects")
    messages: list[Mapping[str, Any]] = []
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise RequestError(f"{where}: expected an object")
        role = message.get("role")
        if role not in ROLES:
            raise RequestError(f"{where}.role: expected one of {', '.join(sorted(ROLES))}")
        content = message.get("content")
        if content is None and role != "assistant":
            raise RequestError(f"{where}.content: required for role {role}")
        if content is not None and not isinstance(content, str | list):
            raise RequestError(f"{where}.content: expected a string or an array of parts")
        if isinstance(content, list) and not all(isinstance(p, Mapping) for p in content):
            raise RequestError(f"{where}.content: every part must be an object")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise RequestError(f"{where}.tool_call_id: required for role tool")
        messages.append(message)
    return messages


def _model_field(value: object) -> tuple[str | None, str | None, str | None]:
    if value is None:
        return None, None, None
    if not isinstance(value, str) or not value.strip():
        raise RequestError("model: expected a non-empty string")
    without_fault, fault = split_model_suffix(value.strip())
    base, variant = _split_variant(without_fault)
    return base, fault, variant


def _bare_model(value: str) -> str:
    without_fault, _ = split_model_suffix(value.strip())
    return _split_variant(without_fault)[0]


def _split_variant(model: str) -> tuple[str, str | None]:
    head, sep, tail = model.rpartition(":")
    if sep and "/" in head and tail and "/" not in tail:
        return head, tail.lower()
    return model, None


def _provider(value: object, variant: str | None) -> ProviderPreferences:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise RequestError("provider: expected an object")
    unknown = sorted(set(value) - PROVIDER_KEYS)
    if unknown:
        raise RequestError(f"provider: unknown field(s) {', '.join(unknown)}")
    sort, partition = _sort(value.get("sort"))
    if sort is None and variant is not None and variant in VARIANT_SORTS:
        sort = VARIANT_SORTS[variant]
    data_collection = value.get("data_collection") or "allow"
    if data_collection not in ("allow", "deny"):
        raise RequestError('provider.data_collection: expected "allow" or "deny"')
    allow_fallbacks = _optional_bool(value.get("allow_fallbacks"), "provider.allow_fallbacks")
    return ProviderPreferences(
        order=tuple(_str_list(value.get("order"), "provider.order")),
        allow_fallbacks=True if allow_fallbacks is None else allow_fallbacks,
        require_parameters=bool(
            _optional_bool(value.get("require_parameters"), "provider.require_parameters")
        ),
        data_collection=data_collection,
        zdr=bool(_optional_bool(value.get("zdr"), "provider.zdr")),
        only=tuple(_str_list(value.get("only"), "provider.only")),
        ignore=tuple(_str_list(value.get("ignore"), "provider.ignore")),
        quantizations=tuple(
            q.lower() for q in _str_list(value.get("quantizations"), "provider.quantizations")
        ),
        sort=sort,
        partition=partition,
        max_price=_max_price(value.get("max_price")),
        preferred_min_throughput=_cutoffs(
            value.get("preferred_min_throughput"), "provider.preferred_min_throughput"
        ),
        preferred_max_latency=_cutoffs(
            value.get("preferred_max_latency"), "provider.preferred_max_latency"
        ),
    )


def _sort(value: object) -> tuple[str | None, str]:
    if value is None:
        return None, "model"
    if isinstance(value, str):
        return _sort_by(value), "model"
    if not isinstance(value, Mapping):
        raise RequestError("provider.sort: expected a string or {by, partition}")
    unknown = sorted(set(value) - {"by", "partition"})
    if unknown:
        raise RequestError(f"provider.sort: unknown field(s) {', '.join(unknown)}")
    by = value.get("by")
    partition = value.get("partition") or "model"
    if partition not in PARTITIONS:
        raise RequestError(f"provider.sort.partition: expected one of {', '.join(PARTITIONS)}")
    return (None if by is None else _sort_by(by)), partition


def _sort_by(value: object) -> str:
    if value not in SORTS:
        raise RequestError(f"provider.sort: expected one of {', '.join(SORTS)}")
    return str(value)


def _max_price(value: object) -> dict[str, Decimal]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RequestError("provider.max_price: expected an object")
    limits: dict[str, Decimal] = {}
    for key, raw in value.items():
        if key not in MAX_PRICE_KEYS:
            raise RequestError(f"provider.max_price: unknown field {key}")
        if raw is None:
            continue
        limits[key] = _non_negative_decimal(raw, f"provider.max_price.{key}")
    return limits


def _non_negative_decimal(raw: object, where: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise RequestError(f"{where}: expected a number or a numeric string")
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise RequestError(f"{where}: {raw!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise RequestError(f"{where}: expected a finite, non-negative number")
    return number


def _cutoffs(value: object, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"p50": float(value)}
    if not isinstance(value, Mapping):
        raise RequestError(f"{where}: expected a number or an object of percentiles")
    cutoffs: dict[str, float] = {}
    for key, raw in value.items():
        if key not in PERCENTILE_KEYS:
            raise RequestError(f"{where}: unknown percentile {key}")
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise RequestError(f"{where}.{key}: expected a number")
        cutoffs[key] = float(raw)
    return cutoffs


def _max_output_tokens(body: Mapping[str, Any]) -> int | None:
    limits = []
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(f"{key}: expected an integer >= 1")
        limits.append(value)
    return min(limits) if limits else None


def _requested_parameters(body: Mapping[str, Any]) -> frozenset[str]:
    present = {key for key, value in body.items() if key in PARAMETERS and value is not None}
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        present.add("structured_outputs")
    return frozenset(present)


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _message_text(message)
    return ""


def _tool_to_call(body: Mapping[str, Any], user_text: str) -> str | None:
    """The function tool the echo model should call, mimicking a model that obeys instructions."""
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise RequestError("tools: expected an array")
    names: list[str] = [
        tool["function"]["name"]
        for tool in tools or []
        if isinstance(tool, Mapping)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), Mapping)
        and isinstance(tool["function"].get("name"), str)
    ]
    if not names:
        return None
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        forced = choice["function"].get("name")
        if isinstance(forced, str):
            return forced
    mentioned = [
        name
        for name in names
        if re.search(rf"\bcall\s+{re.escape(name)}\b", user_text, flags=re.IGNORECASE)
    ]
    if mentioned:
        return mentioned[0]
    return names[0] if choice == "required" else None


def _str_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError(f"{where}: expected an array of strings")
    return value


def _optional_str(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RequestError(f"{where}: expected a string")


def _optional_bool(value: object, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise RequestError(f"{where}: expected a boolean")


def _distinct(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))
