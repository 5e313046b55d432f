"""OpenRouter provider routing as pure functions: request preferences + catalogue -> candidates.

Kept free of I/O so that every routing rule can be tested exhaustively without a server, and so
that the HTTP layer cannot accidentally make routing depend on anything but the request.

Behaviour (digest §3, §4), with the emulator's choices where OpenRouter leaves room:

* Hard filters, applied per model in this order; each one that removes an endpoint is listed in
  ``excluded_by``: ``allowed_providers`` (``only``/``ignore``), ``quantization``,
  ``data_policy:training`` (``data_collection: "deny"`` drops endpoints that may train on *or*
  retain prompts), ``data_policy:zdr`` (``zdr: true``), ``max_price``, ``require_parameters``,
  ``context_length`` (prompt estimate or ``max_tokens`` beyond the endpoint's limits), and finally
  ``allowed_providers`` again for ``order`` when ``allow_fallbacks`` is false. The filter that
  removes the last endpoints becomes the failure's ``constraint``.
* Quantization filters use the coarse families of the docs: ``fp4`` also admits ``mxfp4`` and
  ``nvfp4``, ``fp8`` also admits ``mxfp8``; the fine-grained values match only themselves. An
  endpoint whose quantization is null matches only ``unknown``. Empty lists (``only: []``,
  ``quantizations: []``...) impose no restriction.
* Provider matching for ``order``/``only``/``ignore``: an entry equal to the endpoint's ``tag``
  (``deepinfra/turbo``), its base slug (``deepinfra`` matches every DeepInfra endpoint), or its
  display name (``DeepInfra``), all case-insensitively.
* ``max_price``: ``prompt``/``completion`` in USD per million tokens against per-token price x 1e6;
  ``request``/``image``/``audio`` per unit. Unpriced dimensions cost 0.
* Ordering: ``sort`` ``price`` (prompt+completion ascending), ``throughput`` (p50 descending),
  ``latency`` (p50 ascending), ``exacto`` (1-day uptime descending, as a stand-in for the
  undisclosed quality signals). Without ``sort`` the emulator orders by price too: OpenRouter's
  default is a price-weighted random pick, which would make tests flaky. Ties break on price, then
  tag, so the order is total. ``preferred_min_throughput``/``preferred_max_latency`` then move
  endpoints that miss a cutoff to the end (soft, never excluded). ``order`` entries come first, in
  list order; the rest follow unless ``allow_fallbacks`` is false, in which case only the ``order``
  endpoints (or, without ``order``, only the best endpoint) remain.
* Model fallbacks: ``models`` are tried after ``model``; with ``sort.partition: "none"`` all
  models' endpoints are ranked together, otherwise each model's endpoints stay together.
* Exhaustion: HTTP 404. When every model is unknown the answer is ``No endpoints found for
  <model>.`` with availability ``no_endpoints``; otherwise the last model whose endpoints were all
  filtered out is reported (``constraint_filtered``, or ``privacy_restricted`` when a data-policy
  filter removed the last endpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .catalogue import Catalogue, Endpoint, Model

SORTS: tuple[str, ...] = ("price", "throughput", "latency", "exacto")
PARTITIONS: tuple[str, ...] = ("model", "none")
MAX_PRICE_KEYS: tuple[str, ...] = ("prompt", "completion", "request", "image", "audio")
PER_MILLION_KEYS: frozenset[str] = frozenset({"prompt", "completion"})
PERCENTILE_KEYS: tuple[str, ...] = ("p50", "p75", "p90", "p99")
QUANTIZATION_FAMILIES: Mapping[str, frozenset[str]] = {
    "fp4": frozenset({"fp4", "mxfp4", "nvfp4"}),
    "fp8": frozenset({"fp8", "mxfp8"}),
}
DOCS_URL = "https://openrouter.ai/docs/guides/routing/provider-selection"
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ProviderPreferences:
    """The ``provider`` object of a chat request, already validated and normalised."""

    order: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    require_parameters: bool = False
    data_collection: str = "allow"
    zdr: bool = False
    only: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    quantizations: tuple[str, ...] = ()
    sort: str | None = None
    partition: str = "model"
    max_price: Mapping[str, Decimal] = field(default_factory=dict)
    preferred_min_throughput: Mapping[str, float] = field(default_factory=dict)
    preferred_max_latency: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingRequest:
    """What routing needs from a chat request; ``models`` are bare ids, primary first."""

    models: tuple[str, ...]
    provider: ProviderPreferences = field(default_factory=ProviderPreferences)
    parameters: frozenset[str] = frozenset()
    prompt_tokens: int = 0
    max_output_tokens: int | None = None


@dataclass(frozen=True)
class Candidate:
    model: Model
    endpoint: Endpoint


@dataclass(frozen=True)
class Constraint:
    field: str
    detail: str


@dataclass(frozen=True)
class RoutingFailure:
    """Why a request (or one of its models) cannot be served; renders OpenRouter's 404 body."""

    model: str
    message: str
    code: str
    excluded_by: tuple[str, ...] = ()
    constraint: Constraint | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    requested_models: tuple[str, ...] = ()
    status: int = 404

    def error_body(self) -> dict[str, Any]:
        availability: dict[str, Any] = {
            "code": self.code,
            "retryable": False,
            "requested_models": list(self.requested_models or (self.model,)),
            "excluded_by": list(self.excluded_by),
            "docs_url": DOCS_URL,
        }
        if self.constraint is not None:
            availability["constraint"] = {
                "field": self.constraint.field,
                "detail": self.constraint.detail,
            }
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "metadata": dict(self.metadata),
                "availability": availability,
            }
        }


