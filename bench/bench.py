"""Issue 6's benchmark: one command, bounded, all on 127.0.0.1; see bench/README.md.

Runs (in one process tree, every child stopped on exit):

* a static nginx upstream (unary and SSE on two ports over HTTP/1.1, and on two more over
  cleartext HTTP/2 for the ``httpx-http2`` client) pinned to core 1, and the same nginx pinned to
  core 0 as the "direct HTTP" baseline;
* for unary ``Chat`` and streaming ``StreamChat`` at each concurrency, h2load (core 1) against:
  the direct HTTP baseline, the grpc.aio echo floor, the minimal pass-through (aiohttp and
  httpx), and ``routerpc serve`` (``--upstream-client`` aiohttp and httpx, ``--workers 1``; then
  ``--workers 2``), each server pinned to core 0, its CPU read from /proc; the pass-through and
  the gateway with the ``httpx-http2`` and ``httpx-aiohttp`` clients too, at the upstream-client
  concurrency only (16), interleaved with the rest;
* ``--workers 1`` against ``--workers 2`` on both cores, each worker offered the same load at a
  fixed rate (the workers target), then at full speed (for information);
* relay delay through a slow-drip upstream, and gateway memory with 1,000 open streams;

then writes raw JSON to bench/results/ and a report (bench/RESULTS.md for a full run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import fixtures
from bench.report import write_report
from routerpc import pb

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
LOAD_CPU = "1"
ALL_CPUS = "0,1"
HOST = "127.0.0.1"
API_KEY = "bench-not-a-real-key"

CHAT_PATH = "/routerpc.v1.RouterService/Chat"
STREAM_PATH = "/routerpc.v1.RouterService/StreamChat"
GRPC_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
JSON_HEADERS = ["-H", "content-type: application/json"]

# concurrency -> (h2load clients, max concurrent streams per client) for gRPC over HTTP/2.
# HTTP/1.1 (the direct baseline) has no multiplexing: there clients = concurrency.
H2_SHAPE = {1: (1, 1), 16: (4, 4), 64: (8, 8)}


class BenchError(RuntimeError):
    """A step that cannot go on (a server that does not start, a failed check)."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Plan:
    """How much work each part does; every loop in the run is bounded by these numbers."""

    mode: str
    concurrencies: tuple[int, ...]
    run_seconds: float  # aimed-at length of one measured slice (one h2load run)
    min_requests: int
    max_requests: int
    warmup_requests: int
    slices: int  # short measured runs per server, mode and concurrency (interleaved; pooled)
    instances: int  # processes per Python server, the slices spread over them (pooled)
    relay_streams: int
    relay_chunks: int
    memory_streams: int
    workers_one_core: bool  # also run the workers comparison with every worker on core 0
    quiet_budget: float  # total seconds the run may wait for other load on the machine to pass
    # The extra upstream clients (httpx-http2, httpx-aiohttp) are measured at these only.
    client_concurrencies: tuple[int, ...] = (16,)
    one_core_slices: int = 4  # slices of the workers comparison squeezed onto core 0
    quiet_max_wait: float = 10.0  # the most one measured run waits
    quiet_threshold: float = 0.15  # cores busy (all processes) that count as quiet
    # A measured run that ended this recently with the machine quiet stands for a fresh sample.
    quiet_reuse_seconds: float = 1.0
    h2load_timeout: float = 180.0
    # The workers target's own section: each worker offered the same load (h2load --rps), with
    # one worker or several, below what the two cores can serve beside h2load and nginx.
    rate_per_worker: tuple[tuple[str, int], ...] = (("unary", 300), ("stream", 100))
    rate_seconds: float = 1.0  # length of one slice at that rate
    rate_concurrency: int = 16  # streams in flight per worker (its H2_SHAPE: 4 x 4)

    @staticmethod
    def of(quick: bool) -> Plan:
        if quick:
            return Plan(
                mode="quick",
                concurrencies=(1, 16),
                run_seconds=0.25,
                min_requests=60,
                max_requests=3000,
                warmup_requests=100,
                slices=4,
                instances=2,
                relay_streams=1,
                relay_chunks=20,
                memory_streams=1000,
                workers_one_core=False,
                quiet_budget=15.0,
            )
        return Plan(
            mode="full",
            concurrencies=(1, 16, 64),
            run_seconds=0.3,
            min_requests=100,
            max_requests=30000,
            warmup_requests=300,
            slices=16,
            instances=4,
            relay_streams=3,
            relay_chunks=40,
            memory_streams=1000,
            workers_one_core=True,
            quiet_budget=30.0,
        )

    def slice_requests(self, warm_rps: float, concurrency: int) -> int:
        """Requests of one slice: about ``run_seconds`` at the warm-up's rate, and at least 4
        per concurrent stream, so that a slice at c=64 is not mostly ramp-up and ramp-down."""
        wanted = max(self.min_requests, 4 * concurrency, warm_rps * self.run_seconds)
        return int(min(self.max_requests, wanted))


@dataclass
class Tools:
    python: str
    routerpc: str
    h2load: str
    nginx: str
    gateway_help: str
    gateway_flags: set[str] = field(default_factory=set)

    def has(self, flag: str) -> bool:
        return flag in self.gateway_flags

    def mentions(self, word: str) -> bool:
        """Whether ``serve --help`` names ``word`` (argparse may wrap it at a hyphen)."""
        return word in "".join(self.gateway_help.split())


# --------------------------------------------------------------------------- /proc readers


