"""The bundled catalogue: required models, OpenRouter vocabulary, and the shapes tests rely on."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from routerpc_emulator.catalogue import (
    PARAMETERS,
    QUANTIZATIONS,
    Catalogue,
    CatalogueError,
    default_catalogue,
)

REQUIRED_MODELS = {
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-sonnet-4.5",
    "meta-llama/llama-3.3-70b-instruct",
    "deepseek/deepseek-chat-v3.1",
    "mistralai/mistral-small-3.2-24b-instruct",
    "qwen/qwen3-235b-a22b",
}


def raw_catalogue() -> dict[str, Any]:
    text = resources.files("routerpc_emulator").joinpath("catalogue.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def quantizations(model_id: str) -> set[str | None]:
    model = default_catalogue().get(model_id)
    assert model is not None
    return {endpoint.quantization for endpoint in model.endpoints}


def test_catalogue_contains_the_required_models() -> None:
    assert {model.id for model in default_catalogue().models} >= REQUIRED_MODELS


def test_every_model_is_served_by_several_endpoints() -> None:
    for model in default_catalogue().models:
        assert len(model.endpoints) >= 2, model.id


def test_quantizations_use_openrouter_vocabulary_or_null() -> None:
    assert len(QUANTIZATIONS) == 12
    for model in default_catalogue().models:
        for endpoint in model.endpoints:
            assert endpoint.quantization is None or endpoint.quantization in QUANTIZATIONS


def test_llama_is_served_at_fp8_fp16_bf16_and_int4() -> None:
    assert quantizations("meta-llama/llama-3.3-70b-instruct") >= {"fp8", "fp16", "bf16", "int4"}


def test_gpt_4o_has_fp8_and_fp16_endpoints_but_no_int4() -> None:
    found = quantizations("openai/gpt-4o")
    assert {"fp8", "fp16"} <= found
    assert "int4" not in found


def test_closed_anthropic_model_reports_null_quantization() -> None:
    assert quantizations("anthropic/claude-sonnet-4.5") == {None}


def test_prices_are_decimal_strings_in_usd_per_token() -> None:
    for model in default_catalogue().models:
        for endpoint in model.endpoints:
            for key, value in endpoint.pricing.items():
                assert isinstance(value, str), (model.id, endpoint.tag, key)
                Decimal(value)
            assert Decimal(0) < endpoint.price("prompt") < Decimal("0.0001")
            assert Decimal(0) < endpoint.price("completion") < Decimal("0.0001")


def test_supported_parameters_use_openrouter_vocabulary() -> None:
    for model in default_catalogue().models:
        for endpoint in model.endpoints:
            assert set(endpoint.supported_parameters) <= PARAMETERS


def test_latency_percentiles_rise_and_throughput_percentiles_fall() -> None:
    for model in default_catalogue().models:
        for e in model.endpoints:
            assert e.latency.p50 <= e.latency.p75 <= e.latency.p90 <= e.latency.p99
            assert e.throughput.p50 >= e.throughput.p75 >= e.throughput.p90 >= e.throughput.p99


def test_catalogue_has_both_private_and_data_collecting_endpoints() -> None:
    endpoints = [e for m in default_catalogue().models for e in m.endpoints]
    assert any(e.data_policy.zdr for e in endpoints)
    assert any(e.data_policy.training for e in endpoints)
    for e in endpoints:
        assert not (e.data_policy.zdr and (e.data_policy.training or e.data_policy.retains_prompts))


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantization", "fp5"), ("pricing", {"prompt": "cheap", "completion": "0"})],
)
def test_loading_rejects_values_outside_openrouter_vocabulary(field: str, value: object) -> None:
    data = copy.deepcopy(raw_catalogue())
    data["models"][0]["endpoints"][0][field] = value
    with pytest.raises(CatalogueError):
        Catalogue.from_json(data)


def test_model_lookup_accepts_canonical_slug() -> None:
    model = default_catalogue().get("openai/gpt-4o-mini-2024-07-18")
    assert model is not None
    assert model.id == "openai/gpt-4o-mini"
