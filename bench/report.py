"""bench/RESULTS.md from one run's raw results (the JSON ``bench.bench`` writes).

python -m bench.report bench/results/latest.json bench/RESULTS.md
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNARY_VS_PASSTHROUGH = 1.25
STREAM_VS_PASSTHROUGH = 1.25
UNARY_VS_ECHO = 2.5
RELAY_P50_MS = 1.0
KIB_PER_STREAM = 100.0
WORKER_DRIFT = 0.10
CLIENTS = ("aiohttp", "httpx", "httpx-http2", "httpx-aiohttp")
"""The upstream clients, in the order of the upstream-client table; aiohttp is the reference."""

Run = dict[str, Any]


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], align: str = "") -> list[str]:
    head = list(header)
    spec = align or "l" + "r" * (len(head) - 1)
    marks = [":---" if a == "l" else "---:" for a in spec]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _median(values: Iterable[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


SPREAD_BLOCKS = 4
"""The CPU spread compares the pooled CPU of this many consecutive blocks of a row's slices."""


def _succeeded(run: Run) -> int:
    return int((run.get("requests") or {}).get("succeeded") or 0)


def _weighted_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """The mean of (value, weight) pairs; None when the weights sum to nothing."""
    counted = list(pairs)
    total = sum(w for _, w in counted)
    return sum(v * w for v, w in counted) / total if total else None


def _pool_per_request(runs: list[Run], key: str) -> float | None:
    """A figure recorded per request in each slice (the server's, nginx's, h2load's CPU ms per
    request) pooled over slices: its mean weighted by each slice's completed requests, i.e. all
    the CPU of the slices over all their requests. Every request weighs the same, and no one
    slice's figure is picked, as a median of per-slice figures would."""
    return _weighted_mean((float(r[key]), _succeeded(r)) for r in runs if r.get(key) is not None)


def _pool_cpu(runs: list[Run]) -> float | None:
    """Server CPU ms per request pooled over ``runs``."""
    return _pool_per_request(runs, "cpu_ms_per_request")


def _seconds(run: Run) -> float:
    """h2load's own duration of a slice, without its process start-up (a few percent of a
    0.3 s slice's wall time); older records carry it as req/s only."""
    if run.get("h2load_seconds"):
        return float(run["h2load_seconds"])
    if run.get("rps") and _succeeded(run):
        return _succeeded(run) / float(run["rps"])
    return float(run.get("wall_seconds") or 0.0)


def _pool_rps(runs: list[Run]) -> float | None:
    seconds = sum(_seconds(r) for r in runs)
    return sum(_succeeded(r) for r in runs) / seconds if seconds else None


def _time_weighted(runs: list[Run], key: str) -> float | None:
    """The mean of a rate recorded per slice (cores of other load) weighted by wall time."""
    return _weighted_mean(
        (float(r[key]), float(r.get("wall_seconds") or 0.0)) for r in runs if key in r
    )