def _ppid(pid: int) -> int:
    """The parent of one process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        raw = handle.read()
    # After the command's closing parenthesis: field 3 (state), then field 4 (ppid).
    return int(raw[raw.rindex(")") + 2 :].split()[1])


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc/*/stat ppid (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = _ppid(int(entry))
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(root: int, children: dict[int, list[int]]) -> list[int]:
    """``root`` and all its descendants (workers of a master) in ``_children()``'s map."""
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def machine_ticks() -> tuple[int, int]:
    """(busy, steal) clock ticks of all CPUs together since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal


def machine_load(seconds: float) -> float:
    """Cores kept busy over the next ``seconds`` by everything on the machine."""
    before, _ = machine_ticks()
    time.sleep(seconds)
    after, _ = machine_ticks()
    return (after - before) / CLK_TCK / seconds


def cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) spent so far by ``root`` and its live descendants."""
    return cpu_seconds_each([root])[0]


def process_cpu_clock(pid: int) -> float:
    """CPU seconds of process ``pid`` (all its threads, user + system) from its CPU-time clock
    (Linux's encoding of the process clock of ``clock_getcpuclockid``: CPUCLOCK_SCHED of the
    pid): the scheduler's exact runtime, where ``/proc/PID/stat`` counts whole 10 ms ticks, a
    coarse grain for a 0.3 s slice."""
    return time.clock_gettime(((~pid) << 3) | 2)


def cpu_seconds_each(roots: Sequence[int]) -> list[float]:
    """``cpu_seconds`` of several roots from one scan of /proc: read around every short slice,
    so a scan per root would add up."""
    children = _children()
    totals = []
    for root in roots:
        seconds = 0.0
        for pid in process_tree(root, children):
            with contextlib.suppress(OSError):  # a process that just ended
                seconds += process_cpu_clock(pid)
        totals.append(seconds)
    return totals


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Every process the run starts, each in its own session so it can be stopped whole."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: list[Proc] = []

    def start(
        self, name: str, argv: Sequence[str], cpus: str, env: dict[str, str] | None = None
    ) -> Proc:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                ["taskset", "-c", cpus, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env=env,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.running.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 8.0) -> None:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        # Anything left in its session (workers of a master that died first).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc, timeout=5.0)

    def wait_port(self, proc: Proc, port: int, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise BenchError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            if port_open(port):
                return
            time.sleep(0.1)
        raise BenchError(f"{proc.name} did not listen on {port} within {seconds}s:\n{proc.tail()}")


@contextlib.contextmanager
def running(procs: Processes, proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        procs.stop(proc)


# --------------------------------------------------------------------------- nginx


def _nginx_string(text: str) -> str:
    if "$" in text:
        raise ValueError("a '$' would be read as an nginx variable")
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def nginx_config(
    workdir: Path, unary_port: int, stream_port: int, unary_h2_port: int, stream_h2_port: int
) -> str:
    """Four servers: ``unary_port`` answers the static completion, ``stream_port`` the static
    SSE body, both over HTTP/1.1; ``unary_h2_port`` and ``stream_h2_port`` answer the same over
    cleartext HTTP/2 (``listen ... http2`` without TLS is h2c with prior knowledge only, what
    httpx's ``http1=False, http2=True`` speaks). All answer the endpoints list. ``return`` is
    used because nginx refuses POST to static files (405).

    Over HTTP/2, ``return`` would answer as soon as the request headers arrive and reset the
    stream while the client still sends the body (RST_STREAM NO_ERROR), which no real upstream
    does; so the HTTP/2 servers read the whole request (``proxy_pass`` buffers it) and take the
    answer from the HTTP/1.1 server of the same body, over kept-alive connections."""
    completion = _nginx_string(fixtures.completion_json())
    sse = _nginx_string(fixtures.sse_body())
    endpoints = _nginx_string(fixtures.endpoints_json())

    def server(port: int, body: str, kind: str, relay_to: int = 0) -> str:
        if relay_to:
            answer = f"""proxy_pass http://answer-{relay_to};
            proxy_http_version 1.1;
            proxy_set_header Connection "";"""
        else:
            answer = f"""default_type {kind};
            return 200 {body};"""
        return f"""
    server {{
        listen {HOST}:{port}{" http2" if relay_to else ""} backlog=4096;
        location = /api/v1/chat/completions {{
            {answer}
        }}
        location /api/v1/models/ {{
            default_type application/json;
            return 200 {endpoints};
        }}
        location / {{
            return 404;
        }}
    }}"""

    temp = workdir / "nginx-temp"
    temp.mkdir(exist_ok=True)
    return f"""# generated by bench/bench.py
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx-{unary_port}.pid;
error_log {workdir}/nginx-{unary_port}-error.log warn;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    # Also HTTP/2's requests per connection and idle timeout (nginx >= 1.19.7).
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    client_body_buffer_size 64k;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{server(unary_port, completion, "application/json")}
{server(stream_port, sse, "text/event-stream")}
    upstream answer-{unary_port} {{
        server {HOST}:{unary_port};
        keepalive 64;
    }}
    upstream answer-{stream_port} {{
        server {HOST}:{stream_port};
        keepalive 64;
    }}
{server(unary_h2_port, completion, "application/json", relay_to=unary_port)}
{server(stream_h2_port, sse, "text/event-stream", relay_to=stream_port)}
}}
"""


@dataclass
class Upstream:
    proc: Proc
    unary_port: int
    stream_port: int
    unary_h2_port: int
    stream_h2_port: int

    def base(self, mode: str, *, http2: bool = False) -> str:
        """The API base URL for ``mode``; ``http2``: the cleartext HTTP/2 (h2c) listener."""
        if http2:
            port = self.unary_h2_port if mode == "unary" else self.stream_h2_port
        else:
            port = self.unary_port if mode == "unary" else self.stream_port
        return f"http://{HOST}:{port}/api/v1"


def start_nginx(procs: Processes, tools: Tools, name: str, cpus: str) -> Upstream:
    ports = [free_port() for _ in range(4)]
    conf = procs.workdir / f"{name}.conf"
    conf.write_text(nginx_config(procs.workdir, *ports))
    argv = [tools.nginx, "-p", str(procs.workdir), "-e", str(procs.workdir / f"{name}.err")]
    proc = procs.start(name, [*argv, "-c", str(conf)], cpus)
    for port in ports:
        procs.wait_port(proc, port)
    return Upstream(proc, *ports)


# --------------------------------------------------------------------------- h2load


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_h2load(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if m := re.search(r"finished in ([\d.]+\w+), ([\d.]+) req/s", output):
        result["seconds"] = _ms(m.group(1)) / 1000.0
        result["rps"] = float(m.group(2))
    if m := re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        output,
    ):
        names = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
        result["requests"] = dict(zip(names, map(int, m.groups()), strict=True))
    if m := re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output):
        result["status"] = dict(
            zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups()), strict=True)
        )
    if m := re.search(
        r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?\((\d+)\) data", output
    ):
        result["traffic"] = {
            "total": int(m.group(1)),
            "headers": int(m.group(2)),
            "data": int(m.group(3)),
        }
    if m := re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", output):
        result["latency_ms"] = {
            "min": _ms(m.group(1)),
            "max": _ms(m.group(2)),
            "mean": _ms(m.group(3)),
            "sd": _ms(m.group(4)),
        }
    return result


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def log_latencies_ms(path: Path) -> list[float]:
    """Per-request durations from h2load's ``--log-file`` (start us, status, duration us)."""
    values = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].startswith("2"):
            values.append(int(parts[2]) / 1000.0)
    return sorted(values)


