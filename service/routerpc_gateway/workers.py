"""``routerpc serve --workers N``: N gateway processes sharing one port, so a host uses its cores.

One Python process runs one event loop on one core. The master reserves the port with
``SO_REUSEPORT`` (as grpc's multiprocessing example does), starts the embedded emulator once when
there is no key, and starts N worker processes that each bind the same port; the kernel spreads
connections across them. The master forwards SIGTERM/SIGINT to every worker, each drains as a
single process would (health NOT_SERVING, then in-flight calls finish within the grace period),
and the master exits 0 once all have. A worker that dies on its own takes the group down with a
non-zero exit, so the orchestrator restarts the whole unit rather than running short-handed.
"""

from __future__ import annotations

import logging
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from routerpc_gateway.callers import CallersStore
from routerpc_gateway.config import Settings

__all__ = ["available_cpus", "run_workers"]

log = logging.getLogger("routerpc.gateway")

_READY_TIMEOUT_S = 60.0
_EMULATOR_LINE = re.compile(rb"emulator listening on (http://\S+)")


def available_cpus() -> int:
    """Cores this process may use: the affinity mask, capped by a cgroup v2 CPU quota."""
    count = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen) with SO_REUSEPORT so the port stays ours while workers bind it too.

    A plain bind comes first: with SO_REUSEPORT alone, a port held by another reuse-port server
    of the same user would be silently shared instead of reported as taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((host, port))
        except OSError as error:
            raise OSError(
                error.errno, "cannot bind (address in use or not available here)"
            ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "routerpc_emulator", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + _READY_TIMEOUT_S
    seen = b""
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            seen += line
            if match := _EMULATOR_LINE.search(line):
                return process, match.group(1).decode()
    process.kill()
    raise OSError(f"the embedded emulator did not start: {seen.decode(errors='replace')}")


def _worker_env(
    settings: Settings,
    index: int,
    port: int,
    upstream: str,
    *,
    ready_fd: int,
    metrics_dir: str | None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTERPC_")}
    env.pop("OPENROUTER_API_KEY", None)
    excluded = {
        "api_key",
        "workers",
        "emulator",
        "worker_index",
        "ready_fd",
        "metrics_port",
        "metrics_dir",
    }
    for name, value in settings.model_dump(exclude=excluded).items():
        if value is not None:
            env[f"ROUTERPC_{name.upper()}"] = str(value)
    env.update(
        ROUTERPC_PORT=str(port),
        ROUTERPC_UPSTREAM_URL=upstream,
        ROUTERPC_WORKERS="1",
        ROUTERPC_WORKER_INDEX=str(index),
        ROUTERPC_READY_FD=str(ready_fd),
    )
    if metrics_dir is not None:
        env["ROUTERPC_METRICS_DIR"] = metrics_dir
    if settings.api_key is not None and not settings.use_emulator:
        env["OPENROUTER_API_KEY"] = settings.api_key.get_secret_value()
    return env


def _stop_all(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> list[int]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes


def _serve_summed_metrics(settings: Settings, metrics_dir: str | None) -> None:
    if metrics_dir is None:
        return
    from prometheus_client import CollectorRegistry

    from routerpc_gateway.metrics import SummedFilesCollector
    from routerpc_gateway.server import start_metrics

    registry = CollectorRegistry()
    registry.register(SummedFilesCollector(Path(metrics_dir)))
    start_metrics(settings, registry)


def run_workers(settings: Settings, count: int) -> int:
    """Run ``count`` worker processes on one port until SIGTERM/SIGINT; the exit code."""
    CallersStore(settings.callers_file)  # a bad callers file fails here, not once per worker
    reserved = _reserve_port(settings.host, settings.port)
    port = reserved.getsockname()[1]
    emulator: subprocess.Popen[bytes] | None = None
    upstream = settings.upstream_base
    if settings.use_emulator:
        emulator, upstream = _start_emulator()
        reason = "--emulator given" if settings.emulator else "no OPENROUTER_API_KEY set"
        log.info(
            "serving from the built-in OpenRouter emulator at %s (%s); no request leaves "
            "this machine",
            upstream,
            reason,
        )
    else:
        log.info("serving from the upstream at %s", upstream)

    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)

    def reload_callers(signum: int, frame: object) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGHUP)

    signal.signal(signal.SIGHUP, reload_callers)

    workers: list[subprocess.Popen[bytes]] = []
    ready_read, ready_write = os.pipe()
    # With metrics on, workers write theirs to files here and the master serves the sum.
    metrics_dir = None
    if settings.metrics_port is not None:
        metrics_dir = tempfile.mkdtemp(prefix="routerpc-metrics-")
    try:
        for index in range(count):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "routerpc_gateway", "serve"],
                    env=_worker_env(
                        settings,
                        index,
                        port,
                        upstream,
                        ready_fd=ready_write,
                        metrics_dir=metrics_dir,
                    ),
                    pass_fds=(ready_write,),
                )
            )
        os.close(ready_write)
        ready = 0
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while ready < count and time.monotonic() < deadline and not stopping:
            if any(w.poll() is not None for w in workers):
                raise OSError("a worker exited during start-up")
            readable, _, _ = select.select([ready_read], [], [], 0.2)
            if readable:
                ready += len(os.read(ready_read, 64).splitlines())
        if ready < count and not stopping:
            raise OSError(f"only {ready} of {count} workers became ready")
        log.info("routerpc listening on %s:%d (%d workers)", settings.host, port, count)
        _serve_summed_metrics(settings, metrics_dir)
        while not stopping:
            if any(w.poll() is not None for w in workers):
                log.error("a worker exited unexpectedly; stopping the others")
                _stop_all(workers, settings.drain_delay + settings.grace_period + 10)
                return 1
            time.sleep(0.2)
        log.info("stopping %d workers", count)
        codes = _stop_all(workers, settings.drain_delay + settings.grace_period + 10)
        log.info("stopped")
        return 0 if all(code == 0 for code in codes) else 1
    finally:
        _stop_all(workers, 5)
        if emulator is not None:
            _stop_all([emulator], 5)
        os.close(ready_read)
        reserved.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
