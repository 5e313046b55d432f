"""Routing as pure functions: preferences + bundled catalogue -> candidates or a 404 failure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from routerpc_emulator.catalogue import default_catalogue
from routerpc_emulator.chat_request import RequestError, parse_chat_request
from routerpc_emulator.routing import (
    ProviderPreferences,
    RoutePlan,
    RoutingFailure,
    RoutingRequest,
    plan_route,
    quantization_matches,
)

GPT4O = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini"
LLAMA = "meta-llama/llama-3.3-70b-instruct"
CLAUDE = "anthropic/claude-sonnet-4.5"
LLAMA_TAGS = {
    "deepinfra",
    "deepinfra/turbo",
    "together",
    "groq",
    "fireworks",
    "novita",
    "cerebras",
    "sambanova",
    "lambda",
    "chutes",
}


def route(
    models: tuple[str, ...] | str = LLAMA,
    parameters: frozenset[str] = frozenset(),
    prompt_tokens: int = 0,
    max_output_tokens: int | None = None,
    **prefs: Any,
) -> RoutePlan | RoutingFailure:
    request = RoutingRequest(
        models=(models,) if isinstance(models, str) else models,
        provider=ProviderPreferences(**prefs),
        parameters=parameters,
        prompt_tokens=prompt_tokens,
        max_output_tokens=max_output_tokens,
    )
    return plan_route(request, default_catalogue())


def ok(result: RoutePlan | RoutingFailure) -> RoutePlan:
    assert isinstance(result, RoutePlan), result
    return result


def failed(result: RoutePlan | RoutingFailure) -> RoutingFailure:
    assert isinstance(result, RoutingFailure), result
    return result


def tags(result: RoutePlan | RoutingFailure) -> list[str]:
    return [candidate.endpoint.tag for candidate in ok(result).candidates]


def route_body(body: dict[str, Any]) -> RoutePlan | RoutingFailure:
    return plan_route(parse_chat_request(body).routing, default_catalogue())


def body(model: str = LLAMA, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


# --- quantization -----------------------------------------------------------------------------


def test_quantization_filter_keeps_only_listed_quantizations_for_gpt_4o() -> None:
    plan = ok(route(GPT4O, quantizations=("fp8", "fp16")))
    assert {c.endpoint.quantization for c in plan.candidates} == {"fp8", "fp16"}
    assert tags(plan) == ["azure/swedencentral", "azure"]


def test_quantization_filter_on_llama_admits_each_listed_precision() -> None:
    assert set(tags(route(quantizations=("bf16",)))) == {"novita", "sambanova"}
    assert set(tags(route(quantizations=("int4",)))) == {"chutes"}
    assert set(tags(route(quantizations=("fp16",)))) == {"fireworks", "cerebras"}


def test_fp4_filter_admits_nvfp4_family_member_but_mxfp4_filter_does_not() -> None:
    assert tags(route(quantizations=("fp4",))) == ["deepinfra/turbo"]
    assert isinstance(route(quantizations=("mxfp4",)), RoutingFailure)
    assert quantization_matches(["fp8"], "mxfp8")
    assert not quantization_matches(["mxfp8"], "fp8")


def test_null_quantization_matches_only_unknown() -> None:
    assert tags(route(quantizations=("unknown",))) == ["groq"]
    assert "groq" not in tags(route(quantizations=("fp16", "fp8", "bf16")))


def test_quantization_exhaustion_names_the_quantization_filter() -> None:
    failure = failed(route(GPT4O, quantizations=("int4",)))
    assert failure.status == 404
    assert failure.code == "constraint_filtered"
    assert failure.excluded_by == ("quantization",)
    assert failure.constraint is not None
    assert failure.constraint.field == "quantizations"
    assert "requested [int4]" in failure.constraint.detail
    assert "fp8" in failure.constraint.detail
    assert "fp16" in failure.constraint.detail
    assert "quantization" in failure.message
    assert failure.message.startswith(
        "No endpoints found matching your routing preferences for openai/gpt-4o."
    )


def test_exhaustion_error_body_has_openrouter_availability_shape() -> None:
    error = failed(route(GPT4O, quantizations=("int4",))).error_body()["error"]
    assert error["code"] == 404
    availability = error["availability"]
    assert availability["code"] == "constraint_filtered"
    assert availability["retryable"] is False
    assert availability["requested_models"] == [GPT4O]
    assert availability["excluded_by"] == ["quantization"]
    assert availability["constraint"]["field"] == "quantizations"
    assert isinstance(error["metadata"], dict)


# --- only / ignore ---------------------------------------------------------------------------


def test_only_base_slug_matches_every_variant_of_that_provider() -> None:
    assert set(tags(route(only=("deepinfra",)))) == {"deepinfra", "deepinfra/turbo"}


def test_only_full_tag_matches_just_that_endpoint() -> None:
    assert tags(route(only=("deepinfra/turbo",))) == ["deepinfra/turbo"]


def test_only_accepts_display_name_case_insensitively() -> None:
    assert set(tags(route(GPT4O, only=("AZURE",)))) == {"azure", "azure/swedencentral"}
    assert set(tags(route(only=("SambaNova", "groq")))) == {"sambanova", "groq"}


def test_ignore_removes_provider_by_base_slug() -> None:
    remaining = set(tags(route(ignore=("deepinfra", "Chutes"))))
    assert remaining == LLAMA_TAGS - {"deepinfra", "deepinfra/turbo", "chutes"}


def test_only_exhaustion_reports_allowed_providers() -> None:
    failure = failed(route(GPT4O, only=("groq",)))
    assert failure.excluded_by == ("allowed_providers",)
    assert failure.constraint is not None
    assert failure.constraint.field == "only"
    assert failure.metadata["requested_providers"] == ["groq"]
    assert set(failure.metadata["available_providers"]) == {
        "openai",
        "azure",
        "azure/swedencentral",
    }


def test_ignoring_every_provider_reports_the_ignore_field() -> None:
    failure = failed(route(MINI, ignore=("openai", "azure")))
    assert failure.constraint is not None
    assert failure.constraint.field == "ignore"
    assert failure.excluded_by == ("allowed_providers",)


# --- max_price -------------------------------------------------------------------------------


def test_max_price_numbers_are_usd_per_million_tokens_and_inclusive() -> None:
    limits = {"prompt": Decimal("0.2"), "completion": Decimal("0.4")}
    assert set(tags(route(max_price=limits))) == {"deepinfra/turbo", "novita", "lambda", "chutes"}


@pytest.mark.parametrize(
    "max_price",
    [{"prompt": 0.2, "completion": 0.4}, {"prompt": "0.2", "completion": "0.4"}],
    ids=["numbers", "strings"],
)
def test_max_price_from_request_body_accepts_numbers_and_numeric_strings(
    max_price: dict[str, Any],
) -> None:
    plan = route_body(body(provider={"max_price": max_price}))
    assert set(tags(plan)) == {"deepinfra/turbo", "novita", "lambda", "chutes"}


def test_max_price_exhaustion_names_max_price_and_cheapest_offer() -> None:
    failure = failed(route(GPT4O, max_price={"prompt": Decimal(1)}))
    assert failure.excluded_by == ("max_price",)
    assert failure.constraint is not None
    assert failure.constraint.field == "max_price"
    assert "2.25" in failure.constraint.detail
    assert "max_price" in failure.message


def test_max_price_request_dimension_is_per_request() -> None:
    assert len(tags(route(max_price={"request": Decimal(0)}))) == len(LLAMA_TAGS)


def test_invalid_max_price_is_a_request_error() -> None:
    with pytest.raises(RequestError, match="max_price"):
        parse_chat_request(body(provider={"max_price": {"prompt": "cheap"}}))
    with pytest.raises(RequestError, match="max_price"):
        parse_chat_request(body(provider={"max_price": {"tokens": 1}}))


# --- data policy -----------------------------------------------------------------------------


def test_data_collection_deny_excludes_endpoints_that_train_or_retain() -> None:
    remaining = set(tags(route(data_collection="deny")))
    assert remaining == LLAMA_TAGS - {"novita", "chutes", "together", "lambda"}


def test_zdr_keeps_only_zero_data_retention_endpoints() -> None:
    assert set(tags(route(zdr=True))) == {"deepinfra", "deepinfra/turbo", "fireworks"}


def test_zdr_exhaustion_is_privacy_restricted() -> None:
    failure = failed(route(CLAUDE, only=("google-vertex",), zdr=True))
    assert failure.code == "privacy_restricted"
    assert failure.excluded_by == ("allowed_providers", "data_policy:zdr")
    assert failure.constraint is not None
    assert failure.constraint.field == "zdr"


def test_data_collection_deny_exhaustion_is_privacy_restricted() -> None:
    failure = failed(route(LLAMA, only=("chutes", "novita"), data_collection="deny"))
    assert failure.code == "privacy_restricted"
    assert "data_policy:training" in failure.excluded_by
    assert failure.constraint is not None
    assert failure.constraint.field == "data_collection"


# --- require_parameters ----------------------------------------------------------------------


def test_require_parameters_excludes_endpoints_lacking_a_requested_parameter() -> None:
    remaining = set(tags(route(require_parameters=True, parameters=frozenset({"tools"}))))
    assert remaining == LLAMA_TAGS - {"novita", "lambda", "chutes"}


def test_requested_parameters_are_ignored_without_require_parameters() -> None:
    assert set(tags(route(parameters=frozenset({"tools"})))) == LLAMA_TAGS


def test_json_schema_response_format_requires_structured_outputs() -> None:
    request = body(
        provider={"require_parameters": True},
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
    )
    assert set(tags(route_body(request))) == {"deepinfra", "together", "fireworks"}


def test_require_parameters_exhaustion_names_missing_parameter() -> None:
    failure = failed(route_body(body(GPT4O, top_k=5, provider={"require_parameters": True})))
    assert failure.excluded_by == ("require_parameters",)
    assert failure.constraint is not None
    assert failure.constraint.field == "require_parameters"
    assert "top_k" in failure.constraint.detail


# --- order / allow_fallbacks -----------------------------------------------------------------


def test_order_puts_listed_providers_first_in_list_order_then_the_rest() -> None:
    result = tags(route(order=("fireworks", "groq")))
    assert result[:2] == ["fireworks", "groq"]
    assert set(result) == LLAMA_TAGS


def test_order_with_allow_fallbacks_false_keeps_only_ordered_providers() -> None:
    assert tags(route(order=("groq", "fireworks"), allow_fallbacks=False)) == ["groq", "fireworks"]


def test_order_with_allow_fallbacks_false_and_no_match_fails_on_order() -> None:
    failure = failed(route(GPT4O, order=("groq",), allow_fallbacks=False))
    assert failure.constraint is not None
    assert failure.constraint.field == "order"
    assert failure.excluded_by == ("allowed_providers",)


def test_allow_fallbacks_false_without_order_keeps_a_single_endpoint() -> None:
    assert tags(route(allow_fallbacks=False)) == ["chutes"]


# --- sort ------------------------------------------------------------------------------------


def test_default_order_is_cheapest_first_and_deterministic() -> None:
    first = tags(route())
    assert first[0] == "chutes"
    assert first == tags(route())
    prices = [
        c.endpoint.price("prompt") + c.endpoint.price("completion") for c in ok(route()).candidates
    ]
    assert prices == sorted(prices)


def test_sort_price_orders_by_prompt_plus_completion() -> None:
    assert tags(route(GPT4O, sort="price")) == ["azure/swedencentral", "azure", "openai"]


def test_sort_throughput_puts_highest_p50_first() -> None:
    plan = ok(route(sort="throughput"))
    throughputs = [c.endpoint.throughput.p50 for c in plan.candidates]
    assert throughputs == sorted(throughputs, reverse=True)
    assert tags(plan)[0] == "cerebras"


def test_sort_latency_puts_lowest_p50_first() -> None:
    plan = ok(route(sort="latency"))
    latencies = [c.endpoint.latency.p50 for c in plan.candidates]
    assert latencies == sorted(latencies)
    assert tags(plan)[0] == "cerebras"


def test_sort_object_form_equals_string_form() -> None:
    as_object = route_body(body(provider={"sort": {"by": "latency", "partition": "model"}}))
    as_string = route_body(body(provider={"sort": "latency"}))
    assert tags(as_object) == tags(as_string)


def test_nitro_suffix_sorts_by_throughput_and_floor_by_price() -> None:
    assert tags(route_body(body(f"{LLAMA}:nitro")))[0] == "cerebras"
    assert tags(route_body(body(f"{GPT4O}:floor")))[0] == "azure/swedencentral"


def test_order_still_wins_over_sort() -> None:
    assert tags(route(sort="throughput", order=("chutes",)))[:2] == ["chutes", "cerebras"]


def test_preferred_min_throughput_moves_slow_endpoints_last_without_excluding() -> None:
    result = tags(route(preferred_min_throughput={"p50": 300.0}))
    assert set(result[:3]) == {"groq", "cerebras", "sambanova"}
    assert set(result) == LLAMA_TAGS


def test_unknown_sort_is_a_request_error() -> None:
    with pytest.raises(RequestError, match="sort"):
        parse_chat_request(body(provider={"sort": "cheapest"}))


def test_unknown_provider_field_is_a_request_error() -> None:
    with pytest.raises(RequestError, match="quantization"):
        parse_chat_request(body(provider={"quantization": ["fp8"]}))


# --- context limits --------------------------------------------------------------------------


def test_max_tokens_beyond_an_endpoint_limit_excludes_it() -> None:
    assert set(tags(route(max_output_tokens=100_000))) == {"novita", "lambda", "chutes"}


def test_max_tokens_beyond_every_limit_names_context_length() -> None:
    failure = failed(route(GPT4O, max_output_tokens=50_000))
    assert failure.excluded_by == ("context_length",)


# --- model fallbacks -------------------------------------------------------------------------


def test_unknown_primary_model_falls_back_to_models_list() -> None:
    plan = ok(route(("nobody/nothing", MINI)))
    assert {c.model.id for c in plan.candidates} == {MINI}
    assert [f.model for f in plan.skipped] == ["nobody/nothing"]


def test_filtered_primary_model_falls_back_to_next_model() -> None:
    plan = ok(route((GPT4O, LLAMA), quantizations=("int4",)))
    assert plan.first.model.id == LLAMA
    assert plan.first.endpoint.tag == "chutes"


def test_fallback_models_come_after_primary_endpoints_by_default() -> None:
    plan = ok(route((GPT4O, MINI), sort="price"))
    models = [c.model.id for c in plan.candidates]
    assert models == [GPT4O] * 3 + [MINI] * 2


def test_partition_none_lets_a_cheaper_fallback_model_win() -> None:
    plan = ok(route((GPT4O, MINI), sort="price", partition="none"))
    assert plan.first.model.id == MINI


def test_all_unknown_models_answer_no_endpoints_for_the_primary() -> None:
    failure = failed(route(("nobody/nothing", "nobody/else")))
    assert failure.code == "no_endpoints"
    assert failure.message == "No endpoints found for nobody/nothing."
    assert failure.requested_models == ("nobody/nothing", "nobody/else")
    assert failure.excluded_by == ()


def test_unknown_primary_and_filtered_fallback_reports_the_filter() -> None:
    failure = failed(route(("nobody/nothing", GPT4O), quantizations=("int4",)))
    assert failure.code == "constraint_filtered"
    assert failure.excluded_by == ("quantization",)
    assert failure.requested_models == ("nobody/nothing", GPT4O)
    assert failure.metadata["previous_errors"][0]["model"] == "nobody/nothing"


def test_parse_strips_variant_and_fault_suffixes_and_dedupes_models() -> None:
    parsed = parse_chat_request(
        body(f"{GPT4O}:free~fault=rate-limit", models=[GPT4O, f"{MINI}:nitro"])
    )
    assert parsed.routing.models == (GPT4O, MINI)
    assert parsed.model_fault == "rate-limit"


def test_request_without_model_uses_models_or_the_default_model() -> None:
    messages = [{"role": "user", "content": "x"}]
    assert parse_chat_request({"messages": messages, "models": [LLAMA]}).routing.models == (LLAMA,)
    assert parse_chat_request({"messages": messages}).routing.models == (MINI,)
