"""Log lines: the text and JSON shapes operators parse, access fields included."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from routerpc_gateway.logs import access_line, configure_logging, text_fields
from routerpc_gateway.observe import CallRecord


class _Stderr:
    """What the process wrote to stderr so far (configure_logging writes there)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._seen = ""

    def getvalue(self) -> str:
        self._seen += self._capsys.readouterr().err
        return self._seen


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[_Stderr]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, access_line.writer)
    yield _Stderr(capsys)
    root.handlers[:], root.level, access_line.writer = saved


def _access(logger: logging.Logger, fields: dict[str, object]) -> None:
    logger.log(logging.INFO, "rpc %s %s", "Chat", "OK", extra={"rpc": fields})


def test_text_lines_carry_local_time_level_logger_and_message(stderr: _Stderr) -> None:
    configure_logging("info", "text")
    before = time.time()
    logging.getLogger("routerpc.gateway").info("listening on %s:%d", "127.0.0.1", 50051)
    line = stderr.getvalue().rstrip("\n")
    match = re.fullmatch(
        r"(\S+ \S+),(\d{3}) INFO routerpc.gateway: listening on 127.0.0.1:50051", line
    )
    assert match is not None, line
    stamp = time.mktime(time.strptime(match[1], "%Y-%m-%d %H:%M:%S"))
    assert before - 1 <= stamp <= time.time()


def test_text_access_lines_list_the_fields_that_are_set(stderr: _Stderr) -> None:
    configure_logging("info", "text")
    fields = {"request_id": "ab12", "model": "openai/gpt-4o", "provider": "", "attempts": 0}
    _access(logging.getLogger("routerpc.access"), {**fields, "cost": None, "latency_ms": 1.5})
    line = stderr.getvalue().rstrip("\n")
    assert line.endswith(
        "INFO routerpc.access: rpc Chat OK request_id=ab12 model=openai/gpt-4o latency_ms=1.5"
    ), line


def test_text_lines_keep_the_traceback_of_a_logged_exception(stderr: _Stderr) -> None:
    configure_logging("info", "text")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("routerpc.gateway").exception("failed")
    lines = stderr.getvalue().splitlines()
    assert lines[0].endswith("ERROR routerpc.gateway: failed")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


def test_json_lines_put_access_fields_at_the_top_level_with_utc_time(
    stderr: _Stderr,
) -> None:
    configure_logging("info", "json")
    _access(logging.getLogger("routerpc.access"), {"request_id": "ab12", "attempts": 1})
    entry = json.loads(stderr.getvalue())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.pop("ts"))
    assert entry == {
        "level": "info",
        "logger": "routerpc.access",
        "msg": "rpc Chat OK",
        "request_id": "ab12",
        "attempts": 1,
    }


def test_consecutive_lines_in_one_second_share_its_stamp_and_differ_in_milliseconds(
    stderr: _Stderr,
) -> None:
    configure_logging("info", "json")
    log = logging.getLogger("routerpc.gateway")
    stamps = []
    for _ in range(3):
        log.info("tick")
        stamps.append(json.loads(stderr.getvalue().splitlines()[-1])["ts"])
        time.sleep(0.002)
    now = time.gmtime()
    assert all(s[:4] == time.strftime("%Y", now) for s in stamps)
    assert stamps == sorted(stamps)


ACCESS_FIELDS = {
    "request_id": "ab12",
    "method": "Chat",
    "caller": "anonymous",
    "model": "openai/gpt-4o",
    "provider": "",
    "attempts": 1,
    "prompt_tokens": 9,
    "reasoning_tokens": 0,
    "cost": 0.0001225,
    "upstream_seconds": 8.1e-05,
    "first_chunk_seconds": None,
    "code": "OK",
    "latency_ms": 1.234,
}


def _without_stamp(line: str, fmt: str) -> str:
    if fmt == "json":
        entry = json.loads(line)
        del entry["ts"]
        return json.dumps(entry)
    return line.split(" ", 2)[2]  # after "date time,ms"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_lines_written_directly_equal_those_of_the_logging_module(
    stderr: _Stderr, fmt: str
) -> None:
    configure_logging("info", fmt)
    access_line(logging.INFO, "rpc Chat OK", dict(ACCESS_FIELDS))
    _access(logging.getLogger("routerpc.access"), dict(ACCESS_FIELDS))
    direct, through_logging = stderr.getvalue().splitlines()
    assert _without_stamp(direct, fmt) == _without_stamp(through_logging, fmt)
    if fmt == "json":
        assert json.loads(direct)["cost"] == 0.0001225
        assert json.loads(direct)["upstream_seconds"] == 8.1e-05
    else:
        assert direct.split(" ", 2)[2].startswith("INFO routerpc.access: rpc Chat OK request_id")


