"""The gateway's tallied metrics export what prometheus-client's own metrics would, and the
master's scrape sums what its workers wrote."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from routerpc_gateway import metrics
from routerpc_gateway.metrics import (
    Counter,
    Gauge,
    Histogram,
    SummedFilesCollector,
    write_tallies,
    write_tallies_every,
)
from routerpc_gateway.observe import CallRecord

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
OBSERVED = (0.0, 0.005, 0.0051, 0.3, 1.0, 7.0, 299.9, 300.0, 301.0, 1e9)


class _One(Collector):
    def __init__(self, metric: Counter | Gauge | Histogram) -> None:
        self._metric = metric

    def collect(self) -> Iterator[object]:
        yield self._metric.family(self._metric.values.items())


def _exposition(*collectors: Collector) -> list[str]:
    registry = CollectorRegistry(auto_describe=True)
    for collector in collectors:
        registry.register(collector)
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]  # ours exports no creation time


def test_histogram_exposition_matches_prometheus_client() -> None:
    theirs = CollectorRegistry()
    reference = prometheus_client.Histogram(
        "t_seconds", "help", ["method"], buckets=SECONDS, registry=theirs
    )
    ours = Histogram("t_seconds", "help", ["method"], SECONDS)
    for value in OBSERVED:
        reference.labels("Chat").observe(value)
        ours.observe(value, ("Chat",))
    reference.labels("StreamChat").observe(0.02)
    ours.observe(0.02, ("StreamChat",))
    expected = [line for line in generate_latest(theirs).decode().splitlines()]
    assert _exposition(_One(ours)) == [line for line in expected if "_created" not in line]


def test_unlabelled_metrics_export_zero_before_any_event() -> None:
    theirs = CollectorRegistry()
    prometheus_client.Counter("c_total", "help", registry=theirs)
    prometheus_client.Histogram("h_seconds", "help", buckets=SECONDS, registry=theirs)
    expected = [line for line in generate_latest(theirs).decode().splitlines()]
    ours = _exposition(_One(Counter("c_total", "help")), _One(Histogram("h_seconds", "help")))
    assert ours == [line for line in expected if "_created" not in line]


def test_counter_and_gauge_exposition_matches_prometheus_client() -> None:
    theirs = CollectorRegistry()
    counter = prometheus_client.Counter("c_total", "help", ["status"], registry=theirs)
    gauge = prometheus_client.Gauge("g", "help", ["method"], registry=theirs)
    ours_counter, ours_gauge = Counter("c_total", "help", ["status"]), Gauge("g", "help", ["m"])
    for status, amount in (("200", 1), ("502", 2.5), ("200", 3)):
        counter.labels(status).inc(amount)
        ours_counter.inc((status,), amount)
    gauge.labels("Chat").inc()
    gauge.labels("Chat").inc()
    gauge.labels("Chat").dec()
    for amount in (1, 1, -1):
        ours_gauge.inc(("Chat",), amount)
    expected = generate_latest(theirs).decode().replace('{method="Chat"}', '{m="Chat"}')
    assert _exposition(_One(ours_counter), _One(ours_gauge)) == [
        line for line in expected.splitlines() if "_created" not in line
    ]


@pytest.fixture
def fresh_tallies() -> Iterator[None]:
    """The module's metrics emptied for a test and restored after it."""
    saved = [(m, dict(m.values)) for m in metrics.METRICS]
    for metric in metrics.METRICS:
        metric.values.clear()
        metric.values.update(metric.empty())
    yield
    for metric, values in saved:
        metric.values.clear()
        metric.values.update(values)


def _samples(collector: Collector) -> dict[str, float]:
    samples = {}
    for line in _exposition(collector):
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


@pytest.mark.usefixtures("fresh_tallies")
def test_master_scrape_sums_the_files_its_workers_wrote(tmp_path: Path) -> None:
    metrics.RPCS.inc(("Chat", "OK"))
    metrics.RPC_SECONDS.observe(0.02, ("Chat",))
    metrics.IN_FLIGHT.inc(("Chat",), 1)
    write_tallies(tmp_path / "worker-0.json")
    metrics.RPCS.inc(("Chat", "OK"), 2)
    metrics.RPCS.inc(("Chat", "NOT_FOUND"))
    metrics.RPC_SECONDS.observe(7.0, ("Chat",))
    metrics.IN_FLIGHT.inc(("Chat",), -1)
    metrics.count_retry()
    write_tallies(tmp_path / "worker-1.json")
    (tmp_path / "worker-2.json").write_text("{not json")  # a worker's unreadable file

    summed = _samples(SummedFilesCollector(tmp_path))

    assert summed['routerpc_rpcs_total{code="OK",method="Chat"}'] == 1 + 3
    assert summed['routerpc_rpcs_total{code="NOT_FOUND",method="Chat"}'] == 1
    assert summed['routerpc_rpc_duration_seconds_count{method="Chat"}'] == 1 + 2
    assert summed['routerpc_rpc_duration_seconds_bucket{le="0.025",method="Chat"}'] == 1 + 1
    assert summed['routerpc_rpc_duration_seconds_bucket{le="10.0",method="Chat"}'] == 1 + 2
    assert summed['routerpc_rpc_duration_seconds_sum{method="Chat"}'] == pytest.approx(
        0.02 + 0.02 + 7.0
    )
    assert summed['routerpc_in_flight_rpcs{method="Chat"}'] == 1 + 0
    assert summed["routerpc_upstream_retries_total"] == 0 + 1
    assert summed["routerpc_shed_total"] == 0