def _blocks(runs: list[Run], count: int = SPREAD_BLOCKS) -> list[list[Run]]:
    """``runs`` (in slice order) cut into ``count`` consecutive blocks of near-equal size (one
    slice each when there are fewer)."""
    k = min(count, len(runs))
    return [runs[i * len(runs) // k : (i + 1) * len(runs) // k] for i in range(k)]


def _spread(runs: list[Run], pooled: float | None) -> float | None:
    """(max - min) / pooled over the pooled CPU of consecutive blocks of slices: how far the
    figure moved within the run (drift of the machine and noise), on the same footing as the
    pooled figure itself. None with fewer than two slices."""
    figures = [f for f in (_pool_cpu(b) for b in _blocks(runs)) if f is not None]
    if not pooled or len(figures) < 2:
        return None
    return (max(figures) - min(figures)) / pooled


def _slice_number(run: Run) -> int:
    return int(run.get("slice") or run.get("round") or 0)


def _aggregate(runs: list[Run]) -> Run:
    """Slices of one (section, server, mode, concurrency) as one row: figures pooled over the
    complete slices, and whether every slice was complete (a row with an incomplete slice is
    not OK and stays out of every ratio). p50/p99: the median over slices of each one's."""
    ordered = sorted(runs, key=_slice_number)
    counted = [r for r in ordered if r.get("complete")] or ordered
    cpu = _pool_cpu(counted)
    first = ordered[0]
    return {
        **{k: first[k] for k in ("label", "kind", "clients", "streams_per_client")},
        "slices": len(ordered),
        "requests": {"total": first["requests"]["total"]},
        "rps": _pool_rps(counted),
        "latency_ms": {
            "p50": _median(r["latency_ms"].get("p50") for r in counted),
            "p99": _median(r["latency_ms"].get("p99") for r in counted),
        },
        "cpu_ms_per_request": cpu,
        "cpu_spread": _spread(counted, cpu),
        "upstream_cpu_ms_per_request": _pool_per_request(counted, "upstream_cpu_ms_per_request"),
        "loadgen_cpu_ms_per_request": _pool_per_request(counted, "loadgen_cpu_ms_per_request"),
        "other_load": _time_weighted(counted, "other_load_cores"),
        "complete": all(r.get("complete") for r in ordered),
    }


Key = tuple[str, str, str, int]


def _groups(runs: list[Run]) -> dict[Key, list[Run]]:
    """The slices of each (section, server, mode, concurrency), in the order they ran."""
    groups: dict[Key, list[Run]] = {}
    for r in runs:
        groups.setdefault((r["section"], r["target"], r["mode"], r["concurrency"]), []).append(r)
    return groups


@dataclass
class Index:
    runs: list[Run]

    def __post_init__(self) -> None:
        self._groups = _groups(self.runs)

    def get(self, section: str, target: str, mode: str, concurrency: int) -> Run | None:
        """One server at one concurrency, its slices pooled."""
        matching = self._groups.get((section, target, mode, concurrency))
        return _aggregate(matching) if matching else None

    def cpu(self, section: str, target: str, mode: str, concurrency: int) -> float | None:
        run = self.get(section, target, mode, concurrency)
        if run is None or not run.get("complete"):
            return None
        value = run.get("cpu_ms_per_request")
        return float(value) if value else None

    def ratio(
        self,
        top: tuple[str, str],
        bottom: tuple[str, str],
        mode: str,
        concurrency: int,
    ) -> float | None:
        a = self.cpu(top[0], top[1], mode, concurrency)
        b = self.cpu(bottom[0], bottom[1], mode, concurrency)
        if a is None or b is None:
            return None
        return a / b


@dataclass
class Verdict:
    name: str
    target: str
    measured: str
    met: bool | None

    def row(self) -> list[str]:
        word = {True: "**met**", False: "**missed**", None: "not measured"}[self.met]
        return [self.name, self.target, self.measured, word]


def _ratio_verdict(
    name: str,
    limit: float,
    concurrencies: list[int],
    *,
    index: Index,
    top: tuple[str, str],
    bottom: tuple[str, str],
    mode: str,
) -> Verdict:
    parts, oks = [], []
    for c in concurrencies:
        value = index.ratio(top, bottom, mode, c)
        parts.append(f"c={c}: {_num(value)}")
        if value is not None:
            oks.append(value <= limit)
    met = None if not oks else all(oks) and len(oks) == len(concurrencies)
    if oks and not all(oks):
        met = False
    return Verdict(name, f"≤ {limit:g}x at every concurrency", ", ".join(parts), met)


def _mode_table(
    index: Index, section: str, targets: list[dict[str, Any]], mode: str, concurrencies: list[int]
) -> list[str]:
    echo_key = "echo"
    rows = []
    for target in targets:
        for c in concurrencies:
            run = index.get(section, target["key"], mode, c)
            if run is None:
                continue
            latency = run["latency_ms"]
            floor = index.cpu(section if section == "main" else "main", echo_key, mode, c)
            cpu = run.get("cpu_ms_per_request")
            vs_echo = cpu / floor if cpu and floor and target["kind"] != "http" else None
            ok = "yes" if run.get("complete") else "**NO**"
            spread = run.get("cpu_spread")
            rows.append(
                [
                    target["label"],
                    str(c),
                    f"{run['clients']}x{run['streams_per_client']}",
                    f"{run['requests']['total']} x {run['slices']}",
                    _num(run.get("rps"), 0),
                    _num(latency.get("p50")),
                    _num(latency.get("p99")),
                    _num(cpu, 3),
                    "-" if spread is None else f"{spread:.0%}",
                    _num(vs_echo),
                    _num(run.get("upstream_cpu_ms_per_request"), 3),
                    _num(run.get("loadgen_cpu_ms_per_request"), 3),
                    _num(run.get("other_load")),
                    ok,
                ]
            )
    header = [
        "server",
        "conc.",
        "conns x streams",
        "requests x slices",
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        "CPU spread",
        "CPU vs echo",
        "nginx CPU ms/req",
        "h2load CPU ms/req",
        "other load",
        "all OK",
    ]
    return _table(header, rows, "lrrrrrrrrrrrrl")


def build(results: dict[str, Any]) -> str:
    machine = results.get("machine", {})
    plan = results.get("plan", {})
    index = Index(results.get("runs", []))
    concurrencies = list(plan.get("concurrencies") or [])
    targets = results.get("targets", [])
    # The targets are judged where every concurrency was measured (not the extra clients).
    gateways = [t for t in targets if t["kind"] == "gateway" and not t.get("only_at")]
    out: list[str] = []
    out += [
        "# Benchmark results (issue 6)",
        "",
        f"Generated by `bench/run{' --quick' if plan.get('mode') == 'quick' else ''}` "
        f"({plan.get('mode')} mode) on {results.get('started')}, in {results.get('seconds')} s; "
        f"repository at {machine.get('git_commit')}"
        f"{' with uncommitted changes under service/' if machine.get('service_dirty') else ''}. "
        "Method and how to read these tables: [bench/README.md](README.md). "
        "Raw figures: `bench/results/latest.json`.",
        "",
        "Ratios, not absolute times, are the results: every figure below comes from one run on "
        "one machine, server pinned to core 0, load generator and upstream to core 1.",
        "",
        "## Machine",
        "",
    ]
    packages = ", ".join(f"{k} {v}" for k, v in sorted(machine.get("packages", {}).items()))
    out += _table(
        ["what", "value"],
        [
            ["nproc", str(machine.get("nproc_command") or machine.get("nproc"))],
            ["CPU", str(machine.get("cpu_model"))],
            ["memory", f"{machine.get('memory_gib')} GiB"],
            ["kernel", str(machine.get("kernel"))],
            ["OS", str(machine.get("os"))],
            ["Python", str(machine.get("python"))],
            ["packages", packages],
            ["nginx", str(machine.get("nginx"))],
            ["h2load", str(machine.get("h2load"))],
            ["gateway flags used", _gateway_flags(machine)],
            ["load average at start", str(machine.get("loadavg", "-"))],
        ],
        "ll",
    )

    verdicts = _verdicts(results, index, gateways, concurrencies)
    out += _load_note(results)
    out += ["", "## Targets", ""]
    out += _table(["target", "wanted", "measured", "verdict"], [v.row() for v in verdicts], "llll")
    out += [
        "",
        "CPU ratios compare CPU ms per request of the server process (all threads, and all "
        "worker processes), read from each process's CPU-time clock around each measured "
        "slice.",
        "",
        _method_note(plan),
    ]

    for mode, title, what in (
        ("unary", "Unary (`Chat`)", "one completion per call"),
        ("stream", "Streaming (`StreamChat`)", "10 content chunks + 1 usage chunk per call"),
    ):
        out += ["", f"## {title}", "", f"{what}; latency is the whole call as h2load sees it.", ""]
        out += _mode_table(index, "main", targets, mode, concurrencies)

    out += ["", "## Upstream client (same run)", ""]
    out += _client_table(index, targets, concurrencies)

    out += ["", "## Event loop (same run)", ""]
    out += _loop_table(index, targets, concurrencies)

    if results.get("workers_targets"):
        out += ["", "## Workers", ""]
        section, at = _workers_target_section(results, concurrencies)
        if section == "workers-rate":
            out += _workers_section(results, index, at, "workers-rate")
            out += ["", "### At full speed, sharing the cores with h2load (for information)", ""]
        out += _workers_section(results, index, concurrencies, "workers")
        if any(r["section"] == "workers-1core" for r in results.get("runs", [])):
            out += ["", "### Both worker counts squeezed onto core 0 (for information)", ""]
            out += _workers_section(results, index, concurrencies, "workers-1core")

    out += ["", "## Relay delay (slow-drip upstream, one chunk every 50 ms)", ""]
    relay = results.get("relay") or []
    out += _table(
        ["path", "chunks", "p50 ms", "p99 ms", "max ms", "mean ms", "errors"],
        [
            [
                r["label"],
                str(r["samples"]),
                _num(r["p50_ms"], 3),
                _num(r["p99_ms"], 3),
                _num(r["max_ms"], 3),
                _num(r["mean_ms"], 3),
                str(len(r.get("errors") or [])),
            ]
            for r in relay
        ],
    )
    out += [
        "",
        "Delay = the time a chunk reaches the Python client minus the `time.time_ns()` the "
        "sender wrote into it just before sending it. It includes the client's own receive "
        "path and loopback wake-ups, which no gateway can remove: the *direct* rows are those "
        "baselines (the drip upstream read with aiohttp; a gRPC server dripping the same chunks "
        "straight to the same grpc.aio client). What relaying adds is a gateway row minus the "
        "direct gRPC row; the Targets table judges both that and the raw end-to-end figure.",
    ]

    memory = results.get("memory")
    out += ["", "## Memory (open streams in one gateway process)", ""]
    if memory:
        out += _table(
            ["what", "value"],
            [
                ["server", f"{memory['label']} {' '.join(memory.get('flags') or [])}".strip()],
                ["streams open / wanted", f"{memory['streams_open']} / {memory['streams_wanted']}"],
                ["failed to open", str(memory.get("open_failures"))],
                ["seconds to open all", _num(memory.get("open_seconds"))],
                ["RSS idle (after warm-up)", f"{_num(memory['idle_rss_kib'] / 1024, 1)} MiB"],
                ["RSS with streams open", f"{_num(memory['open_rss_kib'] / 1024, 1)} MiB"],
                ["KiB per stream above idle", _num(memory["kib_per_stream"], 1)],
                [
                    "RSS 3 s after cancelling all",
                    f"{_num(memory['after_cancel_rss_kib'] / 1024, 1)} MiB",
                ],
                [
                    "serves a call after cancelling",
                    "yes" if memory.get("healthy_after") else "**no**",
                ],
            ],
            "ll",
        )
        out += [
            "",
            "Streams come from one grpc.aio client process over 10 connections against a drip "
            "upstream (60 chunks, one every 500 ms); a stream counts as open once its first chunk "
            "arrived. RSS is VmRSS from `/proc/PID/status` (median of 3 samples).",
        ]
    else:
        out += ["not measured (see errors)"]

    errors = results.get("errors") or []
    incomplete = [r for r in results.get("runs", []) if not r.get("complete")]
    out += ["", "## Problems in this run", ""]
    if not errors and not incomplete:
        out += [
            "None: every server started, every check passed, every h2load request succeeded "
            "with the full expected response size."
        ]
    for message in errors:
        out += [f"- {_one_line(message)}"]
    for run in incomplete:
        out += [
            f"- {run['section']}: {run['label']} {run['mode']} c={run['concurrency']} "
            f"slice {_slice_number(run)}: "
            f"{run['requests']['succeeded']}/{run['requests']['total']} succeeded, "
            f"DATA bytes {run.get('data_bytes')} vs expected {run.get('expected_data_bytes')}"
        ]
    return "\n".join(out) + "\n"


def _method_note(plan: dict[str, Any]) -> str:
    """How the rows were measured and pooled (results of older runs had long rounds)."""
    pooling = (
        "A row pools its slices: CPU ms per request is the CPU seconds of all its complete "
        "slices over all their completed requests (nginx's and h2load's CPU likewise), req/s "
        "all those requests over h2load's summed run time; p50 and p99 are the median over "
        "slices of each slice's p50 and p99. CPU spread: the slices cut into "
        f"{SPREAD_BLOCKS} consecutive blocks (one slice each when there are fewer), each "
        "pooled, (max - min) / the row's pooled figure: how far one server's figure moved "
        "during the run. Drift moves interleaved servers alike, so a ratio of two rows moves "
        "less than their spreads."
    )
    if "slices" not in plan and "rounds" not in plan:
        return pooling
    if "slices" not in plan:
        return (
            f"These results come from an older run in {plan.get('rounds')} rounds of about "
            f"{plan.get('run_seconds')} s per server, re-rendered: its rounds are pooled here as "
            "slices are now (its p50 and p99 after the first round also counted the earlier "
            f"rounds' requests: h2load appended them to one log). {pooling}"
        )
    one_core = (
        f"; {plan.get('one_core_slices')} in the workers-on-one-core section"
        if plan.get("workers_one_core")
        else ""
    )
    return (
        f"Each server, call and concurrency is measured in {plan['slices']} short slices "
        f"(h2load runs of about {plan['run_seconds']:g} s, at least 4 requests per concurrent "
        f"stream{one_core}), interleaved with the other servers of its section in a rotating "
        f"order, so that drift of the machine hits them alike. {_instances_note(plan)}{pooling}"
    )


def _instances_note(plan: dict[str, Any]) -> str:
    count = plan.get("instances")
    if not count or count < 2:
        return ""
    return (
        f"Each Python server runs as {count} processes, started alike, and its slices go to "
        "them in turn: one process's cost depends on its random hash seed by up to a tenth, so "
        "the row pools over several. "
    )


def _load_note(results: dict[str, Any]) -> list[str]:
    """How busy the machine was with other work while slices were measured (per row, over its
    slices: one 0.3 s slice reads the machine's ticks too coarsely to judge alone)."""
    runs = results.get("runs", [])
    rows = [_time_weighted(group, "other_load_cores") for group in _groups(runs).values()]
    loads = sorted(v for v in rows if v is not None)
    if not loads:
        return []
    median = statistics.median(loads)
    busy = sum(1 for v in loads if v > 0.1)
    waited = sum(r.get("quiet_wait_seconds", 0) for r in runs)
    text = (
        f"Other work on the machine while slices were measured (CPU not spent by the server, "
        f"the upstream or h2load, from `/proc/stat`; in cores, each row's mean over its "
        f"slices): median {median:.2f}, max {loads[-1]:.2f}; {busy} of {len(loads)} rows above "
        f"0.1 core. The run waited {waited:.0f} s in all for quiet moments (bounded)."
    )
    if median > 0.1 or busy > len(loads) // 4:
        text += (
            " **This machine was shared with other work during the run** (for example other "
            "sessions' test suites on the same two cores): absolute figures are inflated and "
            "noisy, and ratios less reliable than on a quiet machine; re-run `bench/run` when "
            "it is idle."
        )
    return ["", text, *_steal_note(runs)]


STEAL_CORES = 0.05
"""Steal time (cores) in a slice above which the hypervisor took a noticeable share of it."""
NOISY_SPREAD = 0.2
"""A median CPU spread of rows above which the run is flagged as noisy (quiet runs: 10-17%)."""


def _steal_note(runs: list[Run]) -> list[str]:
    """How much time the hypervisor took from this VM during the slices (``steal`` in
    ``/proc/stat``): invisible as other work, it slows whatever runs, so that the same process
    may cost twice as much in one slice as in the next."""
    steals = sorted(r["steal_cores"] for r in runs if r.get("steal_cores") is not None)
    if not steals:
        return []
    stolen = sum(1 for v in steals if v > STEAL_CORES)
    spreads = [
        value
        for group in _groups(runs).values()
        if (value := _spread(group, _pool_cpu(group))) is not None
    ]
    median_spread = statistics.median(spreads) if spreads else None
    text = (
        f"Time taken by the hypervisor (steal, `/proc/stat`; cores, per slice): median "
        f"{statistics.median(steals):.2f}, max {steals[-1]:.2f}; {stolen} of {len(steals)} "
        f"slices above {STEAL_CORES:g} core. Median CPU spread of a row: "
        f"{_num(median_spread * 100 if median_spread is not None else None, 0)}%."
    )
    if stolen > len(steals) // 5 or (median_spread is not None and median_spread > NOISY_SPREAD):
        text += (
            " **The host was busy during this run**: the VM's speed moved from slice to slice "
            "(a row's CPU spread is a measure of it), so ratios near a threshold are not "
            "settled by this run; `python -m bench.insitu`'s instruction counts do not move "
            "with the host."
        )
    return ["", text]


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(lines[:6])[:600]


def _gateway_flags(machine: dict[str, Any]) -> str:
    flags = set(machine.get("gateway_flags") or [])
    wanted = ["--upstream-client", "--workers", "--event-loop"]
    return ", ".join(f"{f} {'(present)' if f in flags else '(absent)'}" for f in wanted)


def _verdicts(
    results: dict[str, Any], index: Index, gateways: list[dict[str, Any]], concurrencies: list[int]
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for gateway in gateways:
        client = gateway["client"] or "aiohttp"
        passthrough = f"passthrough-{client}"
        g = ("main", gateway["key"])
        p = ("main", passthrough)
        verdicts.append(
            _ratio_verdict(
                f"unary CPU: gateway / pass-through ({client})",
                UNARY_VS_PASSTHROUGH,
                concurrencies,
                index=index,
                top=g,
                bottom=p,
                mode="unary",
            )
        )
        verdicts.append(
            _ratio_verdict(
                f"unary CPU: gateway ({client}) / echo floor",
                UNARY_VS_ECHO,
                concurrencies,
                index=index,
                top=g,
                bottom=("main", "echo"),
                mode="unary",
            )
        )
        verdicts.append(
            _ratio_verdict(
                f"streaming CPU: gateway / pass-through ({client})",
                STREAM_VS_PASSTHROUGH,
                concurrencies,
                index=index,
                top=g,
                bottom=p,
                mode="stream",
            )
        )
    relay = results.get("relay") or []
    floor = next((r for r in relay if r["target"] == "echo"), None)
    for row in relay:
        if not str(row["target"]).startswith("gateway"):
            continue
        p50 = row["p50_ms"]
        usable = not (math.isnan(p50) or row.get("errors"))
        if floor is not None:
            added = p50 - floor["p50_ms"]
            verdicts.append(
                Verdict(
                    f"relay delay p50 added by {row['label']}",
                    f"< {RELAY_P50_MS:g} ms",
                    f"{_num(added, 3)} ms (p50 {_num(p50, 3)} through the gateway - "
                    f"{_num(floor['p50_ms'], 3)} straight from a gRPC server)",
                    (added < RELAY_P50_MS) if usable else None,
                )
            )
        verdicts.append(
            Verdict(
                f"end-to-end chunk delay p50 through {row['label']}",
                f"< {RELAY_P50_MS:g} ms (stricter reading)",
                f"p50 {_num(p50, 3)} ms, p99 {_num(row['p99_ms'], 3)} ms",
                (p50 < RELAY_P50_MS) if usable else None,
            )
        )
    memory = results.get("memory")
    if memory:
        per = memory["kib_per_stream"]
        complete = memory["streams_open"] == memory["streams_wanted"]
        verdicts.append(
            Verdict(
                f"memory per open stream ({memory['streams_open']} streams)",
                f"< {KIB_PER_STREAM:g} KiB",
                f"{_num(per, 1)} KiB",
                (per < KIB_PER_STREAM) if complete and not math.isnan(per) else None,
            )
        )
    else:
        verdicts.append(Verdict("memory per open stream", f"< {KIB_PER_STREAM:g} KiB", "-", None))
    pair = results.get("workers_targets") or []
    if len(pair) == 2:
        # Judged at one offered load per worker when the run has it (older runs: at full speed).
        section, at = _workers_target_section(results, concurrencies)
        one, many = (section, pair[0]["key"]), (section, pair[1]["key"])
        parts, oks = [], []
        for mode in ("unary", "stream"):
            for c in at:
                value = index.ratio(many, one, mode, c)
                parts.append(f"{mode} c={c}: {_num(value)}")
                if value is not None:
                    oks.append(abs(value - 1.0) <= WORKER_DRIFT)
        met: bool | None = None
        if oks:
            met = all(oks) and len(oks) == 2 * len(at)
            if not all(oks):
                met = False
        verdicts.append(
            Verdict(
                f"CPU/request, {pair[1]['workers']} workers / 1 worker"
                + (", same offered load per worker" if section == "workers-rate" else ""),
                f"within ±{WORKER_DRIFT:.0%}",
                ", ".join(parts),
                met,
            )
        )
    return verdicts


def _workers_target_section(
    results: dict[str, Any], concurrencies: list[int]
) -> tuple[str, list[int]]:
    """Where the workers target is judged: the section at one offered load per worker and its
    concurrency when the run has it, else (older runs) the full-speed section."""
    rated = sorted(
        {r["concurrency"] for r in results.get("runs", []) if r["section"] == "workers-rate"}
    )
    return ("workers-rate", rated) if rated else ("workers", concurrencies)


def _over(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top and bottom else None


def _client_table(
    index: Index, targets: list[dict[str, Any]], concurrencies: list[int]
) -> list[str]:
    keys = {t["key"] for t in targets}
    others = CLIENTS[1:]
    rows = []
    for mode in ("unary", "stream"):
        for name, prefix in (("pass-through", "passthrough"), ("gateway", "gateway")):
            if f"{prefix}-aiohttp" not in keys:
                continue
            for c in concurrencies:
                cpu = {k: index.cpu("main", f"{prefix}-{k}", mode, c) for k in CLIENTS}
                if all(cpu[k] is None for k in others):
                    continue
                base = cpu["aiohttp"]
                measured = {k: v for k, v in cpu.items() if v is not None}
                least = min(measured, key=lambda k: measured[k]) if measured else "-"
                rows.append(
                    [
                        f"{name}, {mode}",
                        str(c),
                        *(_num(cpu[k], 3) for k in CLIENTS),
                        *(_num(_over(cpu[k], base)) for k in others),
                        least,
                    ]
                )
    lines = _table(
        [
            "server, call",
            "conc.",
            *(f"{k} CPU ms/req" for k in CLIENTS),
            *(f"{k} / aiohttp" for k in others),
            "least CPU",
        ],
        rows,
        "lr" + "r" * (len(CLIENTS) + len(others)) + "l",
    )
    extra = sorted({c for t in targets for c in t.get("only_at") or ()})
    where = ", ".join(str(c) for c in extra) or "-"
    return [
        *lines,
        "",
        "CPU ms per request of the server process, from the same slices as the tables above "
        "(interleaved, pooled). aiohttp, httpx and httpx-aiohttp (httpx's API over an "
        "aiohttp session: the transport has no HTTP/2) talk HTTP/1.1 to nginx; httpx-http2 "
        "talks cleartext HTTP/2 with prior knowledge (h2c) to nginx's `listen ... http2` ports, "
        "which read the whole request and relay the same bodies from the HTTP/1.1 ports (so "
        "their nginx CPU includes that relay); one HTTP/2 connection carries many requests at "
        "once. "
        f"httpx-http2 and httpx-aiohttp are measured at concurrency {where} only ('-' "
        "elsewhere), to keep the run short. Ratios above 1 cost more CPU than aiohttp.",
    ]


_LOOP_ROWS = (
    ("grpc.aio echo (floor)", "echo"),
    ("pass-through (aiohttp)", "passthrough-aiohttp"),
    ("gateway (aiohttp)", "gateway-aiohttp"),
)


def _loop_table(index: Index, targets: list[dict[str, Any]], concurrencies: list[int]) -> list[str]:
    keys = {t["key"] for t in targets}
    rows = []
    for mode in ("unary", "stream"):
        for label, key in _LOOP_ROWS:
            if f"{key}-asyncio" not in keys:
                continue
            for c in concurrencies:
                standard = index.cpu("main", f"{key}-asyncio", mode, c)
                uv = index.cpu("main", key, mode, c)
                if standard is None:
                    continue
                rows.append(
                    [
                        f"{label}, {mode}",
                        str(c),
                        _num(standard, 3),
                        _num(uv, 3),
                        _num(_over(uv, standard)),
                    ]
                )
    lines = _table(
        ["server, call", "conc.", "asyncio CPU ms/req", "uvloop CPU ms/req", "uvloop / asyncio"],
        rows,
        "lrrrr",
    )
    return [
        *lines,
        "",
        "Every Python server in the tables above (echo floor, pass-through, gateway) runs on "
        "uvloop, the gateway's default (`--event-loop`), so the ratios compare the gateway's own "
        "work, not two event loops. These rows run the same servers on the standard asyncio "
        "loop, interleaved with the others; ratios below 1 mean uvloop costs less CPU.",
    ]


def _workers_section(
    results: dict[str, Any], index: Index, concurrencies: list[int], section: str
) -> list[str]:
    one, many = results["workers_targets"]
    n = many["workers"]
    plan = results.get("plan") or {}
    rates = dict(plan.get("rate_per_worker") or []) if section == "workers-rate" else {}
    rows = []
    for mode in ("unary", "stream"):
        for c in concurrencies:
            a_run = index.get(section, one["key"], mode, c)
            b_run = index.get(section, many["key"], mode, c)
            if a_run is None or b_run is None:
                continue
            a, b = a_run.get("cpu_ms_per_request"), b_run.get("cpu_ms_per_request")
            offered = rates.get(mode)
            rows.append(
                [
                    mode,
                    str(c) if offered is None else f"{c} per worker, {offered}/s each",
                    _num(a_run.get("rps"), 0),
                    _num(b_run.get("rps"), 0),
                    _num(a, 3),
                    _num(b, 3),
                    _num(b / a if a and b else None),
                    "yes" if a_run["complete"] and b_run["complete"] else "**NO**",
                ]
            )
    lines = _table(
        [
            "call",
            "conc.",
            "req/s, 1 worker",
            f"req/s, {n} workers",
            "CPU ms/req, 1",
            f"CPU ms/req, {n}",
            "ratio",
            "all OK",
        ],
        rows,
        "lrrrrrrl",
    )
    if section == "workers-rate":
        intro = (
            f"The target's shape. `routerpc serve --workers 1` and `--workers {n}` "
            f"({one['client'] or 'default'} client) on both cores, each worker offered the same "
            "load: h2load connections at a fixed rate (`--rps`), as many more connections as "
            "there are more workers, so each worker sees the same requests per second and "
            "streams in flight with one worker or several. The rate is below what both cores "
            "serve beside h2load and nginx, so neither count pays for sharing a core with the "
            "load generator: what is compared is the work per call. Why not at full speed: on "
            "this 2-core machine a second busy worker must share core 1 with h2load and nginx, "
            "while one worker has core 0 to itself (next table). CPU per request is summed "
            "over the master and every worker, pooled over interleaved slices as above."
        )
    elif section == "workers":
        intro = (
            f"`routerpc serve --workers 1` and `--workers {n}` at full speed "
            f"({one['client'] or 'default'} client), measured in interleaved slices (pooled as "
            "above), the gateway free to "
            "use both cores (`taskset -c 0,1`) while h2load and nginx stay on core 1: the "
            "deployment shape (one worker per core). CPU per request is summed "
            "over the master and every worker (descendants found through the ppid field of "
            "`/proc/*/stat`). h2load's connections are spread over the workers by the kernel "
            "(SO_REUSEPORT); at concurrency 1 one connection means one busy worker."
        )
    else:
        intro = (
            f"The same two servers with every process pinned to core 0, i.e. {n} workers "
            "sharing one core: what over-provisioning workers costs (context switches, less "
            "batching per loop iteration). Not the target's shape; shown for information."
        )
    return [intro, "", *lines]


def write_report(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build(results))


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: python -m bench.report RESULTS.json REPORT.md", file=sys.stderr)
        return 2
    results = json.loads(Path(sys.argv[1]).read_text())
    write_report(results, Path(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
