"""``bench.bench`` interleaves short slices over servers and over each server's processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench import bench
from bench.bench import Bench, Load, Plan, Server, Target


class _Checker:
    def forget(self, port: int) -> None:
        pass


class _Procs:
    def stop(self, proc: Any) -> None:
        pass


def _bench(monkeypatch: pytest.MonkeyPatch, plan: Plan) -> list[tuple[str, int, int, int]]:
    """A Bench whose servers are stand-ins and whose measurement only notes (server, process,
    concurrency, slice), in the order slices were measured."""
    measured: list[tuple[str, int, int, int]] = []
    runner = Bench.__new__(Bench)  # no checker process, no nginx
    runner.plan = plan
    runner.procs = _Procs()  # type: ignore[assignment]
    runner.checker = _Checker()  # type: ignore[assignment]
    ports = iter(range(20_000, 30_000))

    def start(section: str, target: Target, mode: str, cpus: str, instance: int = 1) -> Server:
        load = Load("http://127.0.0.1:1/", Path("/dev/null"), [], h1=False)
        proc = None if target.kind == "http" else object()
        port = next(ports)
        return Server(section, target, proc, port, port, cpus, load, dict, instance)  # type: ignore[arg-type]

    def measure(server: Server, mode: str, concurrency: int, slice_: int) -> None:
        if mode == "unary":
            measured.append((server.target.key, server.instance, concurrency, slice_))

    monkeypatch.setattr(runner, "_server", start)
    monkeypatch.setattr(runner, "measure", measure)
    targets = [
        Target("http", "direct", "http"),
        Target("passthrough", "pass-through", "passthrough", "aiohttp"),
        Target("gateway", "gateway", "gateway", "aiohttp"),
    ]
    runner.section("main", targets, slices=plan.slices, instances=plan.instances)
    return measured


def _plan(slices: int, instances: int) -> Plan:
    quick = Plan.of(quick=True)
    return Plan(
        **{**quick.__dict__, "concurrencies": (16,), "slices": slices, "instances": instances}
    )


def test_each_slice_goes_to_the_next_process_of_a_server_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured = _bench(monkeypatch, _plan(slices=6, instances=3))

    gateway = [(instance, slice_) for key, instance, _, slice_ in measured if key == "gateway"]
    assert gateway == [(1, 1), (2, 2), (3, 3), (1, 4), (2, 5), (3, 6)]


def test_the_direct_http_baseline_has_one_process_whatever_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured = _bench(monkeypatch, _plan(slices=4, instances=3))

    assert {instance for key, instance, _, _ in measured if key == "http"} == {1}
    assert sum(1 for key, *_ in measured if key == "http") == 4


def test_servers_take_turns_within_a_slice_in_a_rotating_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured = _bench(monkeypatch, _plan(slices=3, instances=2))

    firsts = [next(key for key, _, _, s in measured if s == slice_) for slice_ in (1, 2, 3)]
    assert firsts == ["http", "passthrough", "gateway"]
    assert len(measured) == 3 * 3  # every server once per slice


def test_a_full_run_spreads_its_slices_over_several_processes() -> None:
    plan = bench.Plan.of(quick=False)

    assert plan.instances > 1
    assert plan.slices % plan.instances == 0  # each process measured as often as the others


class _Started:
    """``Processes`` that only note the environment each server was started with."""

    def __init__(self) -> None:
        self.envs: list[dict[str, str]] = []

    def start(self, name: str, argv: Any, cpus: str, env: dict[str, str] | None = None) -> Any:
        assert env is not None
        self.envs.append(env)
        return object()

    def wait_port(self, proc: Any, port: int, seconds: float) -> None:
        pass


@pytest.mark.parametrize("kind", ["echo", "passthrough", "gateway"])
def test_a_server_process_runs_with_the_hash_seed_it_is_given(kind: str) -> None:
    tools = bench.Tools("python3", "routerpc", "h2load", "nginx", "")
    procs = _Started()
    target = Target(kind, kind, kind, "aiohttp" if kind != "echo" else "")
    for seed in (1, 2):
        bench.start_server(procs, tools, target, "http://127.0.0.1:1", hash_seed=seed)  # type: ignore[arg-type]
    bench.start_server(procs, tools, target, "http://127.0.0.1:1")  # type: ignore[arg-type]

    seeds = [env.get("PYTHONHASHSEED") for env in procs.envs]
    assert seeds[:2] == ["1", "2"]
    assert seeds[2] == os.environ.get("PYTHONHASHSEED")  # without a seed: as inherited


def test_process_n_of_every_server_is_given_hash_seed_n(monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[tuple[str, int | None]] = []

    def start_server(procs: Any, tools: Any, target: Target, upstream: str, **options: Any) -> Any:
        given.append((target.key, options.get("hash_seed")))
        return type("Proc", (), {"pid": 1})(), 1

    class _Upstream:
        def base(self, mode: str, *, http2: bool) -> str:
            return "http://127.0.0.1:1"

    runner = Bench.__new__(Bench)
    runner.upstream, runner.direct = _Upstream(), object()  # type: ignore[assignment]
    runner.files = {"unary.grpc": Path("/dev/null")}
    runner.checker = _Checker()  # type: ignore[assignment]
    runner.procs, runner.tools = _Procs(), None  # type: ignore[assignment]
    monkeypatch.setattr(bench, "start_server", start_server)
    for key in ("passthrough", "gateway"):
        for instance in (1, 2, 3):
            target = Target(key, key, key, "aiohttp")
            runner._server("main", target, "unary", "0", instance)

    assert given == [(key, n) for key in ("passthrough", "gateway") for n in (1, 2, 3)]
