"""The gateway's Prometheus metrics: tallied per process in plain dicts, exported when scraped.

Why not prometheus-client's metric objects: each of their updates checks its labels, takes a
lock and, with several workers, writes to a memory-mapped file. For the eight or so updates of
one call that was about 60,000 instructions in one process and 95,000 with workers
(``python -m bench.instructions``), a tenth of the gateway's own work per call. Here an update
adds to a dict that only the event loop's thread writes; prometheus-client still renders the
exposition, from :class:`TalliesCollector` (one process) or :class:`SummedFilesCollector`.

With ``--workers N`` each worker writes its tallies to a JSON file in a directory the master
made, once a second when they changed and once more when the worker stops; the master's scrape
sums the files, so its figures trail the workers by up to that second.

Label values are bounded: model, provider and caller names beyond the first few hundred distinct
values are reported as ``other``, so no caller can create unbounded series.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from routerpc_gateway.observe import CallRecord

__all__ = [
    "METRICS",
    "BoundedLabel",
    "SummedFilesCollector",
    "TalliesCollector",
    "count_call",
    "count_retry",
    "count_shed",
    "count_upstream_status",
    "write_tallies",
    "write_tallies_every",
]

log = logging.getLogger("routerpc.gateway")

Labels: TypeAlias = tuple[str, ...]
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FLUSH_INTERVAL_S = 1.0
"""How often a worker writes its tallies for the master's scrape (when they changed)."""


class _Metric:
    """One metric family's tallies: label values -> value, written by the event loop only."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.values: dict[Labels, Any] = self.empty()

    def empty(self) -> dict[Labels, Any]:
        """The series before any event: none, or the one zero series of an unlabelled metric
        (exported before its first event, as Prometheus expects)."""
        return {} if self.labelnames else {(): self.zero()}

    def zero(self) -> Any:
        return 0.0

    def family(self, values: Iterable[tuple[Labels, Any]]) -> Any:
        raise NotImplementedError

    def added(self, total: Any, value: Any) -> Any:
        """``total`` with one worker's ``value`` of a series added."""
        return total + value


class Gauge(_Metric):
    """A value per label set that goes up and down (``inc`` with a negative amount)."""

    _family_type: Any = GaugeMetricFamily

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def family(self, values: Iterable[tuple[Labels, Any]]) -> Any:
        family = self._family_type(self.name, self.documentation, labels=self.labelnames)
        for labels, value in values:
            family.add_metric(labels, value)
        return family


class Counter(Gauge):
    """A gauge that only goes up (amounts are the gateway's own, never negative)."""

    _family_type = CounterMetricFamily


class Histogram(_Metric):
    """A series is a list: the count of each bucket (not cumulative; ``+Inf`` last), then the
    sum of the observed values."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = _SECONDS,
    ) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._les = [repr(b) for b in self.bounds] + ["+Inf"]  # "0.005", "1.0": as Go prints
        super().__init__(name, documentation, labelnames)

    def zero(self) -> Any:
        return [0.0] * (len(self.bounds) + 2)

    def observe(self, value: float, labels: Labels = ()) -> None:
        series = self.values.get(labels)
        if series is None:
            series = self.values[labels] = self.zero()
        series[bisect_left(self.bounds, value)] += 1  # le: the first bound >= value
        series[-1] += value

    def added(self, total: Any, value: Any) -> Any:
        return [a + b for a, b in zip(total, value, strict=True)]

    def family(self, values: Iterable[tuple[Labels, Any]]) -> Any:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in values:
            cumulative, buckets = 0.0, []
            for le, count in zip(self._les, series, strict=False):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric(labels, buckets, sum_value=series[-1])
        return family


RPCS = Counter("routerpc_rpcs_total", "RPCs by method and final gRPC code.", ["method", "code"])
RPC_SECONDS = Histogram("routerpc_rpc_duration_seconds", "Whole RPC duration.", ["method"])
UPSTREAM_SECONDS = Histogram(
    "routerpc_upstream_duration_seconds",
    "Upstream call duration (unary: until the reply; streams: until the stream ends).",
    ["method"],
)
FIRST_CHUNK_SECONDS = Histogram(
    "routerpc_time_to_first_chunk_seconds",
    "From the start of a StreamChat to its first relayed chunk.",
)
IN_FLIGHT = Gauge("routerpc_in_flight_rpcs", "RPCs in progress.", ["method"])
RETRIES = Counter("routerpc_upstream_retries_total", "Upstream attempts that were retries.")
SHED = Counter("routerpc_shed_total", "Calls refused by the concurrency limit.")
UPSTREAM_RESPONSES = Counter(
    "routerpc_upstream_responses_total",
    "Upstream attempts by HTTP status (or failure reason when there was none).",
    ["status"],
)
TOKENS = Counter(
    "routerpc_tokens_total",
    "Tokens by kind (prompt, completion, reasoning, cached), model, provider, quantization and "
    "caller.",
    ["kind", "model", "provider", "quantization", "caller"],
)
COST = Counter(
    "routerpc_cost_usd_total",
    "Cost in USD (OpenRouter credits) by model, provider, quantization and caller.",
    ["model", "provider", "quantization", "caller"],
)


METRICS: tuple[_Metric, ...] = (
    *(RPCS, RPC_SECONDS, UPSTREAM_SECONDS, FIRST_CHUNK_SECONDS, IN_FLIGHT),
    *(RETRIES, SHED, UPSTREAM_RESPONSES, TOKENS, COST),
)
"""The gateway's metrics, in the order they are exported."""


