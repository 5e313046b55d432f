"""A bounded, incremental Server-Sent Events parser (the WHATWG event-stream format).

Fed raw byte chunks as they arrive, it returns each complete event's data at once, so nothing is
buffered beyond the event being read. Lines end in LF, CRLF or CR; ``:`` lines are comments
(OpenRouter's ``: OPENROUTER PROCESSING`` keep-alives); ``data:`` lines of one event join with
``\\n``; other fields (``event``, ``id``, ``retry``) are read and ignored, as OpenRouter sends only
data events. An event or line larger than ``max_bytes`` is an error, never unbounded memory.
"""

from __future__ import annotations

__all__ = ["SseParser", "SseTooLargeError"]


class SseTooLargeError(ValueError):
    """An event exceeded the parser's byte bound."""


class SseParser:
    """Incremental parser: ``feed(chunk)`` returns the data of every event completed by it."""

    __slots__ = ("_buffer", "_data", "_data_size", "_max_bytes", "_pending_cr")

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._buffer = b""
        self._data: list[str] = []
        self._data_size = 0
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        """Consume ``chunk``; the data strings of the events it completed, in order.

        The buffer is split once per feed (``bytes.split``, in C) rather than cut line by
        line: cutting re-copied the rest of the buffer and searched it for CR again for every
        line, quadratic in the lines a read brings.
        """
        if not chunk:
            return []
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        buffer = self._buffer + chunk if self._buffer else chunk
        self._pending_cr = False
        if b"\r" in buffer:
            # A CR at the very end ends its line, and may be the first half of a CRLF.
            self._pending_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()  # the unended rest (b"" after a line end)
        events: list[str] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) > self._max_bytes:
            raise SseTooLargeError(f"an event line exceeds {self._max_bytes} bytes")
        return events

    def _line(self, line: bytes) -> str | None:
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data.clear()
            self._data_size = 0
            return data
        if line.startswith(b":"):
            return None
        name, _, value = line.partition(b":")
        if name != b"data":
            return None
        if value.startswith(b" "):
            value = value[1:]
        self._data_size += len(value) + 1
        if self._data_size > self._max_bytes:
            raise SseTooLargeError(f"an event exceeds {self._max_bytes} bytes")
        self._data.append(value.decode("utf-8", "replace"))
        return None