@dataclass(frozen=True)
class RoutePlan:
    """Endpoints to try, best first; ``skipped`` holds models that had nothing to offer."""

    candidates: tuple[Candidate, ...]
    requested_models: tuple[str, ...]
    skipped: tuple[RoutingFailure, ...] = ()

    @property
    def first(self) -> Candidate:
        return self.candidates[0]


@dataclass(frozen=True)
class _Filter:
    label: str
    keep: Callable[[Endpoint], bool]
    explain: Callable[[Sequence[Endpoint]], Constraint]
    metadata: Callable[[Sequence[Endpoint]], Mapping[str, Any]] = lambda _: {}


def plan_route(request: RoutingRequest, catalogue: Catalogue) -> RoutePlan | RoutingFailure:
    """Resolve models and preferences into an ordered candidate list, or the 404 to answer."""
    prefs = request.provider
    groups: list[list[Candidate]] = []
    failures: list[RoutingFailure] = []
    for model_id in request.models:
        model = catalogue.get(model_id)
        if model is None:
            failures.append(_unknown_model(model_id))
            continue
        outcome = _filter_model(model, request)
        if isinstance(outcome, RoutingFailure):
            failures.append(outcome)
        else:
            groups.append(outcome)
    if not groups:
        return _final_failure(failures, request.models)
    if prefs.sort is not None and prefs.partition == "none":
        ordered = _rank([candidate for group in groups for candidate in group], prefs)
    else:
        ordered = [candidate for group in groups for candidate in _rank(group, prefs)]
    return RoutePlan(
        candidates=tuple(ordered), requested_models=request.models, skipped=tuple(failures)
    )


def provider_matches(entry: str, endpoint: Endpoint) -> bool:
    """Slug, base slug or display name, case-insensitively (OpenRouter accepts all three)."""
    wanted = entry.strip().lower()
    return wanted in (
        endpoint.tag.lower(),
        endpoint.base_slug.lower(),
        endpoint.provider_name.lower(),
    )


def quantization_matches(requested: Iterable[str], quantization: str | None) -> bool:
    actual = quantization or "unknown"
    for value in requested:
        wanted = value.lower()
        if actual == wanted or actual in QUANTIZATION_FAMILIES.get(wanted, frozenset()):
            return True
    return False


def price_per_million(endpoint: Endpoint, key: str) -> Decimal:
    """The endpoint's price in the unit ``max_price`` uses for ``key``."""
    price = endpoint.price(key)
    return price * _MILLION if key in PER_MILLION_KEYS else price


def _filter_model(model: Model, request: RoutingRequest) -> list[Candidate] | RoutingFailure:
    remaining: list[Endpoint] = list(model.endpoints)
    excluded_by: list[str] = []
    for step in _filters(request):
        kept = [endpoint for endpoint in remaining if step.keep(endpoint)]
        if len(kept) < len(remaining) and step.label not in excluded_by:
            excluded_by.append(step.label)
        if not kept:
            constraint = step.explain(remaining)
            return RoutingFailure(
                model=model.id,
                message=(
                    f"No endpoints found matching your routing preferences for {model.id}. "
                    f"The last endpoints were excluded by {step.label} "
                    f"({constraint.field}): {constraint.detail}."
                ),
                code="privacy_restricted"
                if step.label.startswith("data_policy:")
                else "constraint_filtered",
                excluded_by=tuple(excluded_by),
                constraint=constraint,
                metadata={
                    "available_providers": [endpoint.tag for endpoint in model.endpoints],
                    **step.metadata(remaining),
                },
            )
        remaining = kept
    return [Candidate(model=model, endpoint=endpoint) for endpoint in remaining]