class BoundedLabel:
    """Keeps at most ``limit`` distinct values of one label; later newcomers become "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        value = value[:100] or "unknown"
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


_model_label = BoundedLabel(300)
_provider_label = BoundedLabel(200)
_caller_label = BoundedLabel(500)


def count_retry() -> None:
    RETRIES.inc()


def count_shed() -> None:
    SHED.inc()


def count_upstream_status(status: str) -> None:
    """One upstream attempt's outcome: its HTTP status or a failure reason (cut to 40
    characters; both sets are small)."""
    UPSTREAM_RESPONSES.inc((status[:40],))


_USAGE_KINDS = ("prompt", "completion", "reasoning", "cached")
_MAX_USAGE_KEYS = 4096
_usage_keys: dict[Labels, tuple[Labels, ...]] = {}
"""The raw model, provider, quantization and caller of a served call -> the series keys its
token counts (one per kind) and cost add to, bounded labels applied. Cached because building
the five keys (three bounded labels, five tuples) was most of a call's metrics work; cleared
when full, since raw values are unbounded (the keys they map to are not, and do not change)."""


def _usage_series(raw: Labels) -> tuple[Labels, ...]:
    model, provider, quantization, caller = raw
    labels = (
        _model_label(model),
        _provider_label(provider),
        quantization or "unknown",
        _caller_label(caller),
    )
    keys = (*((kind, *labels) for kind in _USAGE_KINDS), labels)
    if len(_usage_keys) >= _MAX_USAGE_KEYS:
        _usage_keys.clear()
    _usage_keys[raw] = keys
    return keys


def count_call(record: CallRecord, elapsed: float) -> None:
    """Everything one finished call adds to the metrics."""
    method = record.method
    RPCS.inc((method, record.code))
    RPC_SECONDS.observe(elapsed, (method,))
    if record.upstream_seconds is not None:
        UPSTREAM_SECONDS.observe(record.upstream_seconds, (method,))
    if record.first_chunk_seconds is not None and method == "StreamChat":
        FIRST_CHUNK_SECONDS.observe(record.first_chunk_seconds)
    cost = record.cost
    if record.prompt_tokens or record.completion_tokens or cost is not None:
        raw = (record.model, record.provider, record.quantization, record.caller)
        keys = _usage_keys.get(raw) or _usage_series(raw)
        if record.prompt_tokens:
            TOKENS.inc(keys[0], record.prompt_tokens)
        if record.completion_tokens:
            TOKENS.inc(keys[1], record.completion_tokens)
        if record.reasoning_tokens:
            TOKENS.inc(keys[2], record.reasoning_tokens)
        if record.cached_tokens:
            TOKENS.inc(keys[3], record.cached_tokens)
        if cost:
            COST.inc(keys[4], cost)


class TalliesCollector(Collector):
    """This process's tallies, for the single-process scrape (a thread off the event loop).

    Each dict is copied whole before it is read: ``dict.copy`` runs in C under the GIL, so the
    event loop's updates land before or after it, never half-way (a histogram series may show
    an observation in its bucket a moment before it shows in its sum).
    """

    def collect(self) -> Iterator[Any]:
        for metric in METRICS:
            yield metric.family(metric.values.copy().items())


REGISTRY.register(TalliesCollector())  # the default registry, which one process serves


def _snapshot() -> str:
    """Every series of every metric as JSON: name -> ``[[label values, value], ...]``."""
    return json.dumps(
        {m.name: [[k, v] for k, v in m.values.copy().items()] for m in METRICS},
        separators=(",", ":"),
    )


class SummedFilesCollector(Collector):
    """The sum over the workers' tally files in ``directory`` (the master's scrape)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> Iterator[Any]:
        totals = {m.name: m.empty() for m in METRICS}
        by_name = {m.name: m for m in METRICS}
        for path in sorted(self._directory.glob("worker-*.json")):
            try:
                written = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # unreadable: that worker's figures show again at the next scrape
            for name, series in written.items():
                metric = by_name.get(name)
                if metric is None:
                    continue
                total = totals[name]
                for labels, value in series:
                    key = tuple(labels)
                    total[key] = value if key not in total else metric.added(total[key], value)
        for metric in METRICS:
            yield metric.family(totals[metric.name].items())


def write_tallies(path: Path, text: str | None = None) -> str:
    """Write this worker's tallies (or ``text``, a snapshot of them) to ``path``, replacing it
    in one step so the master never reads a half-written file; what was written."""
    text = _snapshot() if text is None else text
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    os.replace(partial, path)
    return text


async def write_tallies_every(path: Path, seconds: float = FLUSH_INTERVAL_S) -> None:
    """A worker's task until cancelled: write the tallies each ``seconds`` they changed (the
    worker writes them once more itself when it has drained). A few kilobytes to a local file
    once a second: written from the event loop, as the logs are."""
    written = ""
    while True:
        await asyncio.sleep(seconds)
        current = _snapshot()
        if current != written:
            try:
                written = write_tallies(path, current)
            except OSError as error:  # a full or vanished disk: the calls go on, try again
                log.warning("could not write this worker's metrics to %s: %s", path, error)
