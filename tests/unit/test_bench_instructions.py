"""The code ``python -m bench.instructions`` counts runs, and is the successful path."""

from __future__ import annotations

import pytest

from bench import fixtures, instructions
from routerpc import Quantization, pb


@pytest.mark.parametrize("part", instructions.PARTS)
def test_each_counted_part_runs_repeatedly_without_error(part: str) -> None:
    run = instructions._part(part)
    for _ in range(3):
        run()


def test_the_counted_call_answers_with_the_benchmark_completion() -> None:
    # An error path would be counted as if it were the gateway's work.
    run = instructions._part("call")
    for _ in range(2):
        response = run()
        assert isinstance(response, pb.ChatResponse)
        expected = fixtures.completion()["choices"][0]["message"]["content"]
        assert response.choices[0].message.content == expected
        assert response.quantization == Quantization.FP16  # the catalogue lookup ran too


def test_the_counted_stream_relays_every_chunk_of_the_benchmark_body() -> None:
    run = instructions._part("stream")
    for _ in range(2):
        messages = run()
        assert isinstance(messages, list)
        assert len(messages) == len(fixtures.STREAM_PIECES) + 1  # and the usage chunk
        text = "".join(m.choices[0].delta.content for m in messages if m.choices)
        assert text == "".join(fixtures.STREAM_PIECES)
        assert messages[-1].HasField("usage")
        assert messages[-1].quantization == Quantization.FP16  # the catalogue lookup ran too
