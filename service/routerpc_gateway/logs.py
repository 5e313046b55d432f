"""Logging set-up: one handler, text for terminals or JSON lines for collectors.

Nothing here formats request content: prompts and keys are never passed to a logger. Access
lines (``routerpc.access``, one per RPC) carry their fields in ``record.rpc``; JSON output
puts them at the top level of the line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable

__all__ = ["configure_logging"]


class _Clock:
    """Timestamps for log lines, the date and time part formatted once per second.

    ``Formatter.formatTime`` calls ``localtime`` and ``strftime`` for every record; with one
    access line per RPC that was a measurable share of the gateway's CPU per call.
    """

    def __init__(self, convert: Callable[[float | None], time.struct_time], fmt: str) -> None:
        self._convert = convert
        self._fmt = fmt
        self._second = -1
        self._text = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self._fmt, self._convert(second))
            self._second = second
        return self._text


class _JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock(time.gmtime, "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": f"{self._clock(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rpc = getattr(record, "rpc", None)
        if isinstance(rpc, dict):
            entry.update(rpc)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


class _TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``; an access record's fields follow as key=value pairs
    (those that are set: empty, zero and missing values are left out)."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock(time.localtime, "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self._clock(record.created)},{int(record.msecs):03d} {record.levelname} "
            f"{record.name}: {record.getMessage()}"
        )
        rpc = getattr(record, "rpc", None)
        if isinstance(rpc, dict):
            line += "".join([f" {key}={value}" for key, value in rpc.items() if value])
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def configure_logging(level: str, fmt: str) -> None:
    """Send every log line to stderr in ``fmt`` ("text" or "json") at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter())
    # No line shows the caller's source position, thread or process: skip collecting them on
    # every record (the logging HOWTO's "Optimization" section), one access line per RPC.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; keep the gateway's own lines readable.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
