"""Contract: every body the gateway sends validates against OpenRouter's own OpenAPI schema.

The schema is ``components.schemas.ChatRequest`` of the official spec
(``shared/reference/openrouter-openapi.yaml``, OpenAPI 3.1, whose schemas are JSON Schema
2020-12), validated with ``Draft202012Validator`` and every ``$ref`` resolved against the whole
spec document. Each body is checked in two readings:

* **published**: the spec as OpenRouter wrote it. ``ChatRequest`` itself is open (no
  ``additionalProperties: false``), so top-level ``extra_body`` additions such as ``transforms``
  pass, while the keys the spec does name are type-checked (``provider`` is closed by the spec).
* **closed**: the same schemas, except that an object schema declaring ``properties`` may hold
  nothing else (``unevaluatedProperties: false``). Only the typed part of the body (without
  ``extra_body``) is checked this way: a key the gateway invents or misspells (``schema_`` for
  ``schema``, ``maxPrice``) passes the published reading but fails this one.

Where the spec is known to be incomplete or to disagree with the documented API
(``shared/reference/openrouter-api.md`` §0 and §9) ``OVERLAYS`` patches it, one explicit,
commented change each; ``test_overlay_is_still_needed`` proves every patch still makes the
difference it claims, so the list cannot outlive the disagreement it works around. Any other
mismatch is a gateway bug.

The spec is found at ``$ROUTERPC_SHARED_DIR/reference/openrouter-openapi.yaml`` when that
variable is set, else in ``shared/`` beside the repository checkout (``../shared``).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from routerpc import (
    ChatRequest,
    ChatRequestBuilder,
    ImageDetail,
    InvalidArgumentError,
    Quantization,
    ReasoningEffort,
    ReasoningSummary,
    Role,
    ServiceTier,
    SortStrategy,
    ToolChoiceMode,
    pb,
)
from routerpc_gateway import convert

SHARED_DIR_ENV = "ROUTERPC_SHARED_DIR"
SPEC_URI = "urn:routerpc:openrouter-openapi"
"""Base URI the spec document is registered under, so ``#/components/schemas/X`` resolves."""


def shared_dir() -> Path:
    """``$ROUTERPC_SHARED_DIR`` if set, else ``shared/`` beside the repository checkout."""
    configured = os.environ.get(SHARED_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared"


def spec_path() -> Path:
    return shared_dir() / "reference" / "openrouter-openapi.yaml"


@cache
def published_spec() -> dict[str, Any]:
    path = spec_path()
    if not path.is_file():
        pytest.fail(
            f"OpenRouter OpenAPI spec not found at {path}; clone the shared reference folder "
            f"beside the repository or set {SHARED_DIR_ENV}",
            pytrace=False,
        )
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


# Overlays ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlay:
    """One explicit patch of the published spec, with the bodies that show it is needed."""

    name: str
    patch: Callable[[dict[str, Any]], None]
    """Edits ``components.schemas`` in place."""
    witnesses: tuple[dict[str, Any], ...]
    """Top-level fields the gateway sends that the unpatched spec rejects (one case each)."""
    closed: bool
    """The reading in which the unpatched spec rejects the witnesses."""


_MAX_PRICE_CAPS = ("prompt", "completion", "image", "audio", "request")


def _max_price_numbers(schemas: dict[str, Any]) -> None:
    # SPEC types every `provider.max_price` cap as a *string*; DOCS (provider-selection) send
    # numbers (`{"prompt": 1, "completion": 2}`), AISDK types them `number | string`, and
    # SPEC-hist 2025-09 allowed either (openrouter-api.md §3.1, §9.4). The gateway sends JSON
    # numbers by product decision (provider.proto `MaxPrice`). Accept a non-negative number
    # *besides* the published string form; nothing else about `provider` is relaxed.
    caps = schemas["ProviderPreferences"]["properties"]["max_price"]["properties"]
    for name in _MAX_PRICE_CAPS:
        caps[name] = {"anyOf": [caps[name], {"type": "number", "minimum": 0}]}


def _reasoning_documented_fields(schemas: dict[str, Any]) -> None:
    # DOCS (guides/best-practices/reasoning-tokens.mdx; openrouter-api.md §2.6, §9.1) document
    # `reasoning.max_tokens`, `reasoning.exclude` and `reasoning.enabled` for chat completions;
    # SPEC's chat `reasoning` names only `effort` and `summary` (it has `max_tokens` only on the
    # Responses API). The published reading accepts them untyped (the object is open); the closed
    # reading needs them declared, and declaring them type-checks them in both readings.
    fields = schemas["ChatRequest"]["properties"]["reasoning"]["properties"]
    fields["max_tokens"] = {"type": "integer", "minimum": 1}
    fields["exclude"] = {"type": "boolean"}
    fields["enabled"] = {"type": "boolean"}


OVERLAYS: tuple[Overlay, ...] = (
    Overlay(
        name="max_price-numbers",
        patch=_max_price_numbers,
        witnesses=tuple({"provider": {"max_price": {cap: 1}}} for cap in _MAX_PRICE_CAPS),
        closed=False,
    ),
    Overlay(
        name="reasoning-documented-fields",
        patch=_reasoning_documented_fields,
        witnesses=(
            {"reasoning": {"max_tokens": 2048}},
            {"reasoning": {"exclude": True}},
            {"reasoning": {"enabled": False}},
        ),
        closed=True,
    ),
)


# Validators --------------------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_SINGLE = (
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
)


