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

__all__ = ["configure_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
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
    """Human-readable lines; an access record's fields follow as key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rpc = getattr(record, "rpc", None)
        if isinstance(rpc, dict):
            pairs = [f"{k}={v}" for k, v in rpc.items() if v not in (None, "", 0)]
            line = f"{line} {' '.join(pairs)}"
        return line


def configure_logging(level: str, fmt: str) -> None:
    """Send every log line to stderr in ``fmt`` ("text" or "json") at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