@dataclass(frozen=True)
class Rated:
    """A load offered at a fixed rate: ``clients`` connections of ``streams`` streams, each
    connection sending ``per_client`` requests per second (h2load ``--rps``)."""

    clients: int
    streams: int
    per_client: int

    @property
    def per_second(self) -> int:
        return self.clients * self.per_client

    @staticmethod
    def per_worker(rate: int, concurrency: int, workers: int) -> Rated:
        """``rate`` requests per second and ``concurrency`` streams for each of ``workers``
        (the connections scale with the workers; the kernel spreads them, SO_REUSEPORT)."""
        clients, streams = H2_SHAPE[concurrency]
        return Rated(clients * max(1, workers), streams, max(1, rate // clients))


@dataclass
class Load:
    """One h2load invocation's shape."""

    url: str
    data: Path
    headers: list[str]
    h1: bool


def h2load(
    tools: Tools,
    load: Load,
    *,
    n: int,
    concurrency: int,
    log: Path | None,
    timeout: float,
    rated: Rated | None = None,
) -> tuple[dict[str, Any], float]:
    """Run h2load on the load core; (parsed output, h2load's own CPU seconds). With ``rated``,
    its connections and their rate instead of ``concurrency``'s shape at full speed."""
    if rated is not None:
        clients, streams = rated.clients, rated.streams
    elif load.h1:
        clients, streams = concurrency, 1
    else:
        clients, streams = H2_SHAPE.get(concurrency, (concurrency, 1))
    shape = f"-n {max(n, clients)} -c {clients} -m {streams} -t 1 -d {load.data}"
    argv = ["taskset", "-c", LOAD_CPU, tools.h2load, *shape.split(), *load.headers]
    if rated is not None:
        argv.append(f"--rps={rated.per_client}")
    if load.h1:
        argv.append("--h1")
    if log is not None:
        argv.append(f"--log-file={log}")
    argv.append(load.url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"h2load did not finish within {timeout}s: {load.url}") from error
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    parsed = parse_h2load(done.stdout)
    parsed["exit_code"] = done.returncode
    parsed["clients"], parsed["streams_per_client"] = clients, streams
    if "requests" not in parsed:
        raise BenchError(
            f"h2load gave no summary (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return parsed, own


# --------------------------------------------------------------------------- the client helper


def client(tools: Tools, *args: str, timeout: float = 60.0) -> dict[str, Any]:
    argv = ["taskset", "-c", LOAD_CPU, tools.python, "-m", "bench.client", *args]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"bench.client {args[0]} did not finish within {timeout}s") from error
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise BenchError(f"bench.client {args[0]} printed nothing:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["exit_code"] = done.returncode
    return result


def http_check(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        if response.status != 200:
            raise BenchError(f"direct HTTP check: status {response.status}")
    return {"ok": True, "messages": 1, "wire_bytes": len(raw)}


# --------------------------------------------------------------------------- servers under test


HTTP2_CLIENT = "httpx-http2"
"""The client that speaks HTTP/2 to the upstream (h2c: pointed at nginx's ``http2`` ports)."""
EXTRA_CLIENTS = (HTTP2_CLIENT, "httpx-aiohttp")
"""Upstream clients measured in the main section at ``Plan.client_concurrencies`` only."""


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    kind: str  # http | echo | passthrough | gateway
    client: str = ""  # upstream client
    workers: int = 0  # gateway --workers (0: flag absent)
    only_at: tuple[int, ...] = ()  # measured at these concurrencies only (empty: at every one)
    loop: str = ""  # event loop: "" is the default of each (uvloop), "asyncio" the standard one

    @property
    def http2(self) -> bool:
        return self.client == HTTP2_CLIENT


def gateway_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTERPC_")}
    env["OPENROUTER_API_KEY"] = API_KEY
    return env


def gateway_argv(
    tools: Tools, target: Target, port: int, upstream: str, extra: Sequence[str] = ()
) -> list[str]:
    argv = [tools.routerpc, *f"serve --host {HOST} --port {port} --upstream-url {upstream}".split()]
    if target.client and tools.has("--upstream-client"):
        argv += ["--upstream-client", target.client]
    if target.workers and tools.has("--workers"):
        argv += ["--workers", str(target.workers)]
    if target.loop and tools.has("--event-loop"):
        argv += ["--event-loop", target.loop]
    # Faster stop between sections; the drain itself is not what is measured.
    if tools.has("--drain-delay"):
        argv += ["--drain-delay", "0"]
    if tools.has("--grace-period"):
        argv += ["--grace-period", "1"]
    return [*argv, *extra]


def start_server(
    procs: Processes,
    tools: Tools,
    target: Target,
    upstream: str,
    *,
    cpus: str = SERVER_CPU,
    extra: Sequence[str] = (),
    hash_seed: int | None = None,
) -> tuple[Proc, int]:
    """Start ``target``'s server; with ``hash_seed``, under that ``PYTHONHASHSEED`` (a Python
    process's cost per call depends on its dict layouts by up to a tenth)."""
    port = free_port()
    name = f"{target.key}-{port}"
    env = gateway_env() if target.kind == "gateway" else dict(os.environ)
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = str(hash_seed)
    if target.kind == "echo":
        argv = [tools.python, "-m", "bench.servers.echo_server", "--port", str(port)]
        if target.loop:
            argv += ["--loop", target.loop]
        proc = procs.start(name, argv, cpus, env)
    elif target.kind == "passthrough":
        argv = [
            tools.python,
            "-m",
            "bench.servers.passthrough_server",
            "--port",
            str(port),
            "--upstream-url",
            upstream,
            "--client",
            target.client,
        ]
        if target.loop:
            argv += ["--loop", target.loop]
        proc = procs.start(name, argv, cpus, env)
    else:
        argv = gateway_argv(tools, target, port, upstream, extra)
        proc = procs.start(name, argv, cpus, env)
    procs.wait_port(proc, port, 60.0)
    return proc, port


class Checker:
    """One long-lived ``bench.client checker`` process: a gRPC call per check, no start-up."""

    def __init__(self, tools: Tools) -> None:
        self._popen = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, tools.python, "-m", "bench.client", "checker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
        )

    def _ask(self, question: dict[str, Any]) -> dict[str, Any]:
        assert self._popen.stdin is not None
        if self._popen.poll() is not None:
            raise BenchError("the checker process exited")
        self._popen.stdin.write((json.dumps(question) + "\n").encode())
        self._popen.stdin.flush()
        return _read_json_line(self._popen, 30.0)

    def check(self, port: int, mode: str) -> dict[str, Any]:
        result = self._ask({"target": f"{HOST}:{port}", "mode": mode})
        if not result.get("ok"):
            raise BenchError(f"gRPC {mode} check failed on port {port}: {result.get('detail')}")
        return result

    def forget(self, port: int) -> None:
        with contextlib.suppress(BenchError, OSError):
            self._ask({"target": f"{HOST}:{port}", "forget": True})

    def close(self) -> None:
        if self._popen.stdin is not None:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()
        try:
            self._popen.wait(10)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait(5)


@dataclass
class Server:
    """A server under test, running, with the load that measures it."""

    section: str
    target: Target
    proc: Proc | None  # None: the shared direct-HTTP nginx
    port: int
    pid: int
    cpus: str
    load: Load
    check: Callable[[], dict[str, Any]]
    instance: int = 1  # which process of its target (1..Plan.instances)
    warmed: set[int] = field(default_factory=set)  # concurrencies it has been warmed up at
    rates: dict[str, int] = field(default_factory=dict)  # mode -> offered req/s per worker
    failed: bool = False


# --------------------------------------------------------------------------- measured runs


class Bench:
    def __init__(self, plan: Plan, tools: Tools, procs: Processes) -> None:
        self.plan = plan
        self.tools = tools
        self.procs = procs
        self.workdir = procs.workdir
        self.results: dict[str, Any] = {"runs": [], "errors": []}
        self.upstream: Upstream | None = None
        self.direct: Upstream | None = None
        self.files = self._request_files()
        self.counts: dict[tuple[str, str, str, int], int] = {}
        self.quiet_budget = plan.quiet_budget
        self.last_run: tuple[float, float] | None = None  # (monotonic end, other load cores)
        self.checker = Checker(tools)

    def _request_files(self) -> dict[str, Path]:
        files = {
            "unary.grpc": fixtures.grpc_frame(fixtures.seed_request()),
            "stream.grpc": fixtures.grpc_frame(
                pb.StreamChatRequest(request=fixtures.seed_request())
            ),
            "unary.json": fixtures.request_json(stream=False).encode(),
            "stream.json": fixtures.request_json(stream=True).encode(),
        }
        paths = {}
        for name, raw in files.items():
            path = self.workdir / name
            path.write_bytes(raw)
            paths[name] = path
        return paths

    def _drip(self, port: int, interval_ms: int, chunks: int) -> list[str]:
        return self._module(
            f"bench.servers.drip_upstream --port {port} --interval-ms {interval_ms} "
            f"--chunks {chunks}"
        )

    def _module(self, command: str) -> list[str]:
        """``python -m <command>`` (command split on spaces)."""
        return [self.tools.python, "-m", *command.split()]

    def error(self, where: str, error: Exception) -> None:
        message = f"{where}: {error}"
        print(f"!! {message}", file=sys.stderr, flush=True)
        self.results["errors"].append(message)

    def measure(self, server: Server, mode: str, concurrency: int, slice_: int) -> None:
        """One measured slice (an h2load run) with CPU read around it (the first slice of a
        server at a concurrency warms up first and fixes the request count of every slice)."""
        plan = self.plan
        check = server.check()  # a Python-client call must succeed before each measured run
        key = (server.section, server.target.key, mode, concurrency)
        rate = server.rates.get(mode)
        rated = None if rate is None else Rated.per_worker(rate, concurrency, server.target.workers)
        if concurrency not in server.warmed:
            server.warmed.add(concurrency)
            warm, _ = h2load(
                self.tools,
                server.load,
                n=plan.warmup_requests if rated is None else rated.per_second // 2,
                concurrency=concurrency,
                log=None,
                timeout=plan.h2load_timeout,
                rated=rated,
            )
            if key not in self.counts:  # the first instance's warm-up sizes every slice
                self.counts[key] = (
                    plan.slice_requests(warm.get("rps") or 100.0, concurrency)
                    if rated is None
                    else int(rated.per_second * plan.rate_seconds)
                )
        n = self.counts[key]
        waited, idle_load = self.wait_quiet()
        target = server.target
        log = self.workdir / f"h2load-{server.section}-{target.key}-{mode}-{concurrency}.log"
        log.unlink(missing_ok=True)  # h2load appends: the latencies must be this slice's only
        assert self.upstream is not None
        upstream_pid = self.upstream.proc.pid
        server0, upstream0 = cpu_seconds_each([server.pid, upstream_pid])
        busy0, steal0 = machine_ticks()
        t0 = time.monotonic()
        parsed, loadgen_cpu = h2load(
            self.tools,
            server.load,
            n=n,
            concurrency=concurrency,
            log=log,
            timeout=plan.h2load_timeout,
            rated=rated,
        )
        t1 = time.monotonic()
        busy1, steal1 = machine_ticks()
        server1, upstream1 = cpu_seconds_each([server.pid, upstream_pid])
        # CPU that neither the server, the upstream nor h2load spent: other work on the machine.
        ours = (server1 - server0) + (upstream1 - upstream0) + loadgen_cpu
        foreign = max(0.0, (busy1 - busy0) / CLK_TCK - ours) / max(t1 - t0, 1e-6)
        self.last_run = (time.monotonic(), foreign)
        latencies = log_latencies_ms(log)
        total = parsed["requests"]["total"]
        done = parsed["requests"]["succeeded"]
        expected = check["wire_bytes"] * total
        data = parsed.get("traffic", {}).get("data")
        complete = (
            done == total and parsed.get("status", {}).get("2xx") == total and data == expected
        )
        run = {
            "section": server.section,
            "placement": server.cpus,
            "target": target.key,
            "label": target.label,
            "kind": target.kind,
            "client": target.client,
            "workers": target.workers,
            "mode": mode,
            "concurrency": concurrency,
            "slice": slice_,
            "instance": server.instance,
            "clients": parsed["clients"],
            "streams_per_client": parsed["streams_per_client"],
            "requests": parsed["requests"],
            "status": parsed.get("status"),
            "rps": parsed.get("rps"),
            "offered_rps": None if rated is None else rated.per_second,
            "wall_seconds": round(t1 - t0, 3),
            "h2load_seconds": parsed.get("seconds"),
            "latency_ms": {
                **parsed.get("latency_ms", {}),
                "p50": percentile(latencies, 50),
                "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99),
                "samples": len(latencies),
            },
            "cpu_ms_per_request": (server1 - server0) * 1000.0 / done if done else None,
            "cpu_seconds": round(server1 - server0, 6),
            "upstream_cpu_ms_per_request": (
                (upstream1 - upstream0) * 1000.0 / done if done and target.kind != "http" else None
            ),
            "loadgen_cpu_ms_per_request": loadgen_cpu * 1000.0 / done if done else None,
            "other_load_cores": round(foreign, 3),
            "steal_cores": round((steal1 - steal0) / CLK_TCK / max(t1 - t0, 1e-6), 3),
            "quiet_wait_seconds": round(waited, 1),
            "load_before_cores": round(idle_load, 3),
            "data_bytes": data,
            "expected_data_bytes": expected,
            "complete": complete,
            "check": check,
            "h2load_exit_code": parsed["exit_code"],
        }
        self.results["runs"].append(run)
        rps = run["rps"] or 0.0
        cpu = run["cpu_ms_per_request"] or float("nan")
        print(
            f"   {server.section:8} s{slice_:<2} {target.label:30} {mode:6} c={concurrency:<3} "
            f"n={n:<6} {rps:8.1f} req/s  p50 {run['latency_ms']['p50']:7.2f} ms  "
            f"p99 {run['latency_ms']['p99']:7.2f} ms  cpu {cpu:6.3f} ms/req"
            f"  other {foreign:4.2f}{'' if complete else '  INCOMPLETE'}",
            flush=True,
        )

    def wait_quiet(self) -> tuple[float, float]:
        """Wait (bounded) until nothing else keeps the machine busy; (seconds waited, cores busy
        in the last sample). Other sessions' test suites share this machine's cores. A sample
        takes 0.2 s, most of a slice; a measured run that ended under ``quiet_reuse_seconds``
        ago with the machine quiet is as fresh a sample, so then none is taken."""
        plan = self.plan
        if self.last_run is not None:
            ended, other = self.last_run
            recent = time.monotonic() - ended < plan.quiet_reuse_seconds
            if recent and other <= plan.quiet_threshold:
                return 0.0, other
        started = time.monotonic()
        load = machine_load(0.2)
        while load > plan.quiet_threshold and self.quiet_budget > 0:
            if time.monotonic() - started >= plan.quiet_max_wait:
                break
            load = machine_load(1.0)
            self.quiet_budget -= 1.3
        return time.monotonic() - started, load

    def section(
        self,
        section: str,
        targets: Sequence[Target],
        *,
        slices: int,
        instances: int,
        cpus: str = SERVER_CPU,
        concurrencies: Sequence[int] = (),
        rates: dict[str, int] | None = None,
    ) -> None:
        """Every target, mode and concurrency; per mode all servers run at once (idle when not
        measured) so that short slices interleave them: drift of the machine, which moves over
        tens of seconds, hits each alike. Each Python server runs as ``instances`` processes,
        measured slice after slice in turn: one process's cost depends on its hash seed (dict
        layouts) by up to a tenth, and one process per run would carry its luck into the
        ratios; process n of every server runs with PYTHONHASHSEED=n. The report pools the
        slices of each target over all its processes. ``concurrencies`` (default: the plan's)
        and ``rates`` (mode -> requests per second offered to each worker; default: full
        speed) shape the load."""
        for mode in ("unary", "stream"):
            groups: list[list[Server]] = []
            try:
                for target in targets:
                    group: list[Server] = []
                    count = 1 if target.kind == "http" else instances
                    for instance in range(1, count + 1):
                        try:
                            server = self._server(section, target, mode, cpus, instance)
                            server.rates = dict(rates or {})
                            group.append(server)
                        except BenchError as error:
                            self.error(f"{section} {target.label} {mode}: start", error)
                    if group:
                        groups.append(group)
                for c in concurrencies or self.plan.concurrencies:
                    for slice_ in range(1, slices + 1):
                        # Rotate the order each slice: no server always runs first.
                        shift = (slice_ - 1) % max(1, len(groups))
                        for group in groups[shift:] + groups[:shift]:
                            server = group[(slice_ - 1) % len(group)]
                            if any(s.failed for s in group):
                                continue
                            if server.target.only_at and c not in server.target.only_at:
                                continue
                            try:
                                self.measure(server, mode, c, slice_)
                            except BenchError as error:
                                server.failed = True
                                self.error(f"{section} {server.target.label} {mode} c={c}", error)
            finally:
                for server in (s for group in groups for s in group):
                    if server.proc is not None:
                        self.checker.forget(server.port)
                        self.procs.stop(server.proc)

    def _server(
        self, section: str, target: Target, mode: str, cpus: str, instance: int = 1
    ) -> Server:
        assert self.upstream is not None
        assert self.direct is not None
        if target.kind == "http":
            url = self.direct.base(mode) + "/chat/completions"
            body = self.files[f"{mode}.json"]
            return Server(
                section,
                target,
                None,
                self.direct.unary_port if mode == "unary" else self.direct.stream_port,
                self.direct.proc.pid,
                SERVER_CPU,
                Load(url, body, JSON_HEADERS, h1=True),
                lambda: http_check(url, body.read_bytes()),
            )
        upstream = self.upstream.base(mode, http2=target.http2)
        # The n-th process of every server gets the same hash seed: run after run, and server
        # beside server, the processes' dict layouts are drawn alike, not by luck.
        proc, port = start_server(
            self.procs, self.tools, target, upstream, cpus=cpus, hash_seed=instance
        )
        path = CHAT_PATH if mode == "unary" else STREAM_PATH
        url = f"http://{HOST}:{port}{path}"
        return Server(
            section,
            target,
            proc,
            port,
            proc.pid,
            cpus,
            Load(url, self.files[f"{mode}.grpc"], GRPC_HEADERS, h1=False),
            lambda: self.checker.check(port, mode),
            instance,
        )

    # ----------------------------------------------------------------------- relay delay

    def relay(self, targets: Sequence[Target]) -> None:
        plan = self.plan
        drip_port = free_port()
        drip = self.procs.start(
            "drip-relay", self._drip(drip_port, 50, plan.relay_chunks), LOAD_CPU
        )
        out: list[dict[str, Any]] = []
        self.results["relay"] = out
        with running(self.procs, drip):
            self.procs.wait_port(drip, drip_port)
            base = f"http://{HOST}:{drip_port}/api/v1"
            timeout = plan.relay_streams * plan.relay_chunks * 0.05 + 60
            shape = ["--streams", str(plan.relay_streams), "--chunks", str(plan.relay_chunks)]
            url = f"{base}/chat/completions"
            result = client(self.tools, "relay-http", "--url", url, *shape, timeout=timeout)
            out.append(self._relay_row("direct HTTP (aiohttp client)", "http", result))
            for target in targets:
                try:
                    proc, port = start_server(self.procs, self.tools, target, base)
                    with running(self.procs, proc):
                        address = f"{HOST}:{port}"
                        warm = ["--streams", "1", "--chunks", "2"]
                        client(self.tools, "relay", "--target", address, *warm)
                        result = client(
                            self.tools, "relay", "--target", address, *shape, timeout=timeout
                        )
                    out.append(self._relay_row(target.label, target.key, result))
                except BenchError as error:
                    self.error(f"relay {target.label}", error)

    def _relay_row(self, label: str, key: str, result: dict[str, Any]) -> dict[str, Any]:
        delays = sorted(result.get("delays_us") or [])
        row = {
            "label": label,
            "target": key,
            "samples": len(delays),
            "errors": result.get("errors"),
            "p50_ms": percentile(delays, 50) / 1000.0,
            "p99_ms": percentile(delays, 99) / 1000.0,
            "max_ms": (delays[-1] / 1000.0) if delays else float("nan"),
            "mean_ms": (statistics.fmean(delays) / 1000.0) if delays else float("nan"),
        }
        print(
            f"   relay     {label:40} p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms  "
            f"({row['samples']} chunks)",
            flush=True,
        )
        return row

    # ----------------------------------------------------------------------- memory

    def memory(self, target: Target) -> None:
        plan = self.plan
        drip_port = free_port()
        chunks = 60
        drip = self.procs.start("drip-memory", self._drip(drip_port, 500, chunks), LOAD_CPU)
        with running(self.procs, drip):
            self.procs.wait_port(drip, drip_port)
            base = f"http://{HOST}:{drip_port}/api/v1"
            # Room for every stream: one upstream connection and one concurrency slot each.
            extra: list[str] = []
            room = str(plan.memory_streams + 100)
            for flag in ("--pool-size", "--max-concurrent-upstream"):
                if self.tools.has(flag):
                    extra += [flag, room]
            proc, port = start_server(self.procs, self.tools, target, base, extra=extra)
            with running(self.procs, proc):
                self._memory(target, proc, port, chunks, extra)

    def _memory(self, target: Target, proc: Proc, port: int, chunks: int, extra: list[str]) -> None:
        plan = self.plan
        target_addr = f"{HOST}:{port}"
        self.checker.check(port, "unary")
        client(self.tools, "relay", "--target", target_addr, "--streams", "1", "--chunks", "2")
        time.sleep(1.0)
        idle = statistics.median(self._rss_samples(proc.pid))
        hold = 60.0
        helper = subprocess.Popen(
            [
                "taskset",
                "-c",
                LOAD_CPU,
                *self._module(
                    f"bench.client memory --target {target_addr} --streams {plan.memory_streams}"
                    f" --channels 10 --chunks {chunks} --hold {hold}"
                ),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        try:
            opened = _read_json_line(helper, hold + 30)
            time.sleep(1.0)
            loaded = statistics.median(self._rss_samples(proc.pid))
            cpu_open = cpu_seconds(proc.pid)
            assert helper.stdin is not None
            helper.stdin.write(b"cancel\n")
            helper.stdin.flush()
            cancelled = _read_json_line(helper, 60)
            helper.wait(30)
        finally:
            if helper.poll() is None:
                helper.kill()
                helper.wait(5)
        time.sleep(3.0)
        after = statistics.median(self._rss_samples(proc.pid))
        healthy = True
        try:
            self.checker.check(port, "unary")
        except BenchError:
            healthy = False
        streams = int(opened.get("open") or 0)
        per_stream = (loaded - idle) / streams if streams else float("nan")
        self.results["memory"] = {
            "target": target.key,
            "label": target.label,
            "flags": extra,
            "streams_wanted": plan.memory_streams,
            "streams_open": streams,
            "open_failures": opened.get("failed"),
            "failure_examples": opened.get("failures"),
            "open_seconds": opened.get("seconds"),
            "idle_rss_kib": idle,
            "open_rss_kib": loaded,
            "after_cancel_rss_kib": after,
            "kib_per_stream": per_stream,
            "chunks_received": cancelled.get("chunks_received"),
            "healthy_after": healthy,
            "cpu_seconds_at_open": cpu_open,
        }
        print(
            f"   memory    {target.label}: idle {idle / 1024:.1f} MiB, {streams} streams open "
            f"{loaded / 1024:.1f} MiB ({per_stream:.1f} KiB/stream), after cancel "
            f"{after / 1024:.1f} MiB",
            flush=True,
        )

    def _rss_samples(self, pid: int, count: int = 3) -> list[int]:
        samples = []
        for _ in range(count):
            samples.append(rss_kib(pid))
            time.sleep(0.3)
        return samples


def _read_json_line(helper: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert helper.stdout is not None
    ready, _, _ = select.select([helper.stdout], [], [], timeout)
    if not ready:
        raise BenchError(f"the memory client said nothing within {timeout}s")
    line = helper.stdout.readline()
    if not line:
        err = helper.stderr.read().decode(errors="replace") if helper.stderr else ""
        raise BenchError(f"the memory client exited:\n{err[-2000:]}")
    document: dict[str, Any] = json.loads(line)
    return document


# --------------------------------------------------------------------------- machine


def _run_text(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def machine(tools: Tools) -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    versions = {}
    probe = (
        "import importlib.metadata as m, json\n"
        "names = ['grpcio', 'protobuf', 'aiohttp', 'httpx', 'pydantic', 'pydantic-core', "
        "'uvloop', 'orjson', 'httpcore', 'h2', 'httpx-aiohttp', 'routerpc-gateway', "
        "'routerpc']\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    with contextlib.suppress(ValueError):
        versions = json.loads(_run_text([tools.python, "-c", probe]) or "{}")
    git = _run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = bool(_run_text(["git", "-C", str(REPO), "status", "--porcelain", "--", "service"]))
    return {
        "nproc": os.cpu_count(),
        "nproc_command": _run_text(["nproc"]),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _run_text(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": _run_text([tools.python, "-V"]),
        "packages": versions,
        "nginx": _run_text([tools.nginx, "-v"]).replace("nginx version: ", ""),
        "h2load": _run_text([tools.h2load, "--version"]),
        "git_commit": git,
        "service_dirty": dirty,
        "clk_tck": CLK_TCK,
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "gateway_flags": sorted(tools.gateway_flags),
    }


def find_tools(python: str, routerpc: str | None) -> Tools:
    exe = routerpc or str(Path(python).parent / "routerpc")
    if not Path(exe).exists():
        exe = shutil.which("routerpc") or exe
    h2 = shutil.which("h2load")
    ngx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not h2 or not ngx:
        raise BenchError("h2load and nginx are needed: run bench/run (it installs them)")
    help_text = _run_text([exe, "serve", "--help"])
    flags = set(re.findall(r"(--[a-z][a-z0-9-]+)", help_text))
    return Tools(python, exe, h2, ngx, help_text, flags)


# --------------------------------------------------------------------------- main


def run(plan: Plan, tools: Tools, procs: Processes, host: dict[str, Any]) -> dict[str, Any]:
    bench = Bench(plan, tools, procs)
    results = bench.results
    results["plan"] = plan.__dict__
    results["machine"] = host
    results["started"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()

    clients = ["aiohttp", "httpx"] if tools.has("--upstream-client") else [""]
    one_worker = 1 if tools.has("--workers") else 0
    gateways = [
        Target(
            f"gateway-{c or 'default'}",
            f"gateway ({c or 'default client'})",
            "gateway",
            c,
            one_worker,
        )
        for c in clients
    ]
    # The other clients, pass-through and gateway (when its --help names the client), at the
    # upstream-client concurrency only: the run stays within its time budget.
    at = tuple(c for c in plan.client_concurrencies if c in plan.concurrencies)
    extra_clients = EXTRA_CLIENTS if at else ()
    extra = [
        Target(f"passthrough-{c}", f"pass-through ({c})", "passthrough", c, only_at=at)
        for c in extra_clients
    ] + [
        Target(f"gateway-{c}", f"gateway ({c})", "gateway", c, one_worker, only_at=at)
        for c in extra_clients
        if tools.has("--upstream-client") and tools.mentions(c)
    ]
    # The same three on the standard asyncio loop (every Python server here defaults to uvloop,
    # as the gateway does), at the same concurrency only: what uvloop saves.
    asyncio_loop = [
        Target("echo-asyncio", "grpc.aio echo (asyncio loop)", "echo", only_at=at, loop="asyncio"),
        Target(
            "passthrough-aiohttp-asyncio",
            "pass-through (aiohttp, asyncio loop)",
            "passthrough",
            "aiohttp",
            only_at=at,
            loop="asyncio",
        ),
    ]
    if tools.has("--event-loop"):
        asyncio_loop.append(
            Target(
                "gateway-aiohttp-asyncio",
                "gateway (aiohttp, asyncio loop)",
                "gateway",
                "aiohttp",
                one_worker,
                only_at=at,
                loop="asyncio",
            )
        )
    targets = [
        Target("http", "direct HTTP (nginx)", "http"),
        Target("echo", "grpc.aio echo (floor)", "echo"),
        Target("passthrough-aiohttp", "pass-through (aiohttp)", "passthrough", "aiohttp"),
        Target("passthrough-httpx", "pass-through (httpx)", "passthrough", "httpx"),
        *gateways,
        *extra,
        *(asyncio_loop if at else []),
    ]
    results["targets"] = [t.__dict__ for t in targets]
    print(f"== upstream: nginx (static), load: h2load; plan {plan.mode}", flush=True)
    bench.upstream = start_nginx(procs, tools, "nginx-upstream", LOAD_CPU)
    bench.direct = start_nginx(procs, tools, "nginx-direct", SERVER_CPU)

    print("== unary and streaming", flush=True)
    bench.section("main", targets, slices=plan.slices, instances=plan.instances)

    if tools.has("--workers"):
        primary = gateways[0]
        pair = [
            Target(
                f"{primary.key}-w{n}",
                f"{primary.label.removesuffix(')')}, {n} worker{'s' * (n > 1)})",
                "gateway",
                primary.client,
                n,
            )
            for n in (1, 2)
        ]
        results["workers_targets"] = [t.__dict__ for t in pair]
        print(f"== workers 1 vs 2, gateway on cores {ALL_CPUS}", flush=True)
        bench.section("workers", pair, slices=plan.slices, instances=plan.instances, cpus=ALL_CPUS)
        rates = dict(plan.rate_per_worker)
        print(f"== workers 1 vs 2, the same offered load per worker {rates}", flush=True)
        bench.section(
            "workers-rate",
            pair,
            slices=plan.slices,
            instances=plan.instances,
            cpus=ALL_CPUS,
            concurrencies=(plan.rate_concurrency,),
            rates=rates,
        )
        if plan.workers_one_core:
            print(f"== workers 1 vs 2, gateway on core {SERVER_CPU}", flush=True)
            slices = plan.one_core_slices
            bench.section(
                "workers-1core", pair, slices=slices, instances=min(plan.instances, slices)
            )

    procs.stop(bench.direct.proc)
    print("== relay delay (drip upstream, 50 ms per chunk)", flush=True)
    try:
        bench.relay(
            [
                Target("echo", "direct gRPC (echo server drip, no relay)", "echo"),
                Target("passthrough-aiohttp", "pass-through (aiohttp)", "passthrough", "aiohttp"),
                *gateways,
            ]
        )
    except BenchError as error:
        bench.error("relay", error)

    print(f"== memory ({plan.memory_streams} open streams)", flush=True)
    try:
        bench.memory(gateways[0])
    except BenchError as error:
        bench.error("memory", error)
    bench.checker.close()
    results["seconds"] = round(time.monotonic() - t0, 1)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests, concurrency 1 and 16")
    parser.add_argument("--routerpc", help="the routerpc executable (default: beside python)")
    parser.add_argument("--report", type=Path, help="markdown report path")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and configs")
    args = parser.parse_args(argv)
    plan = Plan.of(args.quick)
    tools = find_tools(sys.executable, args.routerpc)
    host = machine(tools)  # before pinning this process (nproc reads the affinity mask)
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="routerpc-bench-"))
    procs = Processes(workdir)

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        results = run(plan, tools, procs, host)
    except KeyboardInterrupt:
        print("interrupted: every started process is being stopped", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw = json.dumps(results, indent=1, default=str)
    (results_dir / f"{stamp}-{plan.mode}.json").write_text(raw)
    latest = "latest.json" if plan.mode == "full" else "latest-quick.json"
    (results_dir / latest).write_text(raw)
    report = args.report or (
        BENCH / "RESULTS.md" if plan.mode == "full" else results_dir / "RESULTS-quick.md"
    )
    write_report(results, report)
    print(f"== done in {results['seconds']} s: {report} and bench/results/{latest}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
