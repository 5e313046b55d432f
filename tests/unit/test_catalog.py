"""What the catalogue says about the quantization a completion was served at."""

from __future__ import annotations

import asyncio
from typing import Any

from routerpc._gen import enums
from routerpc_gateway.catalog import Catalog

Q = enums.Quantization


def _endpoint(provider: str, tag: str, quantization: str) -> dict[str, Any]:
    return {"provider_name": provider, "tag": tag, "quantization": quantization}


class _Endpoints:
    """An upstream whose endpoints list can change between fetches; counts the fetches."""

    def __init__(self, *endpoints: dict[str, Any]) -> None:
        self.endpoints = list(endpoints)
        self.fetches = 0

    async def get(self, path: str, *, seconds: float, api_key: str | None = None) -> Any:
        self.fetches += 1
        return {"data": {"endpoints": list(self.endpoints)}}


def _served(
    catalog: Catalog, provider: str, requested: tuple[int, ...] = (), model: str = "a/m"
) -> Any:
    return asyncio.run(catalog.served_quantization(model, provider, requested, seconds=1.0))


def test_one_endpoint_of_the_provider_names_its_quantization_by_name_or_tag() -> None:
    catalog = Catalog(_Endpoints(_endpoint("DeepInfra", "deepinfra/fp8", "fp8")), ttl=60)  # type: ignore[arg-type]

    assert _served(catalog, "DeepInfra") == Q.FP8
    assert _served(catalog, "deepinfra") == Q.FP8
    assert _served(catalog, "DEEPINFRA/FP8") == Q.FP8
    assert _served(catalog, "Together") == Q.UNSPECIFIED


def test_several_quantizations_of_one_provider_are_unspecified_unless_the_filter_leaves_one() -> (
    None
):
    upstream = _Endpoints(
        _endpoint("DeepInfra", "deepinfra/fp8", "fp8"),
        _endpoint("DeepInfra", "deepinfra/bf16", "bf16"),
    )
    catalog = Catalog(upstream, ttl=60)  # type: ignore[arg-type]

    assert _served(catalog, "DeepInfra") == Q.UNSPECIFIED
    assert _served(catalog, "DeepInfra", (Q.BF16, Q.FP4)) == Q.BF16
    assert _served(catalog, "deepinfra/fp8", (Q.BF16,)) == Q.UNSPECIFIED
    assert _served(catalog, "DeepInfra", (Q.FP4,)) == Q.UNSPECIFIED


def test_a_refetched_list_is_read_afresh_and_model_variants_share_the_base_list() -> None:
    upstream = _Endpoints(_endpoint("DeepInfra", "deepinfra", "fp8"))
    catalog = Catalog(upstream, ttl=0)  # type: ignore[arg-type]  # every lookup refetches

    assert _served(catalog, "DeepInfra", model="a/m:free") == Q.FP8
    upstream.endpoints = [_endpoint("DeepInfra", "deepinfra", "int4")]
    assert _served(catalog, "DeepInfra", model="a/m") == Q.INT4
    assert _served(catalog, "DeepInfra", model="a/m:free") == Q.INT4  # no answer outlives its list
    assert upstream.fetches == 3


def test_a_failed_lookup_leaves_the_quantization_unspecified() -> None:
    class _Down:
        async def get(self, path: str, *, seconds: float, api_key: str | None = None) -> Any:
            raise OSError("upstream down")

    assert _served(Catalog(_Down(), ttl=60), "DeepInfra") == Q.UNSPECIFIED  # type: ignore[arg-type]


def test_within_its_ttl_a_list_is_fetched_once_for_every_variant_of_the_model() -> None:
    upstream = _Endpoints(_endpoint("DeepInfra", "deepinfra", "fp8"))
    catalog = Catalog(upstream, ttl=60)  # type: ignore[arg-type]

    assert _served(catalog, "DeepInfra", model="a/m") == Q.FP8
    upstream.endpoints = [_endpoint("DeepInfra", "deepinfra", "int4")]
    assert _served(catalog, "deepinfra", model="a/m:free") == Q.FP8  # the cached list
    assert _served(catalog, "Other", model="a/m") == Q.UNSPECIFIED
    assert _served(catalog, "DeepInfra", model="a/m") == Q.FP8  # asked again: the same answer
    assert upstream.fetches == 1
