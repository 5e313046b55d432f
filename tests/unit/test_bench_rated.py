"""The workers target's section offers each worker the same load (h2load ``--rps``), and the
report judges the target there when a run has it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import bench, report
from bench.bench import Bench, Load, Plan, Rated, Server, Target, Tools

_SUMMARY = """finished in 1.00s, 600.00 req/s, 1.00MB/s
requests: 600 total, 600 started, 600 done, 600 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 600 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 1.00MB (1000) total, 1.00KB (100) headers (space savings 0.00%), 0B (0) data
"""


def test_each_worker_gets_the_connections_and_rate_of_one() -> None:
    one = Rated.per_worker(300, 16, workers=1)
    two = Rated.per_worker(300, 16, workers=2)
    assert (one.clients, one.streams, one.per_client, one.per_second) == (4, 4, 75, 300)
    assert (two.clients, two.streams, two.per_client, two.per_second) == (8, 4, 75, 600)


def test_a_rated_load_runs_h2load_with_its_connections_and_rps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, _SUMMARY, "")

    monkeypatch.setattr(subprocess, "run", run)
    tools = Tools("python", "routerpc", "h2load", "nginx", "", set())
    load = Load("http://127.0.0.1:1/x", Path("/dev/null"), [], h1=False)
    rated = Rated.per_worker(300, 16, workers=2)
    bench.h2load(tools, load, n=600, concurrency=16, log=None, timeout=5, rated=rated)
    bench.h2load(tools, load, n=600, concurrency=16, log=None, timeout=5)
    with_rate, full_speed = (argv[argv.index("h2load") :] for argv in seen)
    assert with_rate[with_rate.index("-c") + 1] == "8"
    assert "--rps=75" in with_rate
    assert full_speed[full_speed.index("-c") + 1] == "4"
    assert not any(arg.startswith("--rps") for arg in full_speed)


def test_a_rated_section_measures_its_concurrency_with_the_rates_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured: list[tuple[str, int, dict[str, int]]] = []
    runner = Bench.__new__(Bench)
    runner.plan = Plan.of(quick=True)
    runner.procs = type("P", (), {"stop": lambda self, proc: None})()
    runner.checker = type("C", (), {"forget": lambda self, port: None})()

    def start(section: str, target: Target, mode: str, cpus: str, instance: int = 1) -> Server:
        load = Load("http://127.0.0.1:1/", Path("/dev/null"), [], h1=False)
        return Server(section, target, object(), 1, 1, cpus, load, dict, instance)  # type: ignore[arg-type]

    def measure(server: Server, mode: str, concurrency: int, slice_: int) -> None:
        measured.append((mode, concurrency, server.rates))

    monkeypatch.setattr(runner, "_server", start)
    monkeypatch.setattr(runner, "measure", measure)
    pair = [Target(f"w{n}", f"w{n}", "gateway", "aiohttp", n) for n in (1, 2)]
    rates = {"unary": 300, "stream": 100}
    runner.section("workers-rate", pair, slices=2, instances=1, concurrencies=(16,), rates=rates)
    assert {c for _, c, _ in measured} == {16}
    assert all(given == rates for _, _, given in measured)
    assert len(measured) == 2 * 2 * 2  # modes x targets x slices


def _run(section: str, target: str, mode: str, cpu_ms: float) -> dict[str, Any]:
    return {
        "section": section,
        "target": target,
        "label": target,
        "kind": "gateway",
        "mode": mode,
        "concurrency": 16,
        "slice": 1,
        "clients": 4,
        "streams_per_client": 4,
        "requests": {"total": 1000, "succeeded": 1000},
        "rps": 600.0,
        "offered_rps": 600 if section == "workers-rate" else None,
        "h2load_seconds": 1.0,
        "latency_ms": {"p50": 1.0, "p99": 2.0},
        "cpu_ms_per_request": cpu_ms,
        "cpu_seconds": cpu_ms,
        "complete": True,
    }


def _workers_verdict(runs: list[dict[str, Any]]) -> report.Verdict:
    results = {
        "workers_targets": [{"key": "w1", "workers": 1}, {"key": "w2", "workers": 2}],
        "runs": runs,
    }
    verdicts = report._verdicts(results, report.Index(runs), [], [16])
    [workers] = [v for v in verdicts if v.name.startswith("CPU/request")]
    return workers


def test_the_workers_target_is_judged_at_the_same_load_per_worker_when_measured() -> None:
    runs = [
        _run(section, target, mode, cpu)
        for mode in ("unary", "stream")
        for section, target, cpu in (
            ("workers", "w1", 1.0),
            ("workers", "w2", 1.3),  # full speed: the second worker shares the load's core
            ("workers-rate", "w1", 1.8),
            ("workers-rate", "w2", 1.75),
        )
    ]
    verdict = _workers_verdict(runs)
    assert verdict.met is True
    assert "same offered load per worker" in verdict.name
    assert "0.97" in verdict.measured


def test_an_older_run_without_the_rated_section_is_judged_at_full_speed() -> None:
    runs = [
        _run("workers", target, mode, cpu)
        for mode in ("unary", "stream")
        for target, cpu in (("w1", 1.0), ("w2", 1.3))
    ]
    verdict = _workers_verdict(runs)
    assert verdict.met is False
    assert "1.30" in verdict.measured