def close_objects(schema: Any) -> None:
    """The closed reading: forbid undeclared keys wherever a schema declares ``properties``.

    Schemas that already say what extra keys may hold (``additionalProperties``: JSON Schema
    blobs, ``metadata``, ``trace``, ``image_config``) are left alone, and so are schemas with no
    declared properties. Walks schema keywords only, never ``example`` values.
    """
    if not isinstance(schema, dict):
        return
    if (
        schema.get("properties")
        and "additionalProperties" not in schema
        and "unevaluatedProperties" not in schema
    ):
        schema["unevaluatedProperties"] = False
    for keyword in _SCHEMA_MAPS:
        for sub in (schema.get(keyword) or {}).values():
            close_objects(sub)
    for keyword in _SCHEMA_LISTS:
        for sub in schema.get(keyword) or []:
            close_objects(sub)
    for keyword in _SCHEMA_SINGLE:
        close_objects(schema.get(keyword))


@cache
def validator(*, closed: bool, overlays: tuple[str, ...]) -> Draft202012Validator:
    """A validator for ``ChatRequest`` in one reading, with the named overlays applied."""
    document = copy.deepcopy(published_spec())
    schemas = document["components"]["schemas"]
    for overlay in OVERLAYS:
        if overlay.name in overlays:
            overlay.patch(schemas)
    if closed:
        for schema in schemas.values():
            close_objects(schema)
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource(contents=document, specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/ChatRequest"}, registry=registry
    )


ALL_OVERLAYS = tuple(o.name for o in OVERLAYS)


def problems(body: Any, *, closed: bool, overlays: tuple[str, ...] = ALL_OVERLAYS) -> list[str]:
    """Every schema violation of ``body``, as readable lines (empty when valid)."""
    errors = validator(closed=closed, overlays=overlays).iter_errors(body)
    return [_describe(e) for e in sorted(errors, key=lambda e: list(e.absolute_path))]


