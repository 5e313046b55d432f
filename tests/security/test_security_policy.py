"""Per-caller routing policy through the real gateway, judged by the body the emulator received.

One gateway, one callers file with a caller per policy (defaults only; limits in ``reject``
mode; the same limits in ``narrow`` mode). A refused request must not reach the upstream at all;
an allowed one must arrive shaped exactly as the policy says, and a request already narrower
than every ceiling must arrive exactly as the gateway would send it without any policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, seed_request
from security_support import Outcome, bearer, open_channel, rpc, rpc_stream, write_yaml

from routerpc import ChatRequestBuilder, MaxPrice, ProviderConfig, Quantization, pb
from routerpc._gen import enums
from routerpc_gateway import convert

pytestmark = pytest.mark.e2e

CEILINGS: dict[str, Any] = {
    "models": ["openai/*", "meta-llama/*"],
    "quantizations": ["fp8", "fp16", "bf16"],
    "ignored_providers": ["chutes"],
    "max_price": {"prompt": 5, "completion": 15},
    "max_tokens": 4096,
}
DEFAULTS = {"data_collection": "deny", "zdr": True, "quantizations": ["fp8", "fp16"]}


@pytest.fixture(scope="module")
def policy_gateway(
    module_gateways: Callable[..., Gateway],
    emulator: Emulator,
    gateway_key: str,
    digests: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Gateway:
    callers = {
        "team-defaults": {"token_sha256": [digests["policy-defaults"]], "defaults": DEFAULTS},
        "team-reject": {
            "token_sha256": [digests["policy-reject"]],
            "limits": {"mode": "reject", **CEILINGS},
        },
        "team-narrow": {
            "token_sha256": [digests["policy-narrow"]],
            "limits": {"mode": "narrow", **CEILINGS},
        },
    }
    path = write_yaml(tmp_path_factory.mktemp("policy") / "callers.yaml", {"callers": callers})
    return module_gateways(
        "policy", "--callers-file", str(path), upstream_url=emulator.base_url, key=gateway_key
    )


@pytest.fixture
def send(policy_gateway: Gateway, tokens: dict[str, str]) -> Callable[..., Outcome]:
    channel = open_channel(policy_gateway.target)
    stub = pb.RouterServiceStub(channel)

    def call(who: str, request: pb.ChatRequest, *, stream: bool = False) -> Outcome:
        metadata = bearer(tokens[f"policy-{who}"])
        if stream:
            return rpc_stream(
                stub.StreamChat, pb.StreamChatRequest(request=request), metadata=metadata
            )
        return rpc(stub.Chat, request, metadata=metadata)

    yield call
    channel.close()


def chat(model: str = "openai/gpt-4o", **fields: Any) -> pb.ChatRequest:
    request = ChatRequestBuilder().with_model(model).with_text("Hello!").build().proto
    provider = fields.pop("provider", None)
    if provider is not None:
        request.provider.CopyFrom(provider)
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    return request


def only_body(upstream: Emulator) -> dict[str, Any]:
    recorded = upstream.requests()
    assert len(recorded) == 1, f"expected exactly one upstream request, got {len(recorded)}"
    body: dict[str, Any] = recorded[0]["body"]
    return body


def denied(outcome: Outcome, rule: str) -> None:
    assert outcome.code == grpc.StatusCode.PERMISSION_DENIED, outcome.text
    assert outcome.reason == "POLICY_VIOLATION"
    assert outcome.info.get("rule") == rule, outcome.info


# Defaults -------------------------------------------------------------------------------------


def test_defaults_fill_an_unset_provider(send: Callable[..., Outcome], upstream: Emulator) -> None:
    outcome = send("defaults", chat())
    assert outcome.ok, outcome.text
    assert only_body(upstream)["provider"] == {
        "data_collection": "deny",
        "zdr": True,
        "quantizations": ["fp8", "fp16"],
    }


def test_a_value_the_request_set_wins_over_a_default(
    send: Callable[..., Outcome], upstream: Emulator
) -> None:
    mine = ProviderConfig(
        data_collection=enums.DataCollection.ALLOW, zdr=False, quantizations=[Quantization.FP16]
    )
    outcome = send("defaults", chat(provider=mine))
    assert outcome.ok, outcome.text
    assert only_body(upstream)["provider"] == {
        "data_collection": "allow",
        "zdr": False,
        "quantizations": ["fp16"],
    }

    upstream.clear()
    assert send("defaults", seed_request().proto).ok  # the README's request: fp8 + fp16 set
    provider = only_body(upstream)["provider"]
    assert provider == {"data_collection": "deny", "zdr": True, "quantizations": ["fp8", "fp16"]}


# Limits, reject mode --------------------------------------------------------------------------

REJECTED: list[tuple[str, pb.ChatRequest, str]] = [
    (
        "quantization-outside",
        chat(provider=ProviderConfig(quantizations=[Quantization.INT4, Quantization.FP8])),
        "limits.quantizations",
    ),
    ("model-outside", chat("anthropic/claude-sonnet-4.5"), "limits.models"),
    (
        "fallback-model-outside",
        chat(models=["anthropic/claude-sonnet-4.5"]),
        "limits.models",
    ),
    (
        "max-price-above",
        chat(provider=ProviderConfig(max_price=MaxPrice(prompt=20))),
        "limits.max_price.prompt",
    ),
    (
        "max-price-completion-above",
        chat(provider=ProviderConfig(max_price=MaxPrice(prompt=1, completion=15.5))),
        "limits.max_price.completion",
    ),
    ("max-tokens-above", chat(max_tokens=10000), "limits.max_tokens"),
    ("max-completion-tokens-above", chat(max_completion_tokens=4097), "limits.max_tokens"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["Chat", "StreamChat"])
@pytest.mark.parametrize(
    ("request_", "rule"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED]
)
def test_reject_mode_refuses_and_sends_nothing(
    send: Callable[..., Outcome],
    upstream: Emulator,
    request_: pb.ChatRequest,
    rule: str,
    stream: bool,
) -> None:
    outcome = send("reject", request_, stream=stream)
    denied(outcome, rule)
    assert rule in outcome.details
    assert upstream.requests() == [], "a refused request never reaches the upstream"


def test_reject_mode_writes_the_ceilings_where_the_request_is_silent(
    send: Callable[..., Outcome], upstream: Emulator
) -> None:
    outcome = send("reject", chat(provider=ProviderConfig(ignore=["novita"])))
    assert outcome.ok, outcome.text
    body = only_body(upstream)
    assert body["provider"] == {
        "ignore": ["novita", "chutes"],
        "quantizations": ["fp8", "fp16", "bf16"],
        "max_price": {"prompt": 5, "completion": 15},
    }
    assert body["max_completion_tokens"] == 4096
    assert "max_tokens" not in body


def test_reject_mode_keeps_a_request_within_the_ceilings(
    send: Callable[..., Outcome], upstream: Emulator
) -> None:
    narrower = chat(
        provider=ProviderConfig(
            quantizations=[Quantization.FP8],
            ignore=["chutes"],
            max_price=MaxPrice(prompt=4, completion=14),
        ),
        max_tokens=64,
        models=["openai/gpt-4o-mini"],
    )
    outcome = send("reject", narrower)
    assert outcome.ok, outcome.text
    assert only_body(upstream) == json.loads(convert.encode_chat(narrower, stream=False))


# Limits, narrow mode --------------------------------------------------------------------------


def test_narrow_mode_intersects_lowers_and_drops(
    send: Callable[..., Outcome], upstream: Emulator
) -> None:
    wide = chat(
        provider=ProviderConfig(
            quantizations=[Quantization.INT4, Quantization.FP8],
            max_price=MaxPrice(prompt=20, completion=10),
        ),
        max_tokens=10000,
        models=["anthropic/claude-sonnet-4.5", "openai/gpt-4o-mini"],
    )
    outcome = send("narrow", wide)
    assert outcome.ok, outcome.text
    body = only_body(upstream)
    assert body["provider"] == {
        "ignore": ["chutes"],
        "quantizations": ["fp8"],
        "max_price": {"prompt": 5, "completion": 10},
    }
    assert body["models"] == ["openai/gpt-4o-mini"]
    assert body["max_tokens"] == 4096


def test_narrow_mode_never_widens(send: Callable[..., Outcome], upstream: Emulator) -> None:
    narrower = chat(
        provider=ProviderConfig(
            quantizations=[Quantization.FP16],
            ignore=["chutes", "novita"],
            max_price=MaxPrice(prompt=3, completion=12),
        ),
        max_completion_tokens=128,
    )
    outcome = send("narrow", narrower, stream=True)
    assert outcome.ok, outcome.text
    assert only_body(upstream) == json.loads(convert.encode_chat(narrower, stream=True))


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (chat(provider=ProviderConfig(quantizations=[Quantization.INT4])), "limits.quantizations"),
        (chat("anthropic/claude-sonnet-4.5"), "limits.models"),
    ],
    ids=["nothing-left", "primary-model"],
)
def test_narrow_mode_still_refuses_what_cannot_be_narrowed(
    send: Callable[..., Outcome], upstream: Emulator, request_: pb.ChatRequest, rule: str
) -> None:
    denied(send("narrow", request_), rule)
    assert upstream.requests() == []


# extra_body cannot carry what the policy governs ----------------------------------------------

ESCAPES: list[dict[str, Any]] = [
    {"provider": {"quantizations": ["int4"]}},
    {"max_tokens": 100000},
    {"max_completion_tokens": 100000},
    {"models": ["anthropic/claude-sonnet-4.5"]},
    {"model": "anthropic/claude-sonnet-4.5"},
]


@pytest.mark.parametrize("stream", [False, True], ids=["Chat", "StreamChat"])
@pytest.mark.parametrize("extra", ESCAPES, ids=[next(iter(e)) for e in ESCAPES])
def test_extra_body_cannot_bypass_the_policy(
    send: Callable[..., Outcome], upstream: Emulator, extra: dict[str, Any], stream: bool
) -> None:
    request = chat()
    request.extra_body.update(extra)
    field = ("request." if stream else "") + f"extra_body.{next(iter(extra))}"
    outcome = send("reject", request, stream=stream)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome.text
    assert field in outcome.details
    assert outcome.error is not None
    assert [v.field for v in outcome.error.field_violations] == [field]
    assert upstream.requests() == []


def test_extra_body_may_still_add_unnamed_fields(
    send: Callable[..., Outcome], upstream: Emulator
) -> None:
    request = chat()
    request.extra_body.update({"x_experimental": {"a": 1}})
    outcome = send("reject", request)
    assert outcome.ok, outcome.text
    body = only_body(upstream)
    assert body["x_experimental"] == {"a": 1}
    assert body["provider"]["quantizations"] == ["fp8", "fp16", "bf16"], "and the policy applied"
