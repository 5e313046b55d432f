"""``ChatRequestBuilder``: an immutable, fluent way to write a ``ChatRequest``.

Every ``with_*`` returns a new builder and leaves the old one untouched, so a half-built builder
is a safe template to share between requests and threads::

    base = ChatRequestBuilder().with_model("openai/gpt-4o").with_system("Be brief.")
    fast = base.with_quantizations(Quantization.FP8).with_text("Hi").build()

The state is the proto itself (copied on every step), so nothing here can drift from the
contract. ``build()`` applies the gateway's validation rules and raises ``InvalidArgumentError``
naming each bad field.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Self, TypeVar

from google.protobuf import struct_pb2

from routerpc import pb
from routerpc._gen.enums import (
    DataCollection,
    ImageDetail,
    Modality,
    Quantization,
    ReasoningEffort,
    ReasoningSummary,
    ResponseFormatType,
    Role,
    ServiceTier,
    SortPartition,
    SortStrategy,
    ToolChoiceMode,
)
from routerpc._request import ChatRequest

__all__ = ["ChatRequestBuilder"]

E = TypeVar("E", bound=enum.IntEnum)
Threshold = float | Mapping[str, float]


def _enum(kind: type[E], value: E | str) -> Any:
    """Accept a member or its name in any case ("fp8", "FP8").

    Typed ``Any`` on purpose: mypy-protobuf types enum fields as a ``NewType`` of int that no
    IntEnum member satisfies statically; ``kind(value)`` checks the value at run time instead.
    """
    if isinstance(value, str):
        try:
            return kind[value.upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(m.name.lower() for m in kind if m.value)
            raise ValueError(
                f"unknown {kind.__name__} {value!r}; expected one of {names}"
            ) from None
    return kind(value)


def _message(role: Role, **fields: Any) -> pb.Message:
    return pb.Message(role=_enum(Role, role), **fields)


_FORMAT_TEXT: Any = ResponseFormatType.TEXT
_FORMAT_JSON_OBJECT: Any = ResponseFormatType.JSON_OBJECT
_FORMAT_JSON_SCHEMA: Any = ResponseFormatType.JSON_SCHEMA


def _struct(value: Mapping[str, Any] | struct_pb2.Struct) -> struct_pb2.Struct:
    if isinstance(value, struct_pb2.Struct):
        return value
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _performance(value: Threshold) -> pb.PerformancePreference:
    if isinstance(value, Mapping):
        return pb.PerformancePreference(percentiles=pb.PercentileCutoffs(**value))
    return pb.PerformancePreference(value=float(value))


CacheTtl = Literal[True, "5m", "1h"]
"""A prompt-cache breakpoint: ``True`` for the provider's default lifetime, or "5m" / "1h"."""


def _cache_control(cache: CacheTtl) -> pb.CacheControl:
    return pb.CacheControl(ttl="" if cache is True else cache)


def _content(
    content: str | Iterable[pb.ContentPart], cache: CacheTtl | None = None
) -> dict[str, Any]:
    if isinstance(content, str):
        if cache is None:
            return {"text": content}
        # A cache breakpoint lives on a content part, so cached text travels as one text part.
        part = pb.ContentPart(text=content, cache_control=_cache_control(cache))
        return {"parts": pb.ContentParts(parts=[part])}
    return {"parts": pb.ContentParts(parts=list(content))}


