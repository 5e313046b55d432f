"""ListModels and ListEndpoints through the gateway process, against the emulator's catalogue."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_e2e import Emulator, Gateway, RecordingUpstream

from routerpc import InvalidArgumentError, NotFoundError, Quantization, RouterClient

pytestmark = pytest.mark.e2e


def _emulator_json(emulator: Emulator, path: str) -> Any:
    reply = httpx.get(f"{emulator.base_url}/{path}", timeout=5)
    reply.raise_for_status()
    return reply.json()["data"]


def test_list_models_returns_every_model_of_the_upstream_catalogue(
    client: RouterClient, emulator: Emulator
) -> None:
    expected = _emulator_json(emulator, "models")

    models = client.list_models()

    assert [m.id for m in models] == [m["id"] for m in expected]
    by_id = {m.id: m for m in models}
    gpt4o = by_id["openai/gpt-4o"]
    assert gpt4o.context_length > 0
    assert gpt4o.pricing.prompt
    assert gpt4o.supported_parameters


def test_list_models_filters_by_supported_parameters(
    client: RouterClient, emulator: Emulator
) -> None:
    every = client.list_models()
    wanted = ("tools",)

    kept = client.list_models(supported_parameters=wanted)

    assert kept
    assert {m.id for m in kept} == {m.id for m in every if "tools" in m.supported_parameters}


def test_list_endpoints_returns_the_models_endpoints_with_quantizations(
    client: RouterClient, emulator: Emulator
) -> None:
    expected = _emulator_json(emulator, "models/openai/gpt-4o/endpoints")["endpoints"]

    endpoints = client.list_endpoints("openai/gpt-4o")

    assert [e.tag for e in endpoints] == [e["tag"] for e in expected]
    assert [e.quantization_name for e in endpoints] == [e["quantization"] or "" for e in expected]
    quantizations = {e.tag: e.quantization for e in endpoints}
    assert quantizations["azure/swedencentral"] == Quantization.FP8
    assert quantizations["azure"] == Quantization.FP16
    assert all(e.provider_name and e.pricing.prompt for e in endpoints)


@pytest.mark.parametrize("model", ["not a model", "", "gpt-4o", "openai/gpt 4o"])
def test_list_endpoints_with_an_invalid_model_is_invalid_argument_naming_model(
    client: RouterClient, model: str, expect_error: Any
) -> None:
    with expect_error(InvalidArgumentError) as info:
        client.list_endpoints(model)

    assert [v.field for v in info.value.field_violations] == ["model"]


def test_list_endpoints_of_an_unknown_model_is_not_found(
    client: RouterClient, expect_error: Any
) -> None:
    with expect_error(NotFoundError) as info:
        client.list_endpoints("nobody/nothing")

    assert info.value.domain == "openrouter.ai"


@pytest.mark.parametrize("model", ["../..", "../models", "openai/..", "./x"])
def test_list_endpoints_never_lets_a_caller_pick_another_upstream_path(
    recorded_gateway: Gateway, recorder: RecordingUpstream, model: str, expect_error: Any
) -> None:
    """``../..`` matches the slug pattern; sent as a path it would leave ``/models``."""
    with (
        RouterClient(recorded_gateway.target, timeout=10) as client,
        expect_error(InvalidArgumentError) as info,
    ):
        client.list_endpoints(model)

    assert [v.field for v in info.value.field_violations] == ["model"]
    assert recorder.snapshot() == [], "nothing may have been sent upstream"
