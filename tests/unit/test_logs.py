"""Log lines: the text and JSON shapes operators parse, access fields included."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from routerpc_gateway.logs import configure_logging


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
    saved = (root.handlers[:], root.level)
    yield _Stderr(capsys)
    root.handlers[:], root.level = saved


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