def _describe(error: ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "(body)"
    lines = [f"{path}: {error.message}"]
    # oneOf/anyOf failures hide the real reason in their context; show the closest branches.
    for sub in sorted(error.context or [], key=lambda e: -len(e.absolute_path))[:4]:
        sub_path = "/".join(str(p) for p in sub.absolute_path)
        lines.append(f"    {sub_path}: {sub.message[:200]}")
    return "\n".join(lines)


# The requests --------------------------------------------------------------------------------

JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "units": {"type": "string", "enum": ["metric", "imperial"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}
REASONING_DETAILS = [
    {"type": "reasoning.text", "text": "2 and 2 make 4.", "format": "anthropic-claude-v1"},
    {"type": "reasoning.summary", "summary": "Added the numbers.", "index": 1},
    {"type": "reasoning.encrypted", "data": "ZW5jcnlwdGVk", "id": "rs_1"},
]
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"


def base() -> ChatRequestBuilder:
    return ChatRequestBuilder().with_model("openai/gpt-4o").with_text("Hello!")


def with_proto(builder: ChatRequestBuilder, change: Callable[[pb.ChatRequest], object]) -> Any:
    """Build, change what the builder has no method for, and validate again."""
    request = builder.build()
    change(request.proto)
    request.validate()
    return request


def _every_role() -> ChatRequest:
    call = pb.ToolCall(id="call_1", name="add", arguments='{"a": 2, "b": 2}')
    refusal = pb.Message(
        role=Role.ASSISTANT,  # type: ignore[arg-type]
        text="I can't help with that.",
        refusal="I can't help with that.",
        name="helper",
    )
    return (
        ChatRequestBuilder()
        .with_model("anthropic/claude-sonnet-4")
        .with_system("You are terse.")
        .with_developer("Answer with a number.")
        .with_user("What is 2 + 2?", name="alice")
        .with_assistant(
            tool_calls=[call], reasoning="Use the tool.", reasoning_details=REASONING_DETAILS
        )
        .with_tool_result("call_1", "4")
        .with_assistant("4")
        .with_user("Now something forbidden.")
        .with_message(refusal)
        .with_user("Fine.")
        .build()
    )


def _content_parts() -> ChatRequest:
    parts = [
        pb.ContentPart(text="Describe these.", cache_control=pb.CacheControl()),
        pb.ContentPart(text="Long shared context.", cache_control=pb.CacheControl(ttl="1h")),
        pb.ContentPart(text="More context.", cache_control=pb.CacheControl(ttl="5m")),
        pb.ContentPart(image_url=pb.ImageUrl(url="https://example.com/a.png")),
        *(
            pb.ContentPart(image_url=pb.ImageUrl(url=PNG, detail=detail))
            for detail in (ImageDetail.AUTO, ImageDetail.LOW, ImageDetail.HIGH)
        ),
        pb.ContentPart(
            image_url=pb.ImageUrl(url="https://example.com/b.png", detail=ImageDetail.ORIGINAL)
        ),
        pb.ContentPart(input_audio=pb.InputAudio(data="UklGRiQAAABXQVZF", format="wav")),
        pb.ContentPart(
            file=pb.FileInput(filename="paper.pdf", file_data="https://example.com/paper.pdf")
        ),
        pb.ContentPart(file=pb.FileInput(file_id="file-abc123")),
        pb.ContentPart(video_url=pb.VideoUrl(url="https://example.com/clip.mp4")),
    ]
    return ChatRequestBuilder().with_model("google/gemini-2.5-pro").with_user(parts).build()


def _media_helpers() -> ChatRequest:
    return (
        ChatRequestBuilder()
        .with_model("google/gemini-2.5-pro")
        .with_system([pb.ContentPart(text="Cached rules.", cache_control=pb.CacheControl())])
        .with_developer([pb.ContentPart(text="Be brief.")])
        .with_image("https://example.com/c.jpg", text="What is this?", detail="low")
        .with_file(file_data="data:application/pdf;base64,JVBERi0=", filename="a.pdf", text="Sum")
        .with_audio("SUQzBAAAAAAA", "mp3", text="Transcribe")
        .with_video("https://example.com/v.mp4", text="Describe")
        .with_assistant([pb.ContentPart(text="Earlier answer as parts.")])
        .with_user("Go on.")
        .build()
    )


def _function_tools() -> ChatRequest:
    builder = (
        base()
        .with_tool(
            "get_weather",
            description="Current weather for a city",
            parameters=JSON_SCHEMA,
            strict=True,
        )
        .with_tool("no_arguments")
        .with_tool("lenient", parameters={"type": "object"}, strict=False)
        .with_tool_choice("auto")
        .with_parallel_tool_calls(False)
    )
    cached = pb.Tool(
        function=pb.FunctionTool(name="cached_tool", description="Big tool"),
        cache_control=pb.CacheControl(ttl="1h"),
    )
    return with_proto(builder, lambda r: r.tools.append(cached))


def _server_tools() -> ChatRequest:
    builder = (
        base()
        .with_server_tool(
            "openrouter:web_search",
            {"max_results": 3, "engine": "exa", "allowed_domains": ["example.com"]},
        )
        .with_server_tool("openrouter:datetime", {"timezone": "Europe/Paris"})
        .with_server_tool("openrouter:web_fetch")
        .with_server_tool("openrouter:image_generation", {"model": "google/gemini-2.5-flash"})
        .with_tool("get_weather", parameters=JSON_SCHEMA)
    )
    return with_proto(
        builder,
        lambda r: r.tool_choice.CopyFrom(pb.ToolChoice(server_tool_type="openrouter:web_search")),
    )


def _plugins() -> ChatRequest:
    return (
        base()
        .with_plugin(
            "web",
            max_results=5,
            engine="exa",
            search_prompt="Sources:",
            include_domains=["example.com"],
        )
        .with_plugin("file-parser", pdf={"engine": "mistral-ocr"})
        .with_plugin("response-healing", enabled=True)
        .with_plugin("context-compression", enabled=False, engine="middle-out")
        .with_plugin("moderation")
        .with_plugin("auto-router", allowed_models=["openai/*"], cost_tier="low")
        .with_plugin("web-fetch", max_uses=2, allowed_domains=["example.com"])
        .with_plugin("pareto-router", min_coding_score=0.5, max_price=10)
        .build()
    )


def _provider_everything() -> ChatRequest:
    return (
        base()
        .with_provider_order("anthropic", "deepinfra/turbo", allow_fallbacks=False)
        .with_require_parameters(True)
        .with_data_collection("deny")
        .with_zdr(True)
        .with_enforce_distillable_text(True)
        .with_only_providers("anthropic", "deepinfra", "google-vertex/us-east5")
        .with_ignored_providers("azure")
        .with_quantizations(*(q for q in Quantization if q))
        .with_sort("throughput")
        .with_max_price(prompt=1, completion=2, image=0.01, audio=0.5, request=0.1)
        .with_preferred_min_throughput(50)
        .with_preferred_max_latency({"p50": 1, "p75": 2, "p90": 3, "p99": 5})
        .build()
    )


def _provider_object_sort() -> ChatRequest:
    return (
        base()
        .with_data_collection("allow")
        .with_allow_fallbacks(True)
        .with_zdr(False)
        .with_enforce_distillable_text(False)
        .with_require_parameters(False)
        .with_sort("latency", partition="none")
        .with_preferred_min_throughput({"p90": 20})
        .with_preferred_max_latency(1.5)
        .with_max_price(prompt=0, completion=0)
        .with_fallback_models("anthropic/claude-sonnet-4")
        .build()
    )


CASES: dict[str, Callable[[], ChatRequest]] = {
    "minimal-no-model": lambda: ChatRequestBuilder().with_text("Hello!").build(),
    "sampling-and-metadata": lambda: (
        base()
        .with_fallback_models("anthropic/claude-sonnet-4", "meta-llama/llama-3.3-70b-instruct")
        .with_temperature(0.7)
        .with_top_p(0.9)
        .with_top_k(40)
        .with_frequency_penalty(-0.5)
        .with_presence_penalty(0.5)
        .with_repetition_penalty(1.1)
        .with_min_p(0.05)
        .with_top_a(0.1)
        .with_seed(42)
        .with_max_tokens(256)
        .with_max_completion_tokens(512)
        .with_stop("\n\n", "END")
        .with_logit_bias({50256: -100, "1234": 2.5})
        .with_logprobs(True, top=5)
        .with_parallel_tool_calls(True)
        .with_end_user("user-123")
        .with_session_id("session-456")
        .with_metadata(team="search", ticket="T-1")
        .with_modalities("text", "image", "audio")
        .with_service_tier("flex")
        .build()
    ),
    "explicit-zeros-and-false": lambda: (
        base()
        .with_temperature(0)
        .with_top_p(0)
        .with_top_k(0)
        .with_frequency_penalty(0)
        .with_presence_penalty(0)
        .with_repetition_penalty(0)
        .with_min_p(0)
        .with_top_a(0)
        .with_seed(0)
        .with_logprobs(True, top=0)
        .with_parallel_tool_calls(False)
        .build()
    ),
    "logprobs-false": lambda: base().with_logprobs(False).build(),
    "every-role": _every_role,
    "content-parts": _content_parts,
    "media-helpers": _media_helpers,
    "function-tools": _function_tools,
    "server-tools": _server_tools,
    **{
        f"tool-choice-{mode.name.lower()}": (
            lambda mode=mode: base().with_tool("f").with_tool_choice(mode).build()
        )
        for mode in ToolChoiceMode
        if mode
    },
    "tool-choice-function": lambda: base().with_tool("f").with_forced_tool("f").build(),
    "format-text": lambda: base().with_text_format().build(),
    "format-json-object": lambda: base().with_json_object().build(),
    "format-json-schema": lambda: (
        base()
        .with_json_schema("weather", JSON_SCHEMA, description="A forecast", strict=True)
        .build()
    ),
    "format-json-schema-lenient": lambda: (
        base().with_json_schema("anything", {"type": "object"}, strict=False).build()
    ),
    **{
        f"reasoning-effort-{effort.name.lower()}": (
            lambda effort=effort: (
                base()
                .with_reasoning(effort=effort, summary=list(ReasoningSummary)[effort % 3 + 1])
                .build()
            )
        )
        for effort in ReasoningEffort
        if effort
    },
    "reasoning-budget": lambda: (
        base().with_reasoning(max_tokens=2048, exclude=True, enabled=True).build()
    ),
    "reasoning-off": lambda: base().with_reasoning(enabled=False, exclude=False).build(),
    "plugins": _plugins,
    "provider-everything": _provider_everything,
    "provider-object-sort": _provider_object_sort,
    "provider-partition-only": lambda: base().with_sort(partition="model").build(),
    "provider-empty": lambda: base().with_provider(pb.ProviderConfig()).build(),
    **{
        f"provider-sort-{strategy.name.lower()}": (
            lambda strategy=strategy: base().with_sort(strategy).build()
        )
        for strategy in SortStrategy
        if strategy
    },
    **{
        f"service-tier-{tier.name.lower()}": (
            lambda tier=tier: base().with_service_tier(tier).build()
        )
        for tier in ServiceTier
        if tier
    },
    "extra-body": lambda: (
        base()
        .with_temperature(0.2)
        .with_extra_body(
            {
                "transforms": ["middle-out"],
                "usage": {"include": True},
                "verbosity": "high",
                "prompt_cache_key": "conversation-42",
                "trace": {"trace_id": "t-1", "span_name": "chat", "custom": "kept"},
                "debug": {"echo_upstream_body": True},
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
                "image_config": {"aspect_ratio": "16:9"},
            }
        )
        .build()
    ),
}


@cache
def request(name: str) -> pb.ChatRequest:
    built: pb.ChatRequest = CASES[name]().proto
    return built


def sent(message: pb.ChatRequest, *, stream: bool) -> Any:
    """The body exactly as it goes on the wire (the encoded bytes, parsed back)."""
    body = json.loads(convert.encode_chat(message, stream=stream))
    assert body == convert.body_dict(message, stream=stream)
    return body


def typed_part(message: pb.ChatRequest, *, stream: bool) -> Any:
    """The body without ``extra_body``: only what the gateway derives from typed fields."""
    copy_ = pb.ChatRequest()
    copy_.CopyFrom(message)
    copy_.ClearField("extra_body")
    return sent(copy_, stream=stream)


# Tests -------------------------------------------------------------------------------------

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])


