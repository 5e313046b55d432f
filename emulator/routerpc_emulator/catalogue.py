"""The emulator's model catalogue: which models exist and which provider endpoints serve them.

The data lives in the bundled ``catalogue.json`` so that it can be read and edited without touching
code; this module turns it into immutable, typed objects once, and fails loudly at load time when
the file drifts from OpenRouter's vocabulary (unknown quantization, non-decimal price, ...), because
a silently wrong catalogue would make routing tests pass for the wrong reason.

Prices are kept exactly as OpenRouter publishes them: decimal strings in USD per token (per unit
for ``request``/``image``/``audio``). Latency percentiles are seconds to first token (the unit of
the SPEC examples and of ``preferred_max_latency``), throughput percentiles are tokens per second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

QUANTIZATIONS: tuple[str, ...] = (
    "int4",
    "int8",
    "fp4",
    "mxfp4",
    "nvfp4",
    "fp6",
    "fp8",
    "mxfp8",
    "fp16",
    "bf16",
    "fp32",
    "unknown",
)

PARAMETERS: frozenset[str] = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "top_a",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "max_tokens",
        "max_completion_tokens",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "prediction",
        "seed",
        "response_format",
        "structured_outputs",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "include_reasoning",
        "reasoning",
        "reasoning_effort",
        "web_search_options",
        "verbosity",
    }
)


class CatalogueError(ValueError):
    """Raised when catalogue data does not describe a valid OpenRouter catalogue."""


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p75: float
    p90: float
    p99: float

    def as_json(self) -> dict[str, float]:
        return {"p50": self.p50, "p75": self.p75, "p90": self.p90, "p99": self.p99}


@dataclass(frozen=True)
class DataPolicy:
    """Per-endpoint privacy facts; ``provider.data_collection``/``zdr`` filter on these."""

    training: bool
    retains_prompts: bool
    zdr: bool


@dataclass(frozen=True)
class Endpoint:
    provider_name: str
    tag: str
    quantization: str | None
    context_length: int
    max_completion_tokens: int | None
    max_prompt_tokens: int | None
    pricing: Mapping[str, str]
    supported_parameters: tuple[str, ...]
    data_policy: DataPolicy
    latency: Percentiles
    throughput: Percentiles
    uptime_last_5m: float
    uptime_last_30m: float
    uptime_last_1d: float
    supports_implicit_caching: bool
    is_moderated: bool

    @property
    def base_slug(self) -> str:
        """``deepinfra/turbo`` -> ``deepinfra``: the slug that OpenRouter's base matching uses."""
        return self.tag.split("/", 1)[0]

    def price(self, key: str) -> Decimal:
        """Exact per-unit price; an unpriced dimension costs nothing rather than being unknown."""
        return Decimal(self.pricing.get(key, "0"))


@dataclass(frozen=True)
class Architecture:
    modality: str
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    tokenizer: str
    instruct_type: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "modality": self.modality,
            "input_modalities": list(self.input_modalities),
            "output_modalities": list(self.output_modalities),
            "tokenizer": self.tokenizer,
            "instruct_type": self.instruct_type,
        }


@dataclass(frozen=True)
class Model:
    id: str
    canonical_slug: str
    name: str
    created: int
    description: str
    hugging_face_id: str | None
    knowledge_cutoff: str | None
    architecture: Architecture
    endpoints: tuple[Endpoint, ...]

    @property
    def top_endpoint(self) -> Endpoint:
        """The endpoint whose limits and prices the model-level listing advertises."""
        return self.endpoints[0]

    @property
    def supported_parameters(self) -> tuple[str, ...]:
        """Union over endpoints, in first-seen order, as OpenRouter's model listing reports it."""
        seen: dict[str, None] = {}
        for endpoint in self.endpoints:
            for parameter in endpoint.supported_parameters:
                seen.setdefault(parameter, None)
        return tuple(seen)


@dataclass(frozen=True)
class Catalogue:
    models: tuple[Model, ...]

    def get(self, model_id: str) -> Model | None:
        for model in self.models:
            if model_id in (model.id, model.canonical_slug):
                return model
        return None

    def as_json(self) -> list[dict[str, Any]]:
        """Every stored fact, including the data policy the public listing leaves out."""
        return [asdict(model) for model in self.models]

    @classmethod
    def from_json(cls, data: object) -> Catalogue:
        root = _mapping(data, "catalogue")
        models = tuple(_model(raw) for raw in _sequence(root.get("models"), "models"))
        ids = [model.id for model in models]
        if len(set(ids)) != len(ids):
            raise CatalogueError("duplicate model ids in catalogue")
        return cls(models=models)


@cache
def default_catalogue() -> Catalogue:
    """The bundled catalogue, parsed once per process since it never changes at runtime."""
    text = (
        resources.files(__package__ or "routerpc_emulator")
        .joinpath("catalogue.json")
        .read_text(encoding="utf-8")
    )
    return Catalogue.from_json(json.loads(text))


