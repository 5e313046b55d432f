"""``routerpc serve --workers N``: N processes on one port, all serving, draining together."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gateway_e2e import Emulator, Gateway, launch_gateway, seed_request, stop_process
from grpc_health.v1 import health_pb2, health_pb2_grpc

from routerpc import RouterClient

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _workers(gateway: Gateway) -> list[int]:
    return [
        pid
        for pid in _children(gateway.process.pid)
        if b"routerpc_gateway" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def three_workers(tmp_path: Path, emulator: Emulator, canary_key: str) -> Iterator[Gateway]:
    gateway = launch_gateway(
        tmp_path / "workers.log",
        "--workers",
        "3",
        upstream_url=emulator.base_url,
        key=canary_key,
    )
    try:
        yield gateway
    finally:
        stop_process(gateway.process)


def test_every_worker_serves_calls_on_the_shared_port(three_workers: Gateway) -> None:
    workers = _workers(three_workers)
    assert len(workers) == 3, workers
    before = {pid: _cpu_ticks(pid) for pid in workers}
    served = 0
    for _ in range(60):  # one new connection per call: the kernel spreads them over workers
        with RouterClient(three_workers.target, timeout=10) as client:
            served += client.chat(seed_request()).text == "Echo: Hello!"
    assert served == 60
    busy = [pid for pid in workers if _cpu_ticks(pid) - before[pid] > 0]
    assert len(busy) >= 2, f"calls reached only {busy} of {workers}"
    assert "routerpc listening on" in three_workers.log_text()
    assert "(3 workers)" in three_workers.log_text()
    # Every worker runs its own loop, of the default kind.
    assert three_workers.log_text().count("(uvloop loop)") == 3


def test_sigterm_drains_every_worker_and_the_master_exits_zero(three_workers: Gateway) -> None:
    workers = _workers(three_workers)
    with grpc.insecure_channel(three_workers.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    three_workers.process.send_signal(signal.SIGTERM)
    assert three_workers.process.wait(30) == 0, three_workers.log_text()
    log = three_workers.log_text()
    assert log.count("draining:") == 3, log
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    assert "Traceback" not in log


def test_a_worker_that_dies_takes_the_group_down_with_a_nonzero_exit(
    three_workers: Gateway,
) -> None:
    workers = _workers(three_workers)
    os.kill(workers[0], signal.SIGKILL)
    assert three_workers.process.wait(30) != 0
    assert "a worker exited unexpectedly" in three_workers.log_text()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_workers_refuse_a_port_another_server_holds(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "taken.log"
        with pytest.raises(AssertionError, match="cannot serve on"):
            launch_gateway(log, "--workers", "2", "--port", str(port))