class ChatRequestBuilder:
    """Builds a validated ``ChatRequest``; every method returns a new builder."""

    __slots__ = ("_request",)

    def __init__(self, request: pb.ChatRequest | ChatRequest | None = None) -> None:
        proto = pb.ChatRequest()
        if request is not None:
            proto.CopyFrom(request.proto if isinstance(request, ChatRequest) else request)
        self._request = proto

    def _with(self, change: Callable[[pb.ChatRequest], object]) -> Self:
        clone = type(self)(self._request)
        change(clone._request)
        return clone

    def _with_provider(self, change: Callable[[pb.ProviderConfig], object]) -> Self:
        return self._with(lambda r: change(r.provider))

    # Model ---------------------------------------------------------------------------------

    def with_model(self, model: str) -> Self:
        """The model slug, "author/slug" ("openai/gpt-4o")."""
        return self._with(lambda r: setattr(r, "model", model))

    def with_fallback_models(self, *models: str) -> Self:
        """Models to try in order when ``model`` fails (OpenRouter ``models``)."""
        return self._with(lambda r: r.models.extend(models))

    # Messages ------------------------------------------------------------------------------

    def with_message(self, message: pb.Message) -> Self:
        """Append a message built by hand."""
        return self._with(lambda r: r.messages.append(message))

    def with_text(self, text: str, *, name: str = "") -> Self:
        """Append a user message with plain text."""
        return self.with_user(text, name=name)

    def with_user(self, content: str | Iterable[pb.ContentPart], *, name: str = "") -> Self:
        """Append a user message: text or content parts."""
        return self.with_message(_message(Role.USER, name=name, **_content(content)))

    def with_system(
        self, text: str | Iterable[pb.ContentPart], *, cache: CacheTtl | None = None
    ) -> Self:
        """Append a system message; ``cache`` marks it as a prompt-cache breakpoint."""
        return self.with_message(_message(Role.SYSTEM, **_content(text, cache)))

    def with_developer(
        self, text: str | Iterable[pb.ContentPart], *, cache: CacheTtl | None = None
    ) -> Self:
        """Append a developer message; ``cache`` marks it as a prompt-cache breakpoint."""
        return self.with_message(_message(Role.DEVELOPER, **_content(text, cache)))

    def with_assistant(
        self,
        content: str | Iterable[pb.ContentPart] | None = None,
        *,
        tool_calls: Iterable[pb.ToolCall] = (),
        reasoning: str | None = None,
        reasoning_details: Iterable[Any] | None = None,
    ) -> Self:
        """Append an earlier assistant turn, optionally with the tool calls it made."""
        message = _message(Role.ASSISTANT, tool_calls=list(tool_calls))
        if content is not None:
            message.MergeFrom(pb.Message(**_content(content)))
        if reasoning is not None:
            message.reasoning = reasoning
        if reasoning_details is not None:
            message.reasoning_details.extend(list(reasoning_details))
        return self.with_message(message)

    def with_tool_result(self, tool_call_id: str, content: str | Iterable[pb.ContentPart]) -> Self:
        """Append a tool message answering the assistant's call ``tool_call_id``."""
        return self.with_message(
            _message(Role.TOOL, tool_call_id=tool_call_id, **_content(content))
        )

    def with_image(
        self, url: str, *, text: str | None = None, detail: ImageDetail | str | None = None
    ) -> Self:
        """Append a user message holding an image (URL or data URL) and optional text."""
        image = pb.ImageUrl(url=url)
        if detail is not None:
            image.detail = _enum(ImageDetail, detail)
        parts = [pb.ContentPart(text=text)] if text is not None else []
        return self.with_user([*parts, pb.ContentPart(image_url=image)])

    def with_file(
        self,
        *,
        file_data: str = "",
        file_id: str = "",
        filename: str = "",
        text: str | None = None,
    ) -> Self:
        """Append a user message holding a document (URL, data URL or uploaded file id)."""
        part = pb.ContentPart(
            file=pb.FileInput(file_data=file_data, file_id=file_id, filename=filename)
        )
        return self.with_user([*([pb.ContentPart(text=text)] if text else []), part])

    def with_audio(self, data: str, audio_format: str, *, text: str | None = None) -> Self:
        """Append a user message holding base64 audio in ``audio_format`` ("wav", "mp3")."""
        part = pb.ContentPart(input_audio=pb.InputAudio(data=data, format=audio_format))
        return self.with_user([*([pb.ContentPart(text=text)] if text else []), part])

    def with_video(self, url: str, *, text: str | None = None) -> Self:
        """Append a user message holding a video (URL or data URL)."""
        part = pb.ContentPart(video_url=pb.VideoUrl(url=url))
        return self.with_user([*([pb.ContentPart(text=text)] if text else []), part])

    # Tools and output format ---------------------------------------------------------------

    def with_tool(
        self,
        name: str,
        *,
        description: str = "",
        parameters: Mapping[str, Any] | struct_pb2.Struct | None = None,
        strict: bool | None = None,
        cache: CacheTtl | None = None,
    ) -> Self:
        """Offer a function tool; ``parameters`` is its JSON Schema; ``cache`` puts a
        prompt-cache breakpoint after the tool definitions up to this one."""
        function = pb.FunctionTool(name=name, description=description)
        if parameters is not None:
            function.parameters.CopyFrom(_struct(parameters))
        if strict is not None:
            function.strict = strict
        tool = pb.Tool(function=function)
        if cache is not None:
            tool.cache_control.CopyFrom(_cache_control(cache))
        return self._with(lambda r: r.tools.append(tool))

    def with_server_tool(
        self, tool_type: str, parameters: Mapping[str, Any] | struct_pb2.Struct | None = None
    ) -> Self:
        """Offer a tool OpenRouter runs itself ("openrouter:web_search")."""
        server = pb.ServerTool(type=tool_type)
        if parameters is not None:
            server.parameters.CopyFrom(_struct(parameters))
        return self._with(lambda r: r.tools.append(pb.Tool(server=server)))

    def with_tool_choice(self, mode: ToolChoiceMode | Literal["none", "auto", "required"]) -> Self:
        """Whether the model may, must, or must not call tools."""
        choice = pb.ToolChoice(mode=_enum(ToolChoiceMode, mode))
        return self._with(lambda r: r.tool_choice.CopyFrom(choice))

    def with_forced_tool(self, function_name: str) -> Self:
        """The model must call this function."""
        choice = pb.ToolChoice(function_name=function_name)
        return self._with(lambda r: r.tool_choice.CopyFrom(choice))

    def with_forced_server_tool(self, tool_type: str) -> Self:
        """The model must use this OpenRouter server tool ("openrouter:web_search")."""
        choice = pb.ToolChoice(server_tool_type=tool_type)
        return self._with(lambda r: r.tool_choice.CopyFrom(choice))

    def with_parallel_tool_calls(self, enabled: bool = True) -> Self:
        """Whether several tool calls may come in one turn."""
        return self._with(lambda r: setattr(r, "parallel_tool_calls", enabled))

    def with_text_format(self) -> Self:
        """Plain text output."""
        fmt = pb.ResponseFormat(type=_FORMAT_TEXT)
        return self._with(lambda r: r.response_format.CopyFrom(fmt))

    def with_json_object(self) -> Self:
        """Any JSON object as output."""
        fmt = pb.ResponseFormat(type=_FORMAT_JSON_OBJECT)
        return self._with(lambda r: r.response_format.CopyFrom(fmt))

    def with_json_schema(
        self,
        name: str,
        schema: Mapping[str, Any] | struct_pb2.Struct,
        *,
        description: str = "",
        strict: bool | None = None,
    ) -> Self:
        """Output matching a JSON Schema."""
        spec = pb.JsonSchemaFormat(name=name, description=description, schema=_struct(schema))
        if strict is not None:
            spec.strict = strict
        fmt = pb.ResponseFormat(type=_FORMAT_JSON_SCHEMA, json_schema=spec)
        return self._with(lambda r: r.response_format.CopyFrom(fmt))

    # Sampling ------------------------------------------------------------------------------

    def with_temperature(self, value: float) -> Self:
        """Sampling temperature, 0 to 2."""
        return self._with(lambda r: setattr(r, "temperature", value))

    def with_top_p(self, value: float) -> Self:
        """Nucleus sampling, 0 to 1."""
        return self._with(lambda r: setattr(r, "top_p", value))

    def with_top_k(self, value: int) -> Self:
        """Top-k sampling, 0 (off) or more."""
        return self._with(lambda r: setattr(r, "top_k", value))

    def with_frequency_penalty(self, value: float) -> Self:
        """Frequency penalty, -2 to 2."""
        return self._with(lambda r: setattr(r, "frequency_penalty", value))

    def with_presence_penalty(self, value: float) -> Self:
        """Presence penalty, -2 to 2."""
        return self._with(lambda r: setattr(r, "presence_penalty", value))

    def with_repetition_penalty(self, value: float) -> Self:
        """Repetition penalty, 0 to 2."""
        return self._with(lambda r: setattr(r, "repetition_penalty", value))

    def with_min_p(self, value: float) -> Self:
        """Minimum probability relative to the most likely token, 0 to 1."""
        return self._with(lambda r: setattr(r, "min_p", value))

    def with_top_a(self, value: float) -> Self:
        """Top-a sampling, 0 to 1."""
        return self._with(lambda r: setattr(r, "top_a", value))

    def with_seed(self, value: int) -> Self:
        """Sampling seed (determinism is best effort upstream)."""
        return self._with(lambda r: setattr(r, "seed", value))

    def with_max_tokens(self, value: int) -> Self:
        """Maximum tokens to generate."""
        return self._with(lambda r: setattr(r, "max_tokens", value))

    def with_max_completion_tokens(self, value: int) -> Self:
        """Maximum completion tokens, reasoning included."""
        return self._with(lambda r: setattr(r, "max_completion_tokens", value))

    def with_stop(self, *sequences: str) -> Self:
        """Stop sequences (at most 4 in all)."""
        return self._with(lambda r: r.stop.extend(sequences))

    def with_logit_bias(self, bias: Mapping[int | str, float]) -> Self:
        """Bias token ids, -100 to 100."""
        return self._with(lambda r: r.logit_bias.update({str(k): v for k, v in bias.items()}))

    def with_logprobs(self, enabled: bool = True, *, top: int | None = None) -> Self:
        """Return log probabilities, optionally the ``top`` alternatives per token (0 to 20)."""

        def change(r: pb.ChatRequest) -> None:
            r.logprobs = enabled
            if top is not None:
                r.top_logprobs = top

        return self._with(change)

    def with_reasoning(
        self,
        *,
        effort: ReasoningEffort | str | None = None,
        max_tokens: int | None = None,
        exclude: bool | None = None,
        enabled: bool | None = None,
        summary: ReasoningSummary | str | None = None,
    ) -> Self:
        """Reasoning tokens: an effort level or a token budget, not both."""
        reasoning = pb.Reasoning()
        if effort is not None:
            reasoning.effort = _enum(ReasoningEffort, effort)
        if max_tokens is not None:
            reasoning.max_tokens = max_tokens
        if exclude is not None:
            reasoning.exclude = exclude
        if enabled is not None:
            reasoning.enabled = enabled
        if summary is not None:
            reasoning.summary = _enum(ReasoningSummary, summary)
        return self._with(lambda r: r.reasoning.CopyFrom(reasoning))

    # Request metadata ----------------------------------------------------------------------

    def with_plugin(self, plugin_id: str, *, enabled: bool | None = None, **options: Any) -> Self:
        """Enable (or with ``enabled=False`` disable) a plugin, with its options."""
        plugin = pb.Plugin(id=plugin_id)
        if enabled is not None:
            plugin.enabled = enabled
        if options:
            plugin.options.update(options)
        return self._with(lambda r: r.plugins.append(plugin))

    def with_end_user(self, user: str) -> Self:
        """Stable id of the end user (OpenRouter ``user``), for abuse isolation."""
        return self._with(lambda r: setattr(r, "user", user))

    def with_session_id(self, session_id: str) -> Self:
        """Group requests for sticky routing and observability."""
        return self._with(lambda r: setattr(r, "session_id", session_id))

    def with_metadata(self, metadata: Mapping[str, str] | None = None, **pairs: str) -> Self:
        """Request metadata: at most 16 pairs."""
        merged = {**(metadata or {}), **pairs}
        return self._with(lambda r: r.metadata.update(merged))

    def with_modalities(self, *modalities: Modality | str) -> Self:
        """Output modalities ("text", "image", "audio")."""
        values = [_enum(Modality, m) for m in modalities]
        return self._with(lambda r: r.modalities.extend(values))

    def with_service_tier(self, tier: ServiceTier | str) -> Self:
        """Processing tier."""
        return self._with(lambda r: setattr(r, "service_tier", _enum(ServiceTier, tier)))

    def with_extra_body(self, fields: Mapping[str, Any] | struct_pb2.Struct) -> Self:
        """Top-level JSON fields the contract does not name yet, merged into the body."""
        return self._with(lambda r: r.extra_body.update(dict(_struct(fields).items())))

    # Provider routing ----------------------------------------------------------------------

    def with_provider(self, config: pb.ProviderConfig) -> Self:
        """Replace all provider routing preferences."""
        return self._with(lambda r: r.provider.CopyFrom(config))

    def with_quantizations(self, *quantizations: Quantization | str) -> Self:
        """Serve only from endpoints at these quantizations (replaces the list)."""
        values = [_enum(Quantization, q) for q in quantizations]

        def change(p: pb.ProviderConfig) -> None:
            del p.quantizations[:]
            p.quantizations.extend(values)

        return self._with_provider(change)

    def with_provider_order(self, *providers: str, allow_fallbacks: bool | None = None) -> Self:
        """Try these provider slugs first, in order; optionally forbid any other."""

        def change(p: pb.ProviderConfig) -> None:
            del p.order[:]
            p.order.extend(providers)
            if allow_fallbacks is not None:
                p.allow_fallbacks = allow_fallbacks

        return self._with_provider(change)

    def with_allow_fallbacks(self, allowed: bool) -> Self:
        """Whether providers beyond ``order`` (or the primary) may serve."""
        return self._with_provider(lambda p: setattr(p, "allow_fallbacks", allowed))

    def with_only_providers(self, *providers: str) -> Self:
        """Allow-list of provider slugs."""

        def change(p: pb.ProviderConfig) -> None:
            del p.only[:]
            p.only.extend(providers)

        return self._with_provider(change)

    def with_ignored_providers(self, *providers: str) -> Self:
        """Deny-list of provider slugs."""

        def change(p: pb.ProviderConfig) -> None:
            del p.ignore[:]
            p.ignore.extend(providers)

        return self._with_provider(change)

    def with_require_parameters(self, required: bool = True) -> Self:
        """Only endpoints supporting every parameter of the request."""
        return self._with_provider(lambda p: setattr(p, "require_parameters", required))

    def with_data_collection(self, policy: DataCollection | Literal["allow", "deny"]) -> Self:
        """Whether providers may store or train on the data."""
        value = _enum(DataCollection, policy)
        return self._with_provider(lambda p: setattr(p, "data_collection", value))

    def with_zdr(self, required: bool = True) -> Self:
        """Only Zero-Data-Retention endpoints."""
        return self._with_provider(lambda p: setattr(p, "zdr", required))

    def with_enforce_distillable_text(self, required: bool = True) -> Self:
        """Only models whose author allows text distillation."""
        return self._with_provider(lambda p: setattr(p, "enforce_distillable_text", required))

    def with_sort(
        self,
        by: SortStrategy | str | None = None,
        *,
        partition: SortPartition | Literal["model", "none"] | None = None,
    ) -> Self:
        """Order endpoints by price, throughput, latency or exacto; a partition sends the
        object form (``{"by": ..., "partition": ...}``)."""

        if by is None and partition is None:
            raise ValueError("with_sort needs a strategy, a partition, or both")

        def change(p: pb.ProviderConfig) -> None:
            if partition is None and by is not None:
                p.sort_strategy = _enum(SortStrategy, by)
                return
            config = pb.SortConfig()
            if by is not None:
                config.by = _enum(SortStrategy, by)
            if partition is not None:
                config.partition = _enum(SortPartition, partition)
            p.sort_config.CopyFrom(config)

        return self._with_provider(change)

    def with_max_price(
        self,
        *,
        prompt: float | None = None,
        completion: float | None = None,
        image: float | None = None,
        audio: float | None = None,
        request: float | None = None,
    ) -> Self:
        """Price caps in USD (prompt and completion per million tokens)."""
        caps = {
            "prompt": prompt,
            "completion": completion,
            "image": image,
            "audio": audio,
            "request": request,
        }
        price = pb.MaxPrice(**{k: v for k, v in caps.items() if v is not None})
        return self._with_provider(lambda p: p.max_price.CopyFrom(price))

    def with_preferred_min_throughput(self, threshold: Threshold) -> Self:
        """Prefer endpoints at or above this many tokens/s (a number is p50; or percentiles)."""
        value = _performance(threshold)
        return self._with_provider(lambda p: p.preferred_min_throughput.CopyFrom(value))

    def with_preferred_max_latency(self, threshold: Threshold) -> Self:
        """Prefer endpoints at or below this time to first token in seconds."""
        value = _performance(threshold)
        return self._with_provider(lambda p: p.preferred_max_latency.CopyFrom(value))

    # Result --------------------------------------------------------------------------------

    def build(self) -> ChatRequest:
        """A validated, independent ``ChatRequest``; raises ``InvalidArgumentError`` naming
        each field that breaks the gateway's rules."""
        request = ChatRequest(self._request).copy()
        request.validate()
        return request

    def __repr__(self) -> str:
        return f"ChatRequestBuilder<{self._request}>".replace("\n", " ")
