"""Per-caller routing policy: defaults merged into the request, then ceilings enforced.

Order and semantics (documented in the README with examples):

1. **Defaults** fill only what the request left unset; a value the caller set is kept.
2. **Limits** are ceilings and always win. Where the request is silent, the ceiling is written in
   (an unset quantization list becomes the allowed list; an unset price cap becomes the ceiling),
   because "unset" upstream means "anything". Where the request asks for more than the ceiling,
   ``mode: reject`` refuses it with PERMISSION_DENIED naming the rule, and ``mode: narrow``
   narrows it (intersecting lists, lowering caps). A request is never widened.

Model allow-lists use shell patterns ("openai/*"). In narrow mode disallowed fallback models are
dropped, but a disallowed primary model is always refused.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import grpc

from routerpc import pb
from routerpc._gen import enums
from routerpc_gateway.callers import Caller, Defaults, Limits, Price
from routerpc_gateway.errors import GatewayError

__all__ = ["apply_policy"]

_PRICE_FIELDS = ("prompt", "completion", "image", "audio", "request")


def _denied(rule: str, message: str) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"{message} (policy rule {rule})",
        reason="POLICY_VIOLATION",
        metadata={"rule": rule},
    )


def _has(message: Any, name: str) -> bool:
    return bool(message.HasField(name))


def _enum(kind: Any, name: str) -> Any:
    """Typed Any: the proto stubs type enum fields as a NewType no IntEnum satisfies."""
    return kind[name.upper()]


def _quant(name: str) -> Any:
    return _enum(enums.Quantization, name)


def _apply_defaults(provider: pb.ProviderConfig, defaults: Defaults) -> None:
    for name in ("allow_fallbacks", "require_parameters", "zdr", "enforce_distillable_text"):
        value = getattr(defaults, name)
        if value is not None and not provider.HasField(name):
            setattr(provider, name, value)
    for name in ("order", "only", "ignore"):
        values = getattr(defaults, name)
        if values and not getattr(provider, name):
            getattr(provider, name).extend(values)
    if defaults.data_collection and not provider.data_collection:
        provider.data_collection = _enum(enums.DataCollection, defaults.data_collection)
    if defaults.quantizations and not provider.quantizations:
        provider.quantizations.extend(_quant(q) for q in defaults.quantizations)
    if defaults.sort and provider.WhichOneof("sort") is None:
        provider.sort_strategy = _enum(enums.SortStrategy, defaults.sort)
    if defaults.max_price is not None:
        for name in _PRICE_FIELDS:
            value = getattr(defaults.max_price, name)
            if value is not None and not _has(provider.max_price, name):
                setattr(provider.max_price, name, value)


def _enforce_models(request: pb.ChatRequest, patterns: list[str], narrow: bool) -> None:
    def allowed(model: str) -> bool:
        return any(fnmatch.fnmatchcase(model.split(":", 1)[0], p) for p in patterns)

    if not request.model or not allowed(request.model):
        raise _denied(
            "limits.models", f"model {request.model or '(account default)'!r} is not allowed"
        )
    refused = [m for m in request.models if not allowed(m)]
    if refused and not narrow:
        raise _denied("limits.models", f"fallback models {refused} are not allowed")
    if refused:
        kept = [m for m in request.models if allowed(m)]
        del request.models[:]
        request.models.extend(kept)


def _enforce_list(current: Any, allowed: list[Any], rule: str, what: str, narrow: bool) -> None:
    """A repeated field must stay within ``allowed``; unset becomes ``allowed``."""
    if not current:
        current.extend(allowed)
        return
    outside = [v for v in current if v not in allowed]
    if not outside:
        return
    if not narrow:
        raise _denied(rule, f"{what} {outside} are not allowed")
    kept = [v for v in current if v in allowed]
    if not kept:
        raise _denied(rule, f"none of the requested {what} are allowed")
    del current[:]
    current.extend(kept)


def _enforce_price(provider: pb.ProviderConfig, ceiling: Price, narrow: bool) -> None:
    for name in _PRICE_FIELDS:
        cap = getattr(ceiling, name)
        if cap is None:
            continue
        if not _has(provider.max_price, name):
            setattr(provider.max_price, name, cap)
        elif getattr(provider.max_price, name) > cap:
            if not narrow:
                raise _denied(f"limits.max_price.{name}", f"max_price.{name} exceeds {cap}")
            setattr(provider.max_price, name, cap)


def _enforce_tokens(request: pb.ChatRequest, ceiling: int, narrow: bool) -> None:
    present = [n for n in ("max_tokens", "max_completion_tokens") if request.HasField(n)]
    if not present:
        request.max_completion_tokens = ceiling
    for name in present:
        if getattr(request, name) > ceiling:
            if not narrow:
                raise _denied("limits.max_tokens", f"{name} exceeds {ceiling}")
            setattr(request, name, ceiling)


def _enforce_limits(request: pb.ChatRequest, limits: Limits) -> None:
    narrow = limits.mode == "narrow"
    provider = request.provider
    if limits.models is not None:
        _enforce_models(request, limits.models, narrow)
    if limits.quantizations is not None:
        allowed = [_quant(q) for q in limits.quantizations]
        _enforce_list(
            provider.quantizations, allowed, "limits.quantizations", "quantizations", narrow
        )
    if limits.providers is not None:
        _enforce_list(provider.only, limits.providers, "limits.providers", "providers", narrow)
        outside = [p for p in provider.order if p not in limits.providers]
        if outside and not narrow:
            raise _denied("limits.providers", f"providers {outside} in order are not allowed")
        if outside:
            kept = [p for p in provider.order if p in limits.providers]
            del provider.order[:]
            provider.order.extend(kept)
    if limits.ignored_providers:
        provider.ignore.extend(p for p in limits.ignored_providers if p not in provider.ignore)
    if limits.max_price is not None:
        _enforce_price(provider, limits.max_price, narrow)
    if limits.max_tokens is not None:
        _enforce_tokens(request, limits.max_tokens, narrow)


def apply_policy(request: pb.ChatRequest, caller: Caller | None) -> pb.ChatRequest:
    """The request as the caller's policy shapes it (a copy), or PERMISSION_DENIED."""
    if caller is None or (caller.defaults is None and caller.limits is None):
        return request
    shaped = pb.ChatRequest()
    shaped.CopyFrom(request)
    if caller.defaults is not None:
        _apply_defaults(shaped.provider, caller.defaults)
    if caller.limits is not None:
        _enforce_limits(shaped, caller.limits)
    if shaped.provider == pb.ProviderConfig():
        shaped.ClearField("provider")  # nothing applied: send no empty "provider": {}
    return shaped
