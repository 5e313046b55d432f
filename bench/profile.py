"""Where the gateway's CPU goes, and what a change saves: the tools the hot-path work used.

    python -m bench.profile [--mode unary|stream] [--server gateway] [--client aiohttp]
                            [--requests N] [--concurrency C] [--raw OUT.txt] [-- serve flags]
    python -m bench.profile --compare passthrough gateway [--rounds R] ...

Both start the static nginx upstream of ``bench.bench`` on core 1 and the server(s) under test
pinned to core 0, warm each up, and drive a fixed, bounded number of requests with h2load from
core 1.

* Profile (default): ``py-spy record`` samples the one server (250 Hz, non-blocking) during the
  measured requests only (start-up and warm-up stay out), then prints the functions holding the
  most busy samples, inclusive (the function or anything it calls) and self.
* ``--compare A B ...``: no profiler; every server is started, then measured in turn for
  ``--rounds`` rounds (order rotating, so drift of a shared machine hits all alike), and the
  median CPU ms per request of each is printed with every round. Figures from one machine in
  one run only; ``bench/run`` is the benchmark of record.

``--routerpc PATH`` runs another ``routerpc`` executable as the gateway (a build to compare).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import fixtures
from bench.bench import (
    CHAT_PATH,
    GRPC_HEADERS,
    HOST,
    LOAD_CPU,
    SERVER_CPU,
    STREAM_PATH,
    BenchError,
    Load,
    Proc,
    Processes,
    Target,
    Tools,
    cpu_seconds,
    find_tools,
    free_port,
    gateway_argv,
    gateway_env,
    h2load,
    start_nginx,
)
from bench.servers.passthrough_server import CLIENTS
from routerpc import pb

PY_SPY_RATE = 250
WARM_UP_REQUESTS = 300
SERVERS = ("gateway", "passthrough", "echo")


@dataclass
class Running:
    name: str
    proc: Proc
    load: Load


def server_argv(
    kind: str, args: argparse.Namespace, tools: Tools, port: int, upstream: str
) -> list[str]:
    if kind == "gateway":
        target = Target("gateway", "gateway", "gateway", client=args.client, workers=1)
        return gateway_argv(tools, target, port, upstream, args.extra)
    module = f"bench.servers.{kind}_server"
    argv = [tools.python, "-m", module, "--port", str(port)]
    if kind == "passthrough":
        argv += ["--upstream-url", upstream, "--client", args.client]
    return argv


def start(
    spec: str, args: argparse.Namespace, tools: Tools, procs: Processes, upstream: str
) -> Running:
    """Start ``spec``: a server kind, optionally with environment settings for it alone
    (``gateway:ROUTERPC_LOG_LEVEL=warning,OTHER=1``)."""
    kind, _, settings = spec.partition(":")
    if kind not in SERVERS:
        raise BenchError(f"unknown server {kind!r} (choose from {', '.join(SERVERS)})")
    env = gateway_env()
    for setting in filter(None, settings.split(",")):
        name, _, value = setting.partition("=")
        env[name] = value
    port = free_port()
    argv = server_argv(kind, args, tools, port, upstream)
    proc = procs.start(f"server-{len(procs.running)}", argv, SERVER_CPU, env=env)
    procs.wait_port(proc, port)
    load = seed_load(args.mode, port, procs.workdir)
    run(tools, load, WARM_UP_REQUESTS, args.concurrency)
    return Running(spec, proc, load)


def seed_load(mode: str, port: int, workdir: Path) -> Load:
    """h2load's target for ``mode``: the seed request (wrapped for ``StreamChat``) as one gRPC
    frame, sent to the server on ``port``."""
    message: object = fixtures.seed_request()
    if mode == "stream":
        message = pb.StreamChatRequest(request=fixtures.seed_request())
    data = workdir / f"request-{mode}.grpc"
    data.write_bytes(fixtures.grpc_frame(message))
    path = CHAT_PATH if mode == "unary" else STREAM_PATH
    return Load(f"http://{HOST}:{port}{path}", data, GRPC_HEADERS, h1=False)


def run(tools: Tools, load: Load, requests: int, concurrency: int) -> int:
    """Send ``requests`` calls; the number that succeeded (all of them, or BenchError)."""
    parsed, _ = h2load(tools, load, n=requests, concurrency=concurrency, log=None, timeout=300)
    done: int = parsed["requests"]["succeeded"]
    if done != requests:
        raise BenchError(f"{requests - done} of {requests} requests failed: {parsed['requests']}")
    return done


def summarize(raw: Path, top: int) -> str:
    """Inclusive and self sample counts per function from py-spy's raw (collapsed) stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} busy samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"\n-- {title} --")
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / max(total, 1):6.1f}%  {frame}")
    return "\n".join(lines)