@pytest.mark.usefixtures("fresh_tallies")
def test_master_scrape_before_any_worker_wrote_shows_zeroes(tmp_path: Path) -> None:
    summed = _samples(SummedFilesCollector(tmp_path))
    assert summed["routerpc_upstream_retries_total"] == 0
    assert summed["routerpc_time_to_first_chunk_seconds_count"] == 0
    assert not [name for name in summed if name.startswith("routerpc_rpcs_total")]


@pytest.mark.usefixtures("fresh_tallies")
async def test_worker_writes_its_tallies_again_only_after_they_changed(tmp_path: Path) -> None:
    path = tmp_path / "worker-0.json"
    writer = asyncio.create_task(write_tallies_every(path, seconds=0.01))
    try:
        for _ in range(500):  # bounded: 5 s
            if path.exists():
                break
            await asyncio.sleep(0.01)
        first = path.stat().st_mtime_ns
        await asyncio.sleep(0.1)
        assert path.stat().st_mtime_ns == first, "rewritten although nothing changed"
        metrics.count_shed()
        for _ in range(500):
            written = json.loads(path.read_text())
            if written["routerpc_shed_total"] == [[[], 1.0]]:
                break
            await asyncio.sleep(0.01)
        assert written["routerpc_shed_total"] == [[[], 1.0]]
    finally:
        writer.cancel()


@pytest.mark.usefixtures("fresh_tallies")
async def test_worker_that_cannot_write_its_tallies_warns_and_keeps_trying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "not-yet"
    path = folder / "worker-0.json"
    with caplog.at_level(logging.WARNING, logger="routerpc.gateway"):
        writer = asyncio.create_task(write_tallies_every(path, seconds=0.01))
        try:
            for _ in range(500):  # bounded: 5 s
                if "could not write this worker's metrics" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            assert "could not write this worker's metrics" in caplog.text
            folder.mkdir()
            for _ in range(500):
                if path.exists():
                    break
                await asyncio.sleep(0.01)
            assert json.loads(path.read_text())["routerpc_shed_total"] == [[[], 0.0]]
            assert not writer.done()
        finally:
            writer.cancel()


def _served(model: str, prompt: int, completion: int, **more: Any) -> None:
    record = CallRecord("id", "Chat")
    record.model, record.provider, record.caller = model, "P", "svc"
    record.prompt_tokens, record.completion_tokens = prompt, completion
    for name, value in more.items():
        setattr(record, name, value)
    metrics.count_call(record, 0.01)


@pytest.mark.usefixtures("fresh_tallies")
def test_served_calls_add_tokens_by_kind_and_cost_under_bounded_labels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_model_label", metrics.BoundedLabel(2))
    monkeypatch.setattr(metrics, "_usage_keys", {})
    monkeypatch.setattr(metrics, "_MAX_USAGE_KEYS", 2)  # cleared more than once below

    _served("a/one", 3, 4, reasoning_tokens=2, cost=0.5)
    _served("a/one", 1, 1, cached_tokens=5, quantization="fp8")
    _served("a/two", 1, 0)
    _served("a/three", 1, 0)  # a third model: past the bound of two
    _served("a/four", 2, 0, cost=0.25)  # also past it, and after the cache was cleared
    _served("a/one", 1, 0)  # still under its own name after the clearing

    def tokens(kind: str, model: str, quantization: str = "unknown") -> float:
        value: float = metrics.TOKENS.values.get((kind, model, "P", quantization, "svc"), 0.0)
        return value

    assert tokens("prompt", "a/one") == 3 + 1
    assert tokens("completion", "a/one") == 4
    assert tokens("reasoning", "a/one") == 2
    assert tokens("prompt", "a/one", "fp8") == 1
    assert tokens("cached", "a/one", "fp8") == 5
    assert tokens("prompt", "a/two") == 1
    assert tokens("prompt", "other") == 1 + 2
    assert all(key[1] in {"a/one", "a/two", "other"} for key in metrics.TOKENS.values)
    assert not any(key[0] == "completion" and key[1] != "a/one" for key in metrics.TOKENS.values)
    assert metrics.COST.values == {
        ("a/one", "P", "unknown", "svc"): 0.5,
        ("other", "P", "unknown", "svc"): 0.25,
    }
    assert len(metrics._usage_keys) <= 2