@STREAM
@pytest.mark.parametrize("name", list(CASES))
def test_body_matches_published_spec(name: str, stream: bool) -> None:
    body = sent(request(name), stream=stream)
    assert problems(body, closed=False) == [], json.dumps(body, indent=1)


@STREAM
@pytest.mark.parametrize("name", list(CASES))
def test_typed_body_sends_only_declared_keys(name: str, stream: bool) -> None:
    body = typed_part(request(name), stream=stream)
    assert problems(body, closed=True) == [], json.dumps(body, indent=1)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda o: o.name)
def test_overlay_is_still_needed(overlay: Overlay) -> None:
    """Without the overlay each witness is rejected; with every overlay it is accepted.

    The overlay is the only difference between the two validators, so a failure here means
    the spec has caught up (or changed) and the overlay should be removed or revised.
    """
    without = tuple(name for name in ALL_OVERLAYS if name != overlay.name)
    for witness in overlay.witnesses:
        body = {"messages": [{"role": "user", "content": "Hello!"}], **witness}
        assert problems(body, closed=overlay.closed, overlays=without), (
            f"the published spec now accepts {witness}: overlay {overlay.name} is stale"
        )
        assert problems(body, closed=overlay.closed) == []
        assert problems(body, closed=True) == []  # and the closed reading never rejects it


