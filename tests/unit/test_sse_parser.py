"""The aiohttp client's SSE parser: every line ending, every split, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given
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