def _model(raw: object) -> Model:
    data = _mapping(raw, "model")
    model_id = _str(data.get("id"), "model.id")
    endpoints = tuple(
        _endpoint(item, model_id) for item in _sequence(data.get("endpoints"), "endpoints")
    )
    if not endpoints:
        raise CatalogueError(f"{model_id}: a catalogue model needs at least one endpoint")
    tags = [endpoint.tag for endpoint in endpoints]
    if len(set(tags)) != len(tags):
        raise CatalogueError(f"{model_id}: duplicate endpoint tags")
    arch = _mapping(data.get("architecture"), "architecture")
    return Model(
        id=model_id,
        canonical_slug=_str(data.get("canonical_slug", model_id), "canonical_slug"),
        name=_str(data.get("name"), "name"),
        created=_int(data.get("created"), "created"),
        description=_str(data.get("description", ""), "description"),
        hugging_face_id=_optional_str(data.get("hugging_face_id"), "hugging_face_id"),
        knowledge_cutoff=_optional_str(data.get("knowledge_cutoff"), "knowledge_cutoff"),
        architecture=Architecture(
            modality=_str(arch.get("modality"), "modality"),
            input_modalities=_str_tuple(arch.get("input_modalities"), "input_modalities"),
            output_modalities=_str_tuple(arch.get("output_modalities"), "output_modalities"),
            tokenizer=_str(arch.get("tokenizer"), "tokenizer"),
            instruct_type=_optional_str(arch.get("instruct_type"), "instruct_type"),
        ),
        endpoints=endpoints,
    )


def _endpoint(raw: object, model_id: str) -> Endpoint:
    data = _mapping(raw, "endpoint")
    where = f"{model_id}/{data.get('tag')}"
    quantization = _optional_str(data.get("quantization"), f"{where}.quantization")
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise CatalogueError(f"{where}: unknown quantization {quantization!r}")
    pricing = {
        key: _str(value, f"{where}.pricing.{key}")
        for key, value in _mapping(data.get("pricing"), f"{where}.pricing").items()
    }
    for key in ("prompt", "completion"):
        if key not in pricing:
            raise CatalogueError(f"{where}: pricing.{key} is required")
    for key, value in pricing.items():
        try:
            Decimal(value)
        except InvalidOperation as exc:
            raise CatalogueError(f"{where}: pricing.{key} {value!r} is not decimal") from exc
    parameters = _str_tuple(data.get("supported_parameters"), f"{where}.supported_parameters")
    unknown = sorted(set(parameters) - PARAMETERS)
    if unknown:
        raise CatalogueError(f"{where}: unknown supported_parameters {unknown}")
    policy = _mapping(data.get("data_policy"), f"{where}.data_policy")
    return Endpoint(
        provider_name=_str(data.get("provider_name"), f"{where}.provider_name"),
        tag=_str(data.get("tag"), f"{where}.tag"),
        quantization=quantization,
        context_length=_int(data.get("context_length"), f"{where}.context_length"),
        max_completion_tokens=_optional_int(data.get("max_completion_tokens"), where),
        max_prompt_tokens=_optional_int(data.get("max_prompt_tokens"), where),
        pricing=pricing,
        supported_parameters=parameters,
        data_policy=DataPolicy(
            training=_bool(policy.get("training"), f"{where}.training"),
            retains_prompts=_bool(policy.get("retains_prompts"), f"{where}.retains_prompts"),
            zdr=_bool(policy.get("zdr"), f"{where}.zdr"),
        ),
        latency=_percentiles(data.get("latency_last_30m"), f"{where}.latency_last_30m"),
        throughput=_percentiles(data.get("throughput_last_30m"), f"{where}.throughput_last_30m"),
        uptime_last_5m=_float(data.get("uptime_last_5m"), f"{where}.uptime_last_5m"),
        uptime_last_30m=_float(data.get("uptime_last_30m"), f"{where}.uptime_last_30m"),
        uptime_last_1d=_float(data.get("uptime_last_1d"), f"{where}.uptime_last_1d"),
        supports_implicit_caching=_bool(data.get("supports_implicit_caching", False), where),
        is_moderated=_bool(data.get("is_moderated", False), where),
    )


def _percentiles(raw: object, where: str) -> Percentiles:
    data = _mapping(raw, where)
    return Percentiles(
        p50=_float(data.get("p50"), f"{where}.p50"),
        p75=_float(data.get("p75"), f"{where}.p75"),
        p90=_float(data.get("p90"), f"{where}.p90"),
        p99=_float(data.get("p99"), f"{where}.p99"),
    )


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogueError(f"{where}: expected an object")
    return value


def _sequence(value: object, where: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise CatalogueError(f"{where}: expected an array")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise CatalogueError(f"{where}: expected a string")
    return value


def _optional_str(value: object, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _str_tuple(value: object, where: str) -> tuple[str, ...]:
    return tuple(_str(item, where) for item in _sequence(value, where))


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogueError(f"{where}: expected an integer")
    return value


def _optional_int(value: object, where: str) -> int | None:
    return None if value is None else _int(value, where)


def _float(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogueError(f"{where}: expected a number")
    return float(value)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogueError(f"{where}: expected a boolean")
    return value