def test_overlay_disagreements_are_still_in_the_spec() -> None:
    """The documented disagreements the overlays cite are still what the spec says."""
    schemas = published_spec()["components"]["schemas"]
    caps = schemas["ProviderPreferences"]["properties"]["max_price"]["properties"]
    assert sorted(caps) == sorted(_MAX_PRICE_CAPS)
    assert {name: caps[name].get("type") for name in caps} == dict.fromkeys(caps, "string")
    reasoning = schemas["ChatRequest"]["properties"]["reasoning"]["properties"]
    assert not {"max_tokens", "exclude", "enabled"} & set(reasoning)


def test_the_gateway_sends_what_the_overlays_allow() -> None:
    """The overlays are needed because the gateway really sends these shapes."""
    body = sent(request("provider-everything"), stream=False)
    prices = body["provider"]["max_price"]
    assert all(type(v) in (int, float) for v in prices.values())
    budget = sent(request("reasoning-budget"), stream=False)["reasoning"]
    assert budget == {"max_tokens": 2048, "exclude": True, "enabled": True}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user"}]}, "messages/0"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages/0"),
        ({"messages": [{"role": "tool", "content": "4"}]}, "messages/0"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": ["a"] * 5}, "stop"),
        ({"messages": [{"role": "user", "content": "x"}], "service_tier": "gold"}, "service"),
        (
            {"messages": [{"role": "user", "content": "x"}], "provider": {"quantizations": ["q"]}},
            "provider/quantizations/0",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "provider": {"maxPrice": {}}},
            "provider",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "provider": {"sort": "cheapest"}},
            "provider/sort",
        ),
        (
            {
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"schema": {}}},
            },
            "response_format",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"},
            "tool_choice",
        ),
    ],
)
def test_the_validator_rejects_known_bad_bodies(body: dict[str, Any], where: str) -> None:
    """A self-check: ``$ref``s resolve and the schema really constrains (in both readings)."""
    for closed in (False, True):
        found = problems(body, closed=closed)
        assert found, f"accepted {body}"
        assert any(line.startswith(where) for line in found), found


