"""Instructions per request of the real servers under load, counted by valgrind: the ratios of
``bench/run`` without the noise of CPU time on a shared machine.

    python -m bench.insitu [--mode unary|stream] [--concurrency C] [--requests N]
                           [--servers gateway passthrough echo] [--routerpc PATH]

On this kind of VM the CPU time of one server spreads by a third or more between rounds of a
run (bench/README.md), so one ratio of CPU times can move by half between two runs of the same
code. Instructions do not move: each server here (the gateway, the minimal pass-through and the
echo floor, aiohttp as the upstream client, uvloop) runs under callgrind, pinned to core 0 in
front of the static nginx upstream on core 1, exactly as ``bench/run`` starts it. After a
warm-up the counters are zeroed (``callgrind_control -z``), h2load sends ``--requests`` calls,
and the counters are dumped (``-d``): every instruction the process executed for those calls,
in all its threads (grpc core, uvloop, aiohttp, the interpreter and the server's Python), per
request. Not counted: the kernel (system calls, about 36-39 per unary call for either server,
``strace -c``) and the price of an instruction, which cache misses make higher for a larger
program in a loaded server; so the ratios here are a floor-free companion to the CPU ratios of
``bench/RESULTS.md``, not a replacement. A server under valgrind runs one thread at a time and
some fifty times slower: only counts come out of it, never times. Counts of the same code move
by about 1% between runs (the grpc poller thread's wake-ups differ).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.bench import (
    LOAD_CPU,
    SERVER_CPU,
    BenchError,
    Processes,
    Tools,
    find_tools,
    free_port,
    gateway_env,
    start_nginx,
)
from bench.profile import SERVERS, run, seed_load, server_argv

WARM_UP_REQUESTS = 100
_SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)


def _dumped(out: Path, before: set[Path]) -> int:
    """The instruction count of the dump callgrind wrote since ``before`` (not the one it
    writes when the server exits)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for path in out.parent.glob(out.name + ".*"):
            if path in before:
                continue
            text = path.read_text(errors="replace")
            summary = _SUMMARY.search(text)
            if summary is not None and "Trigger: dump" in text:
                return int(summary.group(1))
        time.sleep(0.1)
    raise BenchError(f"callgrind wrote no dump next to {out}")


def count(
    kind: str, args: argparse.Namespace, tools: Tools, procs: Processes, upstream: str
) -> float:
    """Instructions per request of server ``kind`` for ``args.requests`` calls."""
    port = free_port()
    argv = server_argv(kind, args, tools, port, upstream)
    out = procs.workdir / f"callgrind-{kind}-{args.mode}-c{args.concurrency}"
    valgrind = ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out}.%p"]
    env = gateway_env()
    env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
    proc = procs.start(f"{kind}-{args.mode}", [*valgrind, *argv], SERVER_CPU, env=env)
    try:
        procs.wait_port(proc, port, seconds=300)  # start-up under valgrind takes a while
        load = seed_load(args.mode, port, procs.workdir)
        run(tools, load, WARM_UP_REQUESTS, args.concurrency)
        # taskset execs valgrind, so this pid is the server's; callgrind_control without a pid
        # would act on every callgrind run of the machine.
        pid = str(proc.popen.pid)
        subprocess.run(["callgrind_control", "-z", pid], capture_output=True, check=True)
        before = set(out.parent.glob(out.name + ".*"))
        done = run(tools, load, args.requests, args.concurrency)
        subprocess.run(["callgrind_control", "-d", pid], capture_output=True, check=True)
        return _dumped(out, before) / done
    finally:
        proc.popen.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(60)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.insitu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=("unary", "stream"), default="unary")
    parser.add_argument("--concurrency", type=int, choices=(1, 16, 64), default=1)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--routerpc", help="another `routerpc` executable to run as the gateway")
    args = parser.parse_args(argv)
    args.client, args.extra = "aiohttp", []
    if not 0 < args.requests <= 5_000:
        parser.error("--requests must be 1..5000 (bounded load; valgrind is slow)")
    tools = find_tools(sys.executable, args.routerpc)
    procs = Processes(Path(tempfile.mkdtemp(prefix="routerpc-insitu-")))
    try:
        upstream = start_nginx(procs, tools, "nginx", LOAD_CPU).base(args.mode, http2=False)
        counts = {kind: count(kind, args, tools, procs, upstream) for kind in args.servers}
    except BenchError as error:
        print(f"bench.insitu failed: {error}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()
    print(f"instructions per request, {args.mode}, c={args.concurrency}")
    for kind, figure in counts.items():
        bases = {"gateway": ("passthrough", "echo"), "passthrough": ("echo",)}.get(kind, ())
        ratios = [f"{figure / counts[base]:.2f}x {base}" for base in bases if base in counts]
        print(f"{kind:12} {figure:>12,.0f}  {'  '.join(ratios)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
