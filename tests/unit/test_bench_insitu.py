"""``python -m bench.insitu`` reads callgrind's dumps: every process's, and only the new dumps."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench import insitu
from bench.bench import BenchError


def _dump(path: Path, trigger: str, summary: int) -> None:
    path.write_text(
        f"version: 1\ncreator: callgrind-3.19.0\npid: 1\ncmd:  python\npart: 1\n\n"
        f"desc: I1 cache: \ndesc: Trigger: {trigger}\n\npositions: line\nevents: Ir\n"
        f"summary: {summary}\n\n\nfl= (1)\nfn= (1)\n0 {summary}\n\ntotals: {summary}\n"
    )


def test_the_dumps_of_the_master_and_each_worker_are_summed(tmp_path: Path) -> None:
    out = tmp_path / "callgrind-gateway-unary-c1"
    old = tmp_path / "callgrind-gateway-unary-c1.10.1"
    _dump(old, "dump", 5_000)  # from before the counters were zeroed
    before = {old}
    _dump(tmp_path / "callgrind-gateway-unary-c1.11.1", "dump", 300)
    _dump(tmp_path / "callgrind-gateway-unary-c1.12.1", "dump", 200)
    _dump(tmp_path / "callgrind-gateway-unary-c1.12", "Program termination", 7_000)

    assert insitu._dumped(out, before) == 500


def test_no_dump_is_an_error_not_a_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(insitu.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(insitu.time, "sleep", lambda seconds: None)
    with pytest.raises(BenchError, match="no dump"):
        insitu._dumped(tmp_path / "callgrind-echo-unary-c1", set())


def test_the_process_tree_holds_the_server_and_its_workers_only() -> None:
    # A shell (the "server") with a child of its own (a "worker"); this test process is outside.
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(tree := insitu._process_tree(shell.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tree[0] == str(shell.pid)
        assert len(tree) == 2
        assert str(os.getpid()) not in tree
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the sleep too
        shell.wait()