@pytest.mark.parametrize(
    "body",
    [
        # The misspellings a conversion bug would produce pass the open spec, not the closed one.
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "n", "schema_": {"type": "object"}},
            },
        },
        {"messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "low", "x": 1}},
        {"messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache": {}}]}]},
        {"messages": [{"role": "user", "content": "x"}], "topP": 1},
    ],
)
def test_the_closed_reading_catches_undeclared_keys(body: dict[str, Any]) -> None:
    assert problems(body, closed=False) == []
    assert problems(body, closed=True)


@pytest.mark.parametrize("role", ["system", "developer"])
def test_instruction_messages_with_non_text_parts_are_rejected_before_sending(role: str) -> None:
    """DOCS §2.3 and SPEC: system and developer content arrays hold text parts only."""
    image = pb.ContentPart(image_url=pb.ImageUrl(url="https://example.com/a.png"))
    builder = getattr(ChatRequestBuilder(), f"with_{role}")([image]).with_text("Hello!")
    with pytest.raises(InvalidArgumentError) as raised:
        builder.build()
    assert [v.field for v in raised.value.field_violations] == ["messages[0]"]


@pytest.mark.parametrize(
    ("make", "where"),
    [
        # DELIBERATE: server tool types and plugin ids are open sets in the proto (new ones ship
        # upstream before the contract names them; openrouter-api.md §10), closed in SPEC.
        (lambda: base().with_server_tool("openrouter:not_yet_in_spec").build(), "tools/0"),
        (lambda: base().with_plugin("not-yet-in-spec").build(), "plugins/0"),
    ],
    ids=["new-server-tool", "new-plugin"],
)
def test_tracked_differences_between_proto_and_spec(
    make: Callable[[], ChatRequest], where: str
) -> None:
    """The only known ways a *valid* request produces a body the published spec rejects."""
    body = sent(make().proto, stream=False)
    found = problems(body, closed=False)
    assert found
    assert all(line.startswith(where) for line in found), found


