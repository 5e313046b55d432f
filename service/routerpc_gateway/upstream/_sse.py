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
        """Consume ``chunk``; the data strings of the events it completed, in order."""
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = False
        self._buffer += chunk
        events: list[str] = []
        while True:
            end, skip = _line_end(self._buffer)
            if end < 0:
                break
            if skip == 1 and self._buffer[end : end + 1] == b"\r" and end + 1 == len(self._buffer):
                self._pending_cr = True  # a lone CR at the end may be the start of CRLF
            line = self._buffer[:end]
            self._buffer = self._buffer[end + skip :]
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


def _line_end(buffer: bytes) -> tuple[int, int]:
    """Index of the first line terminator and its length; (-1, 0) when none is complete."""
    lf = buffer.find(b"\n")
    cr = buffer.find(b"\r")
    if cr < 0:
        return lf, (1 if lf >= 0 else 0)
    if lf < 0 or cr < lf:
        if cr + 1 < len(buffer) and buffer[cr + 1 : cr + 2] == b"\n":
            return cr, 2
        return cr, 1
    return lf, 1
