"""Logging set-up: one handler, text for terminals or JSON lines for collectors.

Nothing here formats request content: prompts and keys are never passed to a logger. Access
lines (``routerpc.access``, one per RPC, :func:`access_line`) carry their fields in
``record.rpc``; JSON output puts them at the top level of the line. Once the handler is set up,
access lines skip the logging module's machinery and are written to it directly
(:class:`_AccessWriter`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

import pydantic_core

__all__ = ["ACCESS_LOGGER", "AccessFields", "access_line", "configure_logging", "text_fields"]

ACCESS_LOGGER = "routerpc.access"


class _Clock:
    """Timestamps for log lines: the date and time, formatted once per second, then the
    milliseconds as ``millis`` formats them (``,123`` or ``.123Z``), taken from a table.

    ``Formatter.formatTime`` calls ``localtime`` and ``strftime`` for every record, and even a
    ``:03d`` format per line was a measurable share of the gateway's CPU per call (one access
    line per RPC).
    """

    def __init__(
        self, convert: Callable[[float | None], time.struct_time], fmt: str, millis: str
    ) -> None:
        self._convert = convert
        self._fmt = fmt
        self._millis = tuple(millis.format(n) for n in range(1000))
        self._second = -1
        self._text = ""

    def stamp(self, created: float) -> str:
        """The stamp of a line made at ``created`` (seconds since the epoch)."""
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self._fmt, self._convert(second))
            self._second = second
        return self._text + self._millis[int((created - second) * 1000)]


def _json_line(
    stamp: str, level: str, logger: str, message: str, rpc: Any, *, exc: str | None = None
) -> str:
    """A JSON log line; an access line's fields go at its top level. pydantic-core's Rust
    encoder: a quarter of the instructions of ``json.dumps`` for an access line."""
    entry = {"ts": stamp, "level": level.lower(), "logger": logger, "msg": message}
    if isinstance(rpc, dict):
        entry.update(rpc)
    if exc is not None:
        entry["exc"] = exc
    return pydantic_core.to_json(entry).decode()


def text_fields(rpc: dict[str, Any]) -> str:
    """An access record's fields as a text line ends with them: `` key=value`` for each that is
    set (empty, zero and missing values are left out), fractional numbers to twelve significant
    digits (``%.12g``: a float's shortest repr costs twice as much)."""
    return "".join(
        [
            f" {key}={value:.12g}" if type(value) is float else f" {key}={value}"
            for key, value in rpc.items()
            if value
        ]
    )


def _text_line(stamp: str, level: str, logger: str, message: str, fields: str = "") -> str:
    """``time LEVEL logger: message``, then an access record's ``fields`` as
    :func:`text_fields` renders them."""
    return f"{stamp} {level} {logger}: {message}{fields}"


class AccessFields(Protocol):
    """An access line's fields, in both shapes a line can take."""

    def log_fields(self, elapsed: float) -> dict[str, Any]:
        """The fields, in their order (for JSON lines and the logging module)."""
        ...

    def text_fields(self, elapsed: float) -> str:
        """``text_fields(self.log_fields(elapsed))``, made without the dict when that is
        cheaper."""
        ...


class _Fields:
    """A dict of fields as :class:`AccessFields`."""

    __slots__ = ("_rpc",)

    def __init__(self, rpc: dict[str, Any]) -> None:
        self._rpc = rpc

    def log_fields(self, elapsed: float) -> dict[str, Any]:
        return self._rpc

    def text_fields(self, elapsed: float) -> str:
        return text_fields(self._rpc)


class _JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.stamp = _Clock(time.gmtime, "%Y-%m-%dT%H:%M:%S", ".{:03d}Z").stamp

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.stamp(record.created)
        rpc = getattr(record, "rpc", None)
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return _json_line(stamp, record.levelname, record.name, record.getMessage(), rpc, exc=exc)


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.stamp = _Clock(time.localtime, "%Y-%m-%d %H:%M:%S", ",{:03d}").stamp

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.stamp(record.created)
        rpc = getattr(record, "rpc", None)
        fields = text_fields(rpc) if isinstance(rpc, dict) else ""
        line = _text_line(stamp, record.levelname, record.name, record.getMessage(), fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class _AccessWriter:
    """Writes an access line to the gateway's log handler as its formatter would, without the
    logging module's record, filters and handler chain.

    One access line per RPC went through ``Logger.log``: a ``LogRecord`` of some forty
    attributes, the handler chain, then formatting, about 95,000 instructions per call
    (``python -m bench.instructions``). The line is the same (the formatters build theirs with
    the same functions, and a call record's own text fields are held to them;
    ``tests/unit/test_logs.py`` holds the two paths to one output) and is written under the
    handler's lock, so it never interleaves with a line from another thread.
    """

    def __init__(self, handler: logging.StreamHandler[Any], json_lines: bool) -> None:
        formatter = handler.formatter
        assert isinstance(formatter, _JsonFormatter | _TextFormatter)
        self._stamp = formatter.stamp
        self._json_lines = json_lines
        self._handler = handler
        # stderr is line-buffered (Python 3.9+): writing a line to it already flushed it.
        stream = handler.stream
        self._flushes_itself = stream if getattr(stream, "line_buffering", False) else None

    def __call__(self, level: int, message: str, fields: AccessFields, elapsed: float) -> None:
        stamp = self._stamp(time.time())
        level_name = _LEVEL_NAMES.get(level) or logging.getLevelName(level)
        if self._json_lines:
            line = _json_line(stamp, level_name, ACCESS_LOGGER, message, fields.log_fields(elapsed))
        else:
            text = fields.text_fields(elapsed)
            line = _text_line(stamp, level_name, ACCESS_LOGGER, message, text)
        handler = self._handler
        with handler.lock:  # type: ignore[union-attr]  # set by Handler.__init__
            try:
                stream = handler.stream
                stream.write(line + "\n")
                if stream is not self._flushes_itself:
                    stream.flush()
            except Exception:  # as logging does: a broken log never fails a call
                pass


_LEVEL_NAMES = {logging.INFO: "INFO", logging.WARNING: "WARNING"}
"""The levels access lines are written at (``logging.getLevelName`` is a call per line)."""


class _AccessLog:
    """Where access lines go: the gateway's handler directly once :func:`configure_logging`
    set it up; otherwise (the gateway embedded, tests capturing logs) the ``routerpc.access``
    logger, like any other line."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self.writer: _AccessWriter | None = None

    def enabled_for(self, level: int) -> bool:
        """Whether a line at ``level`` would be written (check before building its fields)."""
        return self._logger.isEnabledFor(level)

    def __call__(self, level: int, message: str, rpc: dict[str, Any]) -> None:
        """Log one access line (``rpc``: its fields) at ``level``, if that level is enabled."""
        if self._logger.isEnabledFor(level):
            self.write(level, message, _Fields(rpc), 0.0)

    def write(self, level: int, message: str, fields: AccessFields, elapsed: float) -> None:
        """Log one access line (``fields`` at ``elapsed``) without asking the level again: for
        a caller that just asked :meth:`enabled_for`."""
        if self.writer is not None:
            self.writer(level, message, fields, elapsed)
        else:
            self._logger.log(level, "%s", message, extra={"rpc": fields.log_fields(elapsed)})


access_line = _AccessLog()


def configure_logging(level: str, fmt: str) -> None:
    """Send every log line to stderr in ``fmt`` ("text" or "json") at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter())
    # No line shows the caller's source position, thread or process: skip collecting them on
    # every record (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access_line.writer = _AccessWriter(handler, fmt == "json")
    # httpx logs every request URL at INFO; keep the gateway's own lines readable.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