def test_access_lines_follow_the_access_logger_level(stderr: _Stderr) -> None:
    configure_logging("warning", "text")
    access_line(logging.INFO, "rpc Chat OK", {"request_id": "ok1"})
    access_line(logging.WARNING, "rpc Chat NOT_FOUND", {"request_id": "nf1"})
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "WARNING routerpc.access: rpc Chat NOT_FOUND request_id=nf1" in lines[0]


def test_access_lines_go_through_logging_until_the_gateway_configures_it(
    stderr: _Stderr, caplog: pytest.LogCaptureFixture
) -> None:
    access_line.writer = None
    with caplog.at_level(logging.INFO, logger="routerpc.access"):
        access_line(logging.INFO, "rpc Chat OK", {"request_id": "ab12"})
    [record] = [r for r in caplog.records if r.name == "routerpc.access"]
    assert record.getMessage() == "rpc Chat OK"
    assert record.rpc == {"request_id": "ab12"}


def test_text_access_lines_print_fractional_numbers_to_twelve_significant_digits(
    stderr: _Stderr,
) -> None:
    configure_logging("info", "text")
    fields = {"cost": 0.000123456789, "upstream_seconds": 0.1 + 0.2, "latency_ms": 1.5}
    access_line(logging.INFO, "rpc Chat OK", {**fields, "first_chunk_seconds": 8.1e-05})
    line = stderr.getvalue().rstrip("\n")
    assert line.endswith(
        "rpc Chat OK cost=0.000123456789 upstream_seconds=0.3 latency_ms=1.5"
        " first_chunk_seconds=8.1e-05"
    ), line


def _records() -> Iterator[tuple[CallRecord, float]]:
    """Call records with every field unset, set alone, and all set; fractional numbers with
    many digits, tiny and huge; latencies from zero to a day."""
    values: dict[str, list[Any]] = {
        "caller": ["", "team-a"],
        "model": ["", "openai/gpt-4o"],
        "provider": ["", "OpenAI"],
        "quantization": ["", "fp8"],
        "attempts": [0, 3],
        "prompt_tokens": [0, 9],
        "completion_tokens": [0, 1_000_000],
        "reasoning_tokens": [0, 7],
        "cached_tokens": [0, 2],
        "cost": [None, 0.0, 0.000123456789123456, 1e-12, 12345.678, 1 / 3],
        "upstream_seconds": [None, 0.0, 0.1 + 0.2, 8.1e-05],
        "first_chunk_seconds": [None, 1 / 3],
        "code": ["", "DEADLINE_EXCEEDED"],
    }
    latencies = [0.0, 1e-7, 0.001234567, 1 / 3, 86_400.0]
    yield CallRecord("", ""), 0.0
    for request_id, method in (("", "Chat"), ("ab12", ""), ("ab12", "StreamChat")):
        for name, options in values.items():
            for value in options:
                for elapsed in latencies:
                    record = CallRecord(request_id, method)
                    setattr(record, name, value)
                    yield record, elapsed
    record = CallRecord("ab12", "Chat")
    for name, options in values.items():
        setattr(record, name, options[-1])
    for elapsed in latencies:
        yield record, elapsed


def test_a_call_records_text_fields_equal_those_rendered_from_its_fields() -> None:
    checked = 0
    for record, elapsed in _records():
        expected = text_fields(record.log_fields(elapsed))
        assert record.text_fields(elapsed) == expected, (vars(record), elapsed)
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_lines_of_a_call_record_equal_those_of_the_logging_module(
    stderr: _Stderr, fmt: str
) -> None:
    configure_logging("info", fmt)
    record = CallRecord("ab12", "Chat")
    record.model, record.attempts, record.cost, record.upstream_seconds = "m", 1, 0.1 + 0.2, 2e-5
    access_line.write(logging.INFO, "rpc Chat OK", record, 0.0123456)
    _access(logging.getLogger("routerpc.access"), record.log_fields(0.0123456))
    direct, through_logging = stderr.getvalue().splitlines()
    assert _without_stamp(direct, fmt) == _without_stamp(through_logging, fmt)
    assert "latency_ms" in direct
    assert "upstream_seconds" in direct
