"""``python -m bench.insitu`` reads the dump callgrind wrote for the measured requests, no other."""

from __future__ import annotations

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


def test_the_dump_is_the_new_one_not_an_earlier_or_the_exit_one(tmp_path: Path) -> None:
    out = tmp_path / "callgrind-gateway-unary-c1"
    old = tmp_path / "callgrind-gateway-unary-c1.10.1"
    _dump(old, "dump", 5_000)  # from before the counters were zeroed
    _dump(tmp_path / "callgrind-gateway-unary-c1.10", "Program termination", 7_000)
    _dump(tmp_path / "callgrind-gateway-unary-c1.10.2", "dump", 300)

    assert insitu._dumped(out, {old}) == 300


def test_no_dump_is_an_error_not_a_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(insitu.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(insitu.time, "sleep", lambda seconds: None)
    with pytest.raises(BenchError, match="no dump"):
        insitu._dumped(tmp_path / "callgrind-echo-unary-c1", set())
