"""OpenRouter JSON → proto (``routerpc_gateway.responses``).

Shapes follow ``shared/reference/openrouter-api.md`` §5 (completion), §6 (stream chunks) and §8
(models and endpoints), including the fields that are documented but absent from the OpenAPI
spec (``provider``, ``native_finish_reason``, ``annotations``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from google.protobuf import json_format

from routerpc import FinishReason, Quantization, pb
from routerpc_gateway import responses

TOOL_CALL = {
    "id": "call_abc",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
REASONING_DETAILS = [
    {
        "type": "reasoning.text",
        "text": "Look up the weather.",
        "signature": "sig",
        "format": "anthropic-claude-v1",
        "index": 0,
    },
    {"type": "reasoning.encrypted", "data": "ZW5j", "id": "rs_1", "format": "openai-responses-v1"},
]
ANNOTATIONS = [
    {
        "type": "url_citation",
        "url_citation": {
            "url": "https://example.com",
            "title": "Example",
            "start_index": 0,
            "end_index": 7,
        },
    }
]
USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 45,
    "total_tokens": 165,
    "cost": 0.00042,
    "is_byok": False,
    "prompt_tokens_details": {
        "cached_tokens": 100,
        "cache_write_tokens": 20,
        "audio_tokens": 3,
        "video_tokens": 0,
    },
    "completion_tokens_details": {
        "reasoning_tokens": 30,
        "audio_tokens": 5,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
    "cost_details": {
        "upstream_inference_cost": 0.0004,
        "upstream_inference_prompt_cost": 0.0001,
        "upstream_inference_completions_cost": 0.0003,
    },
    "server_tool_use_details": {"web_search_requests": 1},
}
LOGPROBS = {
    "content": [
        {
            "token": "Hi",
            "logprob": -0.01,
            "bytes": [72, 105],
            "top_logprobs": [{"token": "Hi", "logprob": -0.01, "bytes": [72, 105]}],
        }
    ],
    "refusal": None,
}
COMPLETION = {
    "id": "gen-1750000000-abcdef",
    "object": "chat.completion",
    "created": 1750000000,
    "model": "openai/gpt-4o",
    "provider": "OpenAI",
    "system_fingerprint": "fp_123",
    "service_tier": "default",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "It is sunny.",
                "reasoning": "Look up the weather.",
                "refusal": None,
                "reasoning_details": REASONING_DETAILS,
                "tool_calls": [TOOL_CALL],
                "annotations": ANNOTATIONS,
                "images": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}],
            },
            "finish_reason": "tool_calls",
            "native_finish_reason": "tool_use",
            "logprobs": LOGPROBS,
        }
    ],
    "usage": USAGE,
    "openrouter_metadata": {"strategy": "direct"},
}


# Completions -------------------------------------------------------------------------------


def test_completion_top_level() -> None:
    response = responses.chat_response(COMPLETION, quantization=Quantization.FP8)
    assert response.id == "gen-1750000000-abcdef"
    assert response.model == "openai/gpt-4o"
    assert response.provider == "OpenAI"
    assert response.quantization == Quantization.FP8
    assert response.created == 1750000000
    assert response.system_fingerprint == "fp_123"
    assert response.service_tier == "default"
    assert len(response.choices) == 1


def test_completion_choice_message_tool_calls_and_reasoning() -> None:
    choice = responses.chat_response(COMPLETION).choices[0]
    assert choice.index == 0
    assert choice.finish_reason == FinishReason.TOOL_CALLS
    assert choice.native_finish_reason == "tool_use"
    message = choice.message
    assert message.content == "It is sunny."
    assert message.reasoning == "Look up the weather."
    assert not message.HasField("refusal")  # null: not set
    assert [(c.id, c.name, c.arguments) for c in message.tool_calls] == [
        ("call_abc", "get_weather", '{"city": "Paris"}')
    ]
    assert json_format.MessageToDict(message.reasoning_details) == REASONING_DETAILS
    assert json_format.MessageToDict(message.annotations) == ANNOTATIONS
    assert json_format.MessageToDict(choice.logprobs) == LOGPROBS
    assert not choice.HasField("error")


def test_tool_only_message_has_no_content() -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [TOOL_CALL],
    }
    message = responses.chat_response(body).choices[0].message
    assert not message.HasField("content")
    assert not message.HasField("reasoning")
    assert not message.HasField("reasoning_details")
    assert len(message.tool_calls) == 1


def test_empty_string_content_is_kept_as_set() -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["message"] = {"role": "assistant", "content": "", "refusal": "No."}
    message = responses.chat_response(body).choices[0].message
    assert message.HasField("content")
    assert message.content == ""
    assert message.refusal == "No."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("error", FinishReason.ERROR),
        ("STOP", FinishReason.STOP),
        (None, FinishReason.UNSPECIFIED),
        ("", FinishReason.UNSPECIFIED),
        ("end_turn", FinishReason.UNSPECIFIED),  # a native value in the normalised field
    ],
)
def test_finish_reasons(raw: str | None, expected: FinishReason) -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["finish_reason"] = raw
    body["choices"][0]["native_finish_reason"] = "raw-" + str(raw)
    choice = responses.chat_response(body).choices[0]
    assert choice.finish_reason == expected
    assert choice.native_finish_reason == "raw-" + str(raw)

    chunk = responses.stream_chunk(
        {"id": "g", "choices": [{"index": 0, "delta": {}, "finish_reason": raw}]}
    )
    assert chunk.choices[0].finish_reason == expected


def test_every_finish_reason_has_a_wire_value() -> None:
    assert {m.name.lower() for m in FinishReason if m} == {
        "stop",
        "length",
        "tool_calls",
        "content_filter",
        "error",
    }


def test_missing_native_finish_reason_and_nullable_fields() -> None:
    body = {
        "id": "gen-1",
        "created": 1,
        "model": "m/x",
        "system_fingerprint": None,
        "service_tier": None,
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
    }
    response = responses.chat_response(body)
    assert response.choices[0].native_finish_reason == ""
    assert response.system_fingerprint == ""
    assert response.service_tier == ""
    assert response.provider == ""
    assert not response.HasField("usage")
    assert response.quantization == Quantization.UNSPECIFIED


def test_choice_error_interrupting_a_completion() -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["finish_reason"] = "error"
    body["choices"][0]["error"] = {"code": 502, "message": "Provider disconnected"}
    choice = responses.chat_response(body).choices[0]
    assert choice.finish_reason == FinishReason.ERROR
    assert (choice.error.code, choice.error.message) == (502, "Provider disconnected")
    assert choice.message.content == "It is sunny."  # partial content kept


def test_choice_error_with_a_string_code() -> None:
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["error"] = {"code": "server_error", "message": "boom"}
    choice = responses.chat_response(body).choices[0]
    assert (choice.error.code, choice.error.message) == (0, "boom")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"choices": None},
        {"choices": {"0": {}}},
        {"error": {"code": 502, "message": "x"}},
        {"choices": [None]},
        {"choices": ["text"]},
        {"choices": [{"message": "hello"}]},
        {"choices": [{"message": {"tool_calls": [None]}}]},
        {"choices": [{"message": {"tool_calls": [{"function": "f"}]}}]},
        {"choices": [], "usage": {"prompt_tokens_details": "none"}},
    ],
    ids=[
        "empty",
        "null-choices",
        "object-choices",
        "error-only",
        "null-choice",
        "string-choice",
        "string-message",
        "null-tool-call",
        "string-function",
        "string-usage-details",
    ],
)
def test_an_undocumented_completion_shape_is_a_value_error(body: dict[str, Any]) -> None:
    """The servicer maps ``ValueError`` to INTERNAL / UPSTREAM_BAD_RESPONSE; anything else
    would surface to the caller as UNKNOWN."""
    with pytest.raises(ValueError, match=r"choices|shape"):
        responses.chat_response(body)


@pytest.mark.parametrize(
    "body",
    [
        {"choices": [None]},
        {"choices": [{"delta": "x"}]},
        {"choices": [{"delta": {"tool_calls": [7]}}]},
        {"choices": [], "usage": {"completion_tokens_details": 3}},
    ],
    ids=["null-choice", "string-delta", "number-tool-call", "number-usage-details"],
)
def test_an_undocumented_chunk_shape_is_a_value_error(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="shape"):
        responses.stream_chunk(body)


# Usage -------------------------------------------------------------------------------------


def test_usage_full() -> None:
    usage = responses.usage(USAGE)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 45, 165)
    assert usage.HasField("cost")
    assert usage.cost == pytest.approx(0.00042)
    assert usage.cached_tokens == 100
    assert usage.cache_write_tokens == 20
    assert usage.prompt_audio_tokens == 3
    assert usage.reasoning_tokens == 30
    assert usage.completion_audio_tokens == 5
    assert usage.is_byok is False
    assert usage.HasField("upstream_inference_cost")
    assert usage.upstream_inference_cost == pytest.approx(0.0004)
    assert responses.chat_response(COMPLETION).usage == usage


def test_usage_minimal_and_nulls() -> None:
    usage = responses.usage(
        {
            "prompt_tokens": 1,
            "completion_tokens": 2,
            "total_tokens": 3,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
            "cost_details": {"upstream_inference_cost": None},
        }
    )
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1, 2, 3)
    assert not usage.HasField("cost")
    assert not usage.HasField("upstream_inference_cost")
    assert (usage.cached_tokens, usage.reasoning_tokens) == (0, 0)


def test_zero_cost_is_reported_not_dropped() -> None:
    usage = responses.usage(
        {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "cost": 0}
    )
    assert usage.HasField("cost")
    assert usage.cost == 0


def test_byok_and_odd_token_values() -> None:
    usage = responses.usage(
        {"prompt_tokens": 10.0, "completion_tokens": True, "total_tokens": "12", "is_byok": True}
    )
    assert usage.prompt_tokens == 10
    assert usage.completion_tokens == 0  # a boolean is not a count
    assert usage.total_tokens == 0  # neither is a string
    assert usage.is_byok is True


# Streaming ---------------------------------------------------------------------------------

CHUNK_HEAD = {
    "id": "gen-1750000000-stream",
    "object": "chat.completion.chunk",
    "created": 1750000000,
    "model": "anthropic/claude-sonnet-4",
    "provider": "Anthropic",
}


def _chunk(*choices: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**CHUNK_HEAD, "choices": list(choices), **extra}


def test_first_chunk_carries_role_and_identity() -> None:
    chunk = responses.stream_chunk(
        _chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}),
        quantization=Quantization.BF16,
    )
    assert chunk.id == "gen-1750000000-stream"
    assert chunk.model == "anthropic/claude-sonnet-4"
    assert chunk.provider == "Anthropic"
    assert chunk.created == 1750000000
    assert chunk.quantization == Quantization.BF16
    (choice,) = chunk.choices
    assert choice.delta.role == "assistant"
    assert choice.delta.HasField("content")
    assert choice.delta.content == ""
    assert choice.finish_reason == FinishReason.UNSPECIFIED
    assert not chunk.HasField("usage")


def test_content_and_reasoning_deltas() -> None:
    chunk = responses.stream_chunk(
        _chunk(
            {
                "index": 0,
                "delta": {
                    "content": "Hel",
                    "reasoning": "thinking",
                    "reasoning_details": REASONING_DETAILS[:1],
                    "refusal": None,
                },
            }
        )
    )
    delta = chunk.choices[0].delta
    assert (delta.content, delta.reasoning) == ("Hel", "thinking")
    assert not delta.HasField("refusal")
    assert json_format.MessageToDict(delta.reasoning_details) == REASONING_DETAILS[:1]


def test_null_content_delta_is_unset() -> None:
    delta = responses.stream_chunk(_chunk({"index": 0, "delta": {"content": None}})).choices[0]
    assert not delta.delta.HasField("content")


def test_tool_call_fragments_concatenate_by_index() -> None:
    events = [
        _chunk(
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        },
                        {
                            "index": 1,
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        },
                    ]
                },
            }
        ),
        _chunk(
            {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}
        ),
        _chunk(
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]},
            }
        ),
        _chunk(
            {
                "index": 0,
                "delta": {},
                "finish_reason": "tool_calls",
                "native_finish_reason": "tool_use",
            }
        ),
    ]
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for event in events:
        (choice,) = responses.stream_chunk(event).choices
        for fragment in choice.delta.tool_calls:
            call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or fragment.id
            call["name"] = call["name"] or fragment.name
            call["arguments"] += fragment.arguments
        if choice.finish_reason:
            finish = (choice.finish_reason, choice.native_finish_reason)
    assert calls == {
        0: {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        1: {"id": "call_2", "name": "get_time", "arguments": "{}"},
    }
    assert finish == (FinishReason.TOOL_CALLS, "tool_use")


def test_final_usage_chunk_has_no_choices() -> None:
    chunk = responses.stream_chunk(_chunk(usage=USAGE))
    assert list(chunk.choices) == []
    assert chunk.HasField("usage")
    assert chunk.usage.cost == pytest.approx(0.00042)
    assert chunk.usage.cached_tokens == 100
    assert chunk.usage.reasoning_tokens == 30


def test_mid_stream_error_chunk_choice_finishes_with_error() -> None:
    body = _chunk(
        {"index": 0, "delta": {"content": ""}, "finish_reason": "error"},
        error={"code": 502, "message": "Provider returned error"},
    )
    (choice,) = responses.stream_chunk(body).choices
    assert choice.finish_reason == FinishReason.ERROR


def test_debug_echo_chunk_is_harmless() -> None:
    chunk = responses.stream_chunk(_chunk(debug={"echo_upstream_body": {"model": "x"}}))
    assert list(chunk.choices) == []
    assert chunk.id == "gen-1750000000-stream"


# Models and endpoints ----------------------------------------------------------------------

PRICING = {
    "prompt": "0.0000025",
    "completion": "0.00001",
    "request": "0",
    "image": "0.003613",
    "input_cache_read": "0.00000125",
    "input_cache_write": "0.000003125",
    "internal_reasoning": "0",
    "web_search": "0.01",
    "discount": 0,
}
PRICING_KEPT = {k: v for k, v in PRICING.items() if k not in ("web_search", "discount")}

ENDPOINT = {
    "name": "OpenAI: GPT-4o",
    "model_id": "openai/gpt-4o",
    "model_name": "GPT-4o",
    "provider_name": "OpenAI",
    "tag": "openai",
    "quantization": "fp8",
    "context_length": 128000,
    "max_completion_tokens": 16384,
    "max_prompt_tokens": None,
    "pricing": PRICING,
    "supported_parameters": ["temperature", "tools", "response_format"],
    "status": 0,
    "uptime_last_5m": 100,
    "uptime_last_30m": 99.5,
    "uptime_last_1d": 99.9,
    "latency_last_30m": {"p50": 0.25, "p75": 0.35, "p90": 0.5, "p99": 0.85},
    "throughput_last_30m": {"p50": 80, "p75": 70, "p90": 50, "p99": 20},
    "supports_implicit_caching": True,
}


def test_endpoint_full() -> None:
    endpoint = responses.endpoint(ENDPOINT)
    assert endpoint.name == "OpenAI: GPT-4o"
    assert endpoint.provider_name == "OpenAI"
    assert endpoint.tag == "openai"
    assert endpoint.quantization == Quantization.FP8
    assert endpoint.quantization_name == "fp8"
    assert endpoint.context_length == 128000
    assert endpoint.max_completion_tokens == 16384
    assert json_format.MessageToDict(endpoint.pricing, preserving_proto_field_name=True) == {
        k: str(v) for k, v in PRICING_KEPT.items()
    }
    assert list(endpoint.supported_parameters) == ["temperature", "tools", "response_format"]
    assert endpoint.status == 0
    assert endpoint.uptime_last_30m == 99.5
    latency = endpoint.latency_last_30m
    assert (latency.p50, latency.p75, latency.p90, latency.p99) == (0.25, 0.35, 0.5, 0.85)
    throughput = endpoint.throughput_last_30m
    assert (throughput.p50, throughput.p99) == (80, 20)


def test_endpoint_unauthenticated_nulls() -> None:
    raw = {
        **ENDPOINT,
        "max_completion_tokens": None,
        "uptime_last_30m": None,
        "latency_last_30m": None,
        "throughput_last_30m": None,
        "status": -3,
    }
    endpoint = responses.endpoint(raw)
    assert not endpoint.HasField("max_completion_tokens")
    assert not endpoint.HasField("uptime_last_30m")
    assert not endpoint.HasField("latency_last_30m")
    assert not endpoint.HasField("throughput_last_30m")
    assert endpoint.status == -3


QUANTIZATIONS = {
    "int4": Quantization.INT4,
    "int8": Quantization.INT8,
    "fp4": Quantization.FP4,
    "mxfp4": Quantization.MXFP4,
    "nvfp4": Quantization.NVFP4,
    "fp6": Quantization.FP6,
    "fp8": Quantization.FP8,
    "mxfp8": Quantization.MXFP8,
    "fp16": Quantization.FP16,
    "bf16": Quantization.BF16,
    "fp32": Quantization.FP32,
    "unknown": Quantization.UNKNOWN,  # the provider did not disclose: a real, known value
}


@pytest.mark.parametrize(("name", "value"), QUANTIZATIONS.items())
def test_known_quantization_strings(name: str, value: Quantization) -> None:
    endpoint = responses.endpoint({**ENDPOINT, "quantization": name})
    assert (endpoint.quantization, endpoint.quantization_name) == (value, name)
    assert responses.quantization_of(name) == value
    assert responses.quantization_of(name.upper()) == value


def test_the_quantization_table_covers_the_enum() -> None:
    assert set(QUANTIZATIONS.values()) == {q for q in Quantization if q}


@pytest.mark.parametrize("name", ["fp2", "int3", "mxfp6", "q4_k_m", "FP-8", "unspecified"])
def test_unknown_quantization_string_keeps_its_name(name: str) -> None:
    endpoint = responses.endpoint({**ENDPOINT, "quantization": name})
    assert endpoint.quantization == Quantization.UNSPECIFIED
    assert endpoint.quantization_name == name


@pytest.mark.parametrize("raw", [None, ""])
def test_missing_quantization(raw: str | None) -> None:
    endpoint = responses.endpoint({**ENDPOINT, "quantization": raw})
    assert (endpoint.quantization, endpoint.quantization_name) == (Quantization.UNSPECIFIED, "")


MODEL = {
    "id": "openai/gpt-4o",
    "canonical_slug": "openai/gpt-4o-2024-05-13",
    "name": "OpenAI: GPT-4o",
    "created": 1715367049,
    "description": "GPT-4o is OpenAI's flagship model.",
    "context_length": 128000,
    "architecture": {
        "modality": "text+image->text",
        "input_modalities": ["text", "image", "file"],
        "output_modalities": ["text"],
        "tokenizer": "GPT",
        "instruct_type": None,
    },
    "pricing": PRICING,
    "top_provider": {
        "context_length": 128000,
        "max_completion_tokens": 16384,
        "is_moderated": True,
    },
    "per_request_limits": None,
    "supported_parameters": ["temperature", "tools"],
    "default_parameters": {"temperature": None},
}


def test_model_full() -> None:
    model = responses.model(MODEL)
    assert (model.id, model.name, model.created) == ("openai/gpt-4o", "OpenAI: GPT-4o", 1715367049)
    assert model.description == "GPT-4o is OpenAI's flagship model."
    assert model.context_length == 128000
    assert list(model.input_modalities) == ["text", "image", "file"]
    assert list(model.output_modalities) == ["text"]
    assert list(model.supported_parameters) == ["temperature", "tools"]
    assert model.pricing.prompt == "0.0000025"
    assert model.pricing.internal_reasoning == "0"


def test_model_nullable_fields() -> None:
    model = responses.model(
        {"id": "x/y", "context_length": None, "architecture": None, "pricing": None}
    )
    assert (model.id, model.context_length, model.created) == ("x/y", 0, 0)
    assert list(model.input_modalities) == []
    assert model.pricing == pb.Pricing()


def test_numeric_prices_become_strings_and_nulls_are_dropped() -> None:
    model = responses.model({"id": "x/y", "pricing": {"prompt": 0, "completion": None}})
    assert model.pricing.prompt == "0"
    assert model.pricing.completion == ""
