"""The aiohttp client's SSE parser: every line ending, every split, bounded memory."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routerpc_gateway.upstream._sse import SseParser, SseTooLargeError

STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"a":1}\n\n'
    b"event: ignored\nid: 7\ndata: line one\ndata: line two\n\n"
    b"data:no-space\n\n"
    b"data: [DONE]\n\n"
)
EVENTS = ['{"a":1}', "line one\nline two", "no-space", "[DONE]"]


def _feed_all(parser: SseParser, chunks: list[bytes]) -> list[str]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_events_are_parsed_with_every_line_ending(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    assert _feed_all(SseParser(1 << 20), [stream]) == EVENTS


@settings(deadline=None)  # speed is for bench/, not for a test
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_events_survive_any_split_into_chunks(cuts: list[int]) -> None:
    for newline in (b"\n", b"\r\n", b"\r"):
        stream = STREAM.replace(b"\n", newline)
        points = sorted({min(c, len(stream)) for c in cuts})
        chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
        assert _feed_all(SseParser(1 << 20), chunks) == EVENTS


def test_comment_only_stream_yields_nothing() -> None:
    assert SseParser(1024).feed(b": keep-alive\n\n: keep-alive\n\n") == []


def test_each_event_is_returned_by_the_feed_that_completes_it() -> None:
    parser = SseParser(1024)
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\n") == ["a"]


def test_an_oversized_event_is_refused() -> None:
    parser = SseParser(100)
    with pytest.raises(SseTooLargeError):
        parser.feed(b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n")


def test_an_oversized_unterminated_line_is_refused() -> None:
    with pytest.raises(SseTooLargeError):
        SseParser(100).feed(b"data: " + b"x" * 200)


def _reference(stream: bytes) -> list[str]:
    """The WHATWG event-stream rules applied to the whole stream at once."""
    events, data = [], []
    for line in re.split(rb"\r\n|\r|\n", stream)[:-1]:  # the last piece has no line end
        if not line:
            if data:
                events.append("\n".join(data))
                data = []
        elif not line.startswith(b":"):
            name, _, value = line.partition(b":")
            if name == b"data":
                data.append(value.removeprefix(b" ").decode("utf-8", "replace"))
    return events


_PIECES = st.sampled_from(
    [
        b"",
        b"data: x",
        b"data:y",
        b"data: ",
        b"data",
        b": comment",
        b"id: 1",
        b"event: e",
        b"\xc3\xa9",
    ]
)
_ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r"])


@settings(deadline=None)
@given(
    st.lists(st.tuples(_PIECES, _ENDINGS, st.booleans()), max_size=20),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_mixed_line_endings_and_any_split_give_what_the_whole_stream_gives(
    lines: list[tuple[bytes, bytes, bool]], cuts: list[int]
) -> None:
    stream = b"".join(piece + ending + (ending if blank else b"") for piece, ending, blank in lines)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert _feed_all(SseParser(1 << 20), chunks) == _reference(stream)
    one_byte_each = [stream[i : i + 1] for i in range(len(stream))]  # every split at once
    assert _feed_all(SseParser(1 << 20), one_byte_each) == _reference(stream)
