"""``bench.report`` pools a row's slices (CPU seconds over requests), not a median of them."""

from __future__ import annotations

from typing import Any

import pytest

from bench import report


def _slice(
    number: int,
    cpu_seconds: float,
    succeeded: int,
    *,
    complete: bool = True,
    target: str = "gateway-aiohttp",
    seconds: float = 1.0,
) -> dict[str, Any]:
    return {
        "section": "main",
        "target": target,
        "label": target,
        "kind": "gateway",
        "mode": "unary",
        "concurrency": 16,
        "slice": number,
        "clients": 4,
        "streams_per_client": 4,
        "requests": {"total": succeeded, "succeeded": succeeded},
        "rps": succeeded / seconds,
        "h2load_seconds": seconds,
        "wall_seconds": seconds + 0.01,
        "latency_ms": {"p50": float(number), "p99": 10.0 * number},
        "cpu_ms_per_request": cpu_seconds * 1000.0 / succeeded,
        "cpu_seconds": cpu_seconds,
        "upstream_cpu_ms_per_request": 0.1 * number,
        "loadgen_cpu_ms_per_request": 0.2,
        "other_load_cores": 0.0,
        "complete": complete,
    }


def test_cpu_per_request_is_all_cpu_seconds_over_all_requests() -> None:
    row = report._aggregate([_slice(1, 1.0, 1000), _slice(2, 3.0, 1000)])

    assert row["cpu_ms_per_request"] == pytest.approx(2.0)


def test_pooled_cpu_weighs_by_requests_and_is_not_the_median_of_slices() -> None:
    # Per slice: 1.0, 1.5 and 4.0 ms per request; their median is 1.5.
    slices = [_slice(1, 1.0, 1000), _slice(2, 1.5, 1000), _slice(3, 2.0, 500)]

    row = report._aggregate(slices)

    assert row["cpu_ms_per_request"] == pytest.approx(4.5 * 1000 / 2500)  # 1.8
    assert row["slices"] == 3


def test_nginx_and_h2load_cpu_and_req_per_s_are_pooled_by_requests() -> None:
    slices = [_slice(1, 1.0, 1000, seconds=1.0), _slice(2, 1.0, 3000, seconds=2.0)]

    row = report._aggregate(slices)

    # nginx: 0.1 ms over 1000 requests and 0.2 ms over 3000.
    assert row["upstream_cpu_ms_per_request"] == pytest.approx((100 + 600) / 4000)
    assert row["loadgen_cpu_ms_per_request"] == pytest.approx(0.2)
    assert row["rps"] == pytest.approx(4000 / 3.0)  # h2load's time, not the wall time
    assert row["latency_ms"] == {"p50": 1.5, "p99": 15.0}  # medians over slices


def test_an_incomplete_slice_makes_the_row_not_ok_and_keeps_it_out_of_ratios() -> None:
    slices = [_slice(n, 1.0, 1000) for n in (1, 2, 3)]
    slices.append(_slice(4, 9.0, 10, complete=False))
    passthrough = [_slice(n, 1.0, 1000, target="passthrough-aiohttp") for n in (1, 2, 3, 4)]
    index = report.Index([*slices, *passthrough])

    row = index.get("main", "gateway-aiohttp", "unary", 16)

    assert row is not None
    assert row["complete"] is False
    assert row["cpu_ms_per_request"] == pytest.approx(1.0)  # the incomplete slice left out
    assert index.cpu("main", "gateway-aiohttp", "unary", 16) is None
    gateway, passthrough_key = ("main", "gateway-aiohttp"), ("main", "passthrough-aiohttp")
    assert index.ratio(gateway, passthrough_key, "unary", 16) is None


def test_spread_is_max_minus_min_of_four_pooled_blocks_over_the_pooled_figure() -> None:
    # Eight slices of 1000 requests: blocks of two pool to 1.0, 2.0, 1.5 and 3.5 ms per request.
    seconds = [1.0, 1.0, 1.5, 2.5, 1.0, 2.0, 3.0, 4.0]
    slices = [_slice(n, s, 1000) for n, s in enumerate(seconds, start=1)]

    row = report._aggregate(slices)

    assert row["cpu_ms_per_request"] == pytest.approx(2.0)
    assert row["cpu_spread"] == pytest.approx((3.5 - 1.0) / 2.0)


def test_blocks_follow_slice_order_not_record_order() -> None:
    seconds = [1.0, 1.0, 1.5, 2.5, 1.0, 2.0, 3.0, 4.0]
    slices = [_slice(n, s, 1000) for n, s in enumerate(seconds, start=1)]

    row = report._aggregate(list(reversed(slices)))

    assert row["cpu_spread"] == pytest.approx(1.25)


def test_one_slice_has_no_spread() -> None:
    assert report._aggregate([_slice(1, 1.0, 1000)])["cpu_spread"] is None


def test_records_of_older_runs_in_rounds_pool_the_same_way() -> None:
    old = [_slice(1, 1.0, 1000), _slice(2, 3.0, 1000)]
    for run in old:
        run["round"] = run.pop("slice")
        del run["h2load_seconds"]

    row = report._aggregate(old)

    assert row["cpu_ms_per_request"] == pytest.approx(2.0)
    assert row["rps"] == pytest.approx(1000.0)  # from each record's req/s


def _stolen(number: int, steal: float, cpu_seconds: float) -> dict[str, Any]:
    return {**_slice(number, cpu_seconds, 1000), "steal_cores": steal}


def test_a_run_whose_host_took_time_is_flagged_with_its_steal_and_spread() -> None:
    # Eight slices, two of them with steal; blocks of two pool to 1.0, 2.0, 1.5 and 3.5 ms.
    cpu = [1.0, 1.0, 2.0, 2.0, 1.5, 1.5, 3.5, 3.5]
    steal = [0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.6, 0.0]
    runs = [_stolen(n, s, c) for n, (s, c) in enumerate(zip(steal, cpu, strict=True), 1)]
    [text] = [line for line in report._steal_note(runs) if line]
    assert "max 0.60; 2 of 8 slices above 0.05 core" in text
    assert "**The host was busy during this run**" in text


def test_a_quiet_host_is_not_flagged() -> None:
    runs = [_stolen(n, 0.0, 1.0) for n in range(1, 9)]
    [text] = [line for line in report._steal_note(runs) if line]
    assert "0 of 8 slices" in text
    assert "busy" not in text