def _filters(request: RoutingRequest) -> list[_Filter]:
    prefs = request.provider
    steps: list[_Filter] = []
    if prefs.only or prefs.ignore:
        steps.append(_allowed_providers_filter(prefs))
    if prefs.quantizations:
        steps.append(
            _Filter(
                label="quantization",
                keep=lambda e: quantization_matches(prefs.quantizations, e.quantization),
                explain=lambda eps: Constraint(
                    "quantizations",
                    f"requested [{', '.join(prefs.quantizations)}]; "
                    f"available [{', '.join(_distinct(e.quantization or 'unknown' for e in eps))}]",
                ),
            )
        )
    if prefs.data_collection == "deny":
        steps.append(
            _Filter(
                label="data_policy:training",
                keep=lambda e: not (e.data_policy.training or e.data_policy.retains_prompts),
                explain=lambda eps: Constraint(
                    "data_collection",
                    "data_collection is deny and every remaining endpoint may train on or "
                    f"retain prompts: [{', '.join(e.tag for e in eps)}]",
                ),
            )
        )
    if prefs.zdr:
        steps.append(
            _Filter(
                label="data_policy:zdr",
                keep=lambda e: e.data_policy.zdr,
                explain=lambda eps: Constraint(
                    "zdr",
                    "zdr requires Zero Data Retention and none of the remaining endpoints is "
                    f"ZDR: [{', '.join(e.tag for e in eps)}]",
                ),
            )
        )
    if prefs.max_price:
        steps.append(_max_price_filter(prefs.max_price))
    if prefs.require_parameters and request.parameters:
        steps.append(_require_parameters_filter(request.parameters))
    if request.prompt_tokens > 0 or request.max_output_tokens is not None:
        steps.append(_context_filter(request.prompt_tokens, request.max_output_tokens))
    if prefs.order and not prefs.allow_fallbacks:
        steps.append(
            _Filter(
                label="allowed_providers",
                keep=lambda e: any(provider_matches(entry, e) for entry in prefs.order),
                explain=lambda eps: Constraint(
                    "order",
                    f"allow_fallbacks is false and no endpoint matches the manual order "
                    f"[{', '.join(prefs.order)}]; available [{', '.join(e.tag for e in eps)}]",
                ),
                metadata=lambda _: {"requested_providers": list(prefs.order)},
            )
        )
    return steps


def _allowed_providers_filter(prefs: ProviderPreferences) -> _Filter:
    def allowed(endpoint: Endpoint) -> bool:
        return any(provider_matches(entry, endpoint) for entry in prefs.only)

    def ignored(endpoint: Endpoint) -> bool:
        return any(provider_matches(entry, endpoint) for entry in prefs.ignore)

    def keep(endpoint: Endpoint) -> bool:
        return (not prefs.only or allowed(endpoint)) and not ignored(endpoint)

    def explain(endpoints: Sequence[Endpoint]) -> Constraint:
        available = ", ".join(endpoint.tag for endpoint in endpoints)
        if prefs.only and not any(allowed(endpoint) for endpoint in endpoints):
            return Constraint(
                "only", f"requested [{', '.join(prefs.only)}]; available [{available}]"
            )
        return Constraint("ignore", f"ignored [{', '.join(prefs.ignore)}]; available [{available}]")

    return _Filter(
        label="allowed_providers",
        keep=keep,
        explain=explain,
        metadata=lambda _: {"requested_providers": list(prefs.only)},
    )


def _max_price_filter(limits: Mapping[str, Decimal]) -> _Filter:
    def keep(endpoint: Endpoint) -> bool:
        return all(price_per_million(endpoint, key) <= limit for key, limit in limits.items())

    def explain(endpoints: Sequence[Endpoint]) -> Constraint:
        cheapest = min(endpoints, key=lambda e: (_total_price(e), e.tag))
        asked = ", ".join(f"{key} <= {_plain(limit)}" for key, limit in limits.items())
        offered = ", ".join(f"{key} {_plain(price_per_million(cheapest, key))}" for key in limits)
        return Constraint(
            "max_price",
            f"requested {asked} (prompt/completion in USD per million tokens); "
            f"cheapest remaining endpoint {cheapest.tag} charges {offered}",
        )

    return _Filter(label="max_price", keep=keep, explain=explain)