def profile(args: argparse.Namespace, tools: Tools, procs: Processes, server: Running) -> None:
    raw = args.raw or procs.workdir / "stacks.txt"
    spy = [str(Path(tools.python).parent / "py-spy"), "record", "--rate", str(PY_SPY_RATE)]
    spy += ["--format", "raw", "--output", str(raw), "--threads", "--nonblocking"]
    sampler = procs.start("py-spy", [*spy, "--pid", str(server.proc.pid)], LOAD_CPU)
    time.sleep(1.0)  # py-spy attached and sampling
    started = time.monotonic()
    done = run(tools, server.load, args.requests, args.concurrency)
    elapsed = time.monotonic() - started
    sampler.popen.send_signal(signal.SIGINT)  # py-spy writes its stacks on SIGINT (Ctrl-C)
    sampler.popen.wait(30)
    print(f"{done} {args.mode} requests to {server.name} in {elapsed:.1f}s under py-spy")
    print(summarize(raw, args.top))


def compare(args: argparse.Namespace, tools: Tools, servers: list[Running]) -> None:
    results: dict[str, list[float]] = {s.name: [] for s in servers}
    for round_ in range(args.rounds):
        shift = round_ % len(servers)
        for server in servers[shift:] + servers[:shift]:
            before = cpu_seconds(server.proc.pid)
            done = run(tools, server.load, args.requests, args.concurrency)
            results[server.name].append(1000 * (cpu_seconds(server.proc.pid) - before) / done)
    for name, figures in results.items():
        rounds = ", ".join(f"{f:.3f}" for f in figures)
        print(f"{name:28} CPU ms/request median {statistics.median(figures):.3f}  ({rounds})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=("unary", "stream"), default="unary")
    parser.add_argument("--server", choices=SERVERS, default="gateway")
    parser.add_argument(
        "--compare", nargs="+", metavar="SERVER[:ENV=VALUE,...]", help=f"from {', '.join(SERVERS)}"
    )
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, choices=(1, 16, 64), default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--routerpc", help="another `routerpc` executable to run as the gateway")
    parser.add_argument("extra", nargs="*", help="extra flags for `routerpc serve`")
    args = parser.parse_args(argv)
    if not 0 < args.requests <= 100_000 or not 0 < args.rounds <= 50:
        parser.error("--requests must be 1..100000 and --rounds 1..50 (bounded load)")
    tools = find_tools(sys.executable, args.routerpc)
    procs = Processes(Path(tempfile.mkdtemp(prefix="routerpc-profile-")))
    try:
        upstream = start_nginx(procs, tools, "nginx", LOAD_CPU).base(
            args.mode, http2=args.client == "httpx-http2"
        )
        kinds = args.compare or [args.server]
        servers = [start(kind, args, tools, procs, upstream) for kind in kinds]
        if args.compare:
            compare(args, tools, servers)
        else:
            profile(args, tools, procs, servers[0])
        return 0
    except BenchError as error:
        print(f"bench.profile failed: {error}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