def test_the_spec_example_is_valid_in_both_readings() -> None:
    """The closed reading adds no false positives to the spec's own example."""
    example = published_spec()["components"]["schemas"]["ChatRequest"]["example"]
    assert problems(example, closed=False) == []
    assert problems(example, closed=True) == []


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}/{index}")


@STREAM
def test_unset_fields_are_absent_and_nothing_is_null(stream: bool) -> None:
    minimal = ChatRequestBuilder().with_text("Hello!").build().proto
    body = sent(minimal, stream=stream)
    assert "temperature" not in body
    assert set(body) == ({"messages", "stream"} if stream else {"messages"})
    assert body["messages"] == [{"role": "user", "content": "Hello!"}]
    for name in CASES:
        nulls = [p for p, v in _walk(sent(request(name), stream=stream)) if v is None]
        assert nulls == [], f"{name}: null at {nulls}"


def test_stream_flag_follows_the_rpc() -> None:
    for name in CASES:
        assert "stream" not in sent(request(name), stream=False)
        assert sent(request(name), stream=True)["stream"] is True


def _reachable(descriptor: Descriptor, seen: dict[str, Descriptor]) -> dict[str, Descriptor]:
    seen[descriptor.full_name] = descriptor
    for field in descriptor.fields:
        kind = field.message_type
        if (
            kind is not None
            and not kind.GetOptions().map_entry
            and not kind.full_name.startswith("google.protobuf.")
            and kind.full_name not in seen
        ):
            _reachable(kind, seen)
    return seen


def _record(message: Message, fields: set[str], values: set[tuple[str, int]]) -> None:
    for field, value in message.ListFields():
        fields.add(f"{message.DESCRIPTOR.full_name}.{field.name}")
        items = list(value) if field.is_repeated and not _is_map(field) else [value]
        if field.enum_type is not None:
            values.update((field.enum_type.full_name, int(v)) for v in items)
        elif field.message_type is not None and not _is_map(field):
            for item in items:
                if not item.DESCRIPTOR.full_name.startswith("google.protobuf."):
                    _record(item, fields, values)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def test_the_cases_cover_every_field_and_enum_value() -> None:
    """Every field of ChatRequest and of each message inside it, and every enum value, is
    exercised by some case: a new proto field fails here until a case sends it."""
    fields: set[str] = set()
    values: set[tuple[str, int]] = set()
    for name in CASES:
        _record(request(name), fields, values)
    messages = _reachable(pb.ChatRequest.DESCRIPTOR, {})
    wanted_fields = {f"{d.full_name}.{f.name}" for d in messages.values() for f in d.fields}
    wanted_values = {
        (field.enum_type.full_name, value.number)
        for d in messages.values()
        for field in d.fields
        if field.enum_type is not None
        for value in field.enum_type.values
        if value.number
    }
    assert sorted(wanted_fields - fields) == []
    assert sorted(wanted_values - values) == []
    assert {"routerpc.v1.ProviderConfig", "routerpc.v1.ContentPart"} <= set(messages)


def test_shared_dir_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SHARED_DIR_ENV, str(tmp_path))
    assert spec_path() == tmp_path / "reference" / "openrouter-openapi.yaml"
    monkeypatch.delenv(SHARED_DIR_ENV)
    repo = Path(__file__).resolve().parents[2]
    assert spec_path() == repo.parent / "shared" / "reference" / "openrouter-openapi.yaml"