def _require_parameters_filter(parameters: frozenset[str]) -> _Filter:
    wanted = sorted(parameters)

    def explain(endpoints: Sequence[Endpoint]) -> Constraint:
        gaps = "; ".join(
            f"{e.tag} lacks [{', '.join(p for p in wanted if p not in e.supported_parameters)}]"
            for e in endpoints
        )
        return Constraint("require_parameters", f"requested [{', '.join(wanted)}]; {gaps}")

    return _Filter(
        label="require_parameters",
        keep=lambda e: parameters.issubset(e.supported_parameters),
        explain=explain,
    )


def _context_filter(prompt_tokens: int, max_output_tokens: int | None) -> _Filter:
    output = max_output_tokens or 0

    def keep(endpoint: Endpoint) -> bool:
        prompt_limit = endpoint.max_prompt_tokens or endpoint.context_length
        if prompt_tokens > prompt_limit or prompt_tokens + output > endpoint.context_length:
            return False
        limit = endpoint.max_completion_tokens
        return max_output_tokens is None or limit is None or max_output_tokens <= limit

    def explain(endpoints: Sequence[Endpoint]) -> Constraint:
        widest = max(e.context_length for e in endpoints)
        longest = max(e.max_completion_tokens or e.context_length for e in endpoints)
        return Constraint(
            "context_length",
            f"requested {prompt_tokens} prompt tokens and max_tokens {max_output_tokens}; "
            f"largest remaining context_length {widest}, max_completion_tokens {longest}",
        )

    return _Filter(label="context_length", keep=keep, explain=explain)


def _rank(candidates: Sequence[Candidate], prefs: ProviderPreferences) -> list[Candidate]:
    ranked = sorted(candidates, key=_sort_key(prefs.sort))
    ranked = [c for c in ranked if _meets_cutoffs(c.endpoint, prefs)] + [
        c for c in ranked if not _meets_cutoffs(c.endpoint, prefs)
    ]
    if not prefs.order:
        return ranked if prefs.allow_fallbacks else ranked[:1]
    pinned: list[Candidate] = []
    for entry in prefs.order:
        pinned.extend(
            c for c in ranked if provider_matches(entry, c.endpoint) and not _contains(pinned, c)
        )
    if not prefs.allow_fallbacks:
        return pinned
    return pinned + [c for c in ranked if not _contains(pinned, c)]


def _sort_key(sort: str | None) -> Callable[[Candidate], tuple[Any, ...]]:
    def key(candidate: Candidate) -> tuple[Any, ...]:
        endpoint = candidate.endpoint
        tail = (_total_price(endpoint), endpoint.tag, candidate.model.id)
        if sort == "throughput":
            return (-endpoint.throughput.p50, *tail)
        if sort == "latency":
            return (endpoint.latency.p50, *tail)
        if sort == "exacto":
            return (-endpoint.uptime_last_1d, *tail)
        return tail

    return key


def _meets_cutoffs(endpoint: Endpoint, prefs: ProviderPreferences) -> bool:
    fast_enough = all(
        getattr(endpoint.throughput, percentile) >= cutoff
        for percentile, cutoff in prefs.preferred_min_throughput.items()
    )
    quick_enough = all(
        getattr(endpoint.latency, percentile) <= cutoff
        for percentile, cutoff in prefs.preferred_max_latency.items()
    )
    return fast_enough and quick_enough


def _final_failure(
    failures: Sequence[RoutingFailure], requested: tuple[str, ...]
) -> RoutingFailure:
    filtered = [failure for failure in failures if failure.code != "no_endpoints"]
    chosen = filtered[-1] if filtered else failures[0]
    others = [
        {"model": failure.model, "code": failure.code, "message": failure.message}
        for failure in failures
        if failure is not chosen
    ]
    metadata = dict(chosen.metadata)
    if others:
        metadata["previous_errors"] = others
    return RoutingFailure(
        model=chosen.model,
        message=chosen.message,
        code=chosen.code,
        excluded_by=chosen.excluded_by,
        constraint=chosen.constraint,
        metadata=metadata,
        requested_models=requested,
    )


def _unknown_model(model_id: str) -> RoutingFailure:
    return RoutingFailure(
        model=model_id, message=f"No endpoints found for {model_id}.", code="no_endpoints"
    )


def _total_price(endpoint: Endpoint) -> Decimal:
    return endpoint.price("prompt") + endpoint.price("completion")


def _contains(candidates: Sequence[Candidate], candidate: Candidate) -> bool:
    return any(c is candidate for c in candidates)


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _plain(value: Decimal) -> str:
    """Render ``Decimal('2.50000')`` as ``2.5`` and never in scientific notation."""
    return format(value.normalize(), "f")
