"""Catalogue -> the JSON of ``GET /models`` and ``GET /models/{author}/{slug}/endpoints``.

Separate from the catalogue itself so the stored facts (including emulator-only ones such as the
data policy) and OpenRouter's public view of them can evolve independently. Model-level limits
and prices are those of the model's first ("top") endpoint, as OpenRouter's ``top_provider`` is.
"""

from __future__ import annotations

from typing import Any

from .catalogue import Endpoint, Model


def model_json(model: Model) -> dict[str, Any]:
    top = model.top_endpoint
    return {
        "id": model.id,
        "canonical_slug": model.canonical_slug,
        "hugging_face_id": model.hugging_face_id,
        "name": model.name,
        "created": model.created,
        "description": model.description,
        "context_length": top.context_length,
        "architecture": model.architecture.as_json(),
        "pricing": dict(top.pricing),
        "top_provider": {
            "context_length": top.context_length,
            "max_completion_tokens": top.max_completion_tokens,
            "is_moderated": top.is_moderated,
        },
        "per_request_limits": None,
        "supported_parameters": list(model.supported_parameters),
        "default_parameters": None,
        "supported_voices": None,
        "knowledge_cutoff": model.knowledge_cutoff,
        "expiration_date": None,
        "links": {"details": f"/api/v1/models/{model.id}/endpoints"},
    }


def endpoints_json(model: Model) -> dict[str, Any]:
    return {
        "id": model.id,
        "name": model.name,
        "created": model.created,
        "description": model.description,
        "architecture": model.architecture.as_json(),
        "endpoints": [endpoint_json(model, endpoint) for endpoint in model.endpoints],
    }


def endpoint_json(model: Model, endpoint: Endpoint) -> dict[str, Any]:
    short_name = model.name.split(": ", 1)[-1]
    return {
        "name": f"{endpoint.provider_name}: {short_name}",
        "model_id": model.canonical_slug,
        "model_name": model.name,
        "provider_name": endpoint.provider_name,
        "tag": endpoint.tag,
        "quantization": endpoint.quantization,
        "context_length": endpoint.context_length,
        "max_completion_tokens": endpoint.max_completion_tokens,
        "max_prompt_tokens": endpoint.max_prompt_tokens,
        "pricing": dict(endpoint.pricing),
        "supported_parameters": list(endpoint.supported_parameters),
        "status": 0,
        "uptime_last_5m": endpoint.uptime_last_5m,
        "uptime_last_30m": endpoint.uptime_last_30m,
        "uptime_last_1d": endpoint.uptime_last_1d,
        "latency_last_30m": endpoint.latency.as_json(),
        "throughput_last_30m": endpoint.throughput.as_json(),
        "supports_implicit_caching": endpoint.supports_implicit_caching,
        "supports_voice_cloning": False,
    }


def models_json(models: list[Model], required_parameters: frozenset[str]) -> dict[str, Any]:
    """``supported_parameters`` query filter: keep models supporting every listed parameter."""
    kept = [m for m in models if required_parameters.issubset(m.supported_parameters)]
    return {"data": [model_json(model) for model in kept]}
