"""Upstream faults end to end: each ends in its documented status (README "Errors" and
"Reliability") within its deadline, and the gateway serves a normal chat afterwards.

Every test runs once per upstream client (aiohttp, httpx). Faults come from the emulator (model
suffix ``~fault=<name>``) or, below HTTP, from an in-test raw TCP server (``RawUpstream``:
connections closed or reset before any reply byte, an SSE line that never ends, a gzip reply).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from faults_support import Caller, Outcome, RawUpstream, rss_kib, status_kib, wait_until
from gateway_e2e import Emulator, Gateway, faulty, seed_request

pytestmark = pytest.mark.e2e

CODE = grpc.StatusCode
MIB = 1024 * 1024
LIMIT = 1 * MIB
"""``--max-upstream-response-bytes`` of the ``gateway`` and ``raw_gateway`` fixtures."""
MEMORY_BOUND_KIB = 64 * 1024
"""Largest growth of the gateway's resident memory tolerated by the oversized-reply tests."""
SOCKET_SLACK = 16 * MIB
"""What loopback socket buffers may hold beyond what the gateway read before hanging up."""


def _calls(caller: Caller) -> list[tuple[str, Callable[..., Outcome]]]:
    return [("unary", caller.unary), ("stream", caller.stream)]


def assert_serves(caller: Caller, gateway: Gateway) -> None:
    """The gateway still answers a normal chat, unary and streamed."""
    unary = caller.unary(gateway.target, seed_request().proto, timeout=10)
    assert unary.ok, f"after the fault a normal chat failed: {unary}"
    assert unary.response.choices[0].message.content == "Echo: Hello!"
    streamed = caller.stream(gateway.target, seed_request().proto, timeout=10)
    assert streamed.ok, f"after the fault a normal stream failed: {streamed}"
    assert streamed.chunks >= 2


# 429 -----------------------------------------------------------------------------------------


def test_429_with_retry_after_is_resource_exhausted_with_its_retry_delay(
    gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    for kind, call in _calls(caller):
        outcome = call(gateway.target, faulty("rate-limit").proto)
        assert outcome.code == CODE.RESOURCE_EXHAUSTED, (kind, str(outcome))
        assert outcome.retry_delay == 2.0, kind
        assert outcome.attempts == 1, kind
        assert outcome.elapsed < 2.0, kind
    assert len(upstream.requests()) == 2
    assert_serves(caller, gateway)


def test_429_without_retry_after_is_resource_exhausted_without_a_retry_delay(
    gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    for kind, call in _calls(caller):
        outcome = call(gateway.target, faulty("rate-limit-no-retry-after").proto)
        assert outcome.code == CODE.RESOURCE_EXHAUSTED, (kind, str(outcome))
        assert outcome.retry_delay is None, kind
        assert outcome.attempts == 1, kind
    assert_serves(caller, gateway)


def test_a_retrying_gateway_retries_a_429_without_retry_after_up_to_its_attempts(
    retrying_gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    for kind, call in _calls(caller):
        upstream.clear()
        outcome = call(retrying_gateway.target, faulty("rate-limit-no-retry-after").proto)
        assert outcome.code == CODE.RESOURCE_EXHAUSTED, (kind, str(outcome))
        assert outcome.attempts == 3, (kind, str(outcome))
        assert outcome.retry_delay is None, kind
        assert len(upstream.requests()) == 3, kind
        assert outcome.elapsed < 2.0, kind
    assert_serves(caller, retrying_gateway)


def test_a_retrying_gateway_waits_the_retry_after_and_stops_at_the_deadline(
    retrying_gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    # Retry-After: 2 and a 3 s deadline: one retry fits (after 2 s), a second would not.
    outcome = caller.unary(retrying_gateway.target, faulty("rate-limit").proto, timeout=3)
    assert outcome.code == CODE.RESOURCE_EXHAUSTED, str(outcome)
    assert outcome.attempts == 2, str(outcome)
    assert outcome.retry_delay == 2.0
    assert 1.9 <= outcome.elapsed < 3.0, str(outcome)
    sent = upstream.requests()
    assert len(sent) == 2
    assert sent[1]["received_at"] - sent[0]["received_at"] >= 1.9, "Retry-After not honoured"
    assert_serves(caller, retrying_gateway)


# 5xx -----------------------------------------------------------------------------------------


def test_5xx_then_success_is_retried_to_ok(
    retrying_gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    for kind, call in _calls(caller):
        upstream.clear()  # resets the fail-first counter too
        outcome = call(retrying_gateway.target, faulty("fail-first-2").proto)
        assert outcome.ok, (kind, str(outcome))
        assert outcome.attempts == 3, (kind, str(outcome))
        assert len(upstream.requests()) == 3, kind
    assert_serves(caller, retrying_gateway)


@pytest.mark.parametrize(
    ("fault", "code"),
    [("server-error", CODE.INTERNAL), ("bad-gateway", CODE.UNAVAILABLE)],
    ids=["500", "502"],
)
def test_5xx_forever_stops_after_the_bounded_attempts_with_the_code_of_the_status(
    retrying_gateway: Gateway,
    upstream: Emulator,
    caller: Caller,
    fault: str,
    code: grpc.StatusCode,
) -> None:
    for kind, call in _calls(caller):
        upstream.clear()
        outcome = call(retrying_gateway.target, faulty(fault).proto)
        assert outcome.code == code, (kind, str(outcome))
        assert outcome.attempts == 3, (kind, str(outcome))
        assert outcome.chunks == 0, kind
        assert len(upstream.requests()) == 3, kind
        assert outcome.elapsed < 2.0, kind
    assert_serves(caller, retrying_gateway)


# Connection refused, reset -------------------------------------------------------------------


def test_connection_refused_is_unavailable_promptly(
    start_gateway: Callable[..., Gateway], upstream_client: str, caller: Caller
) -> None:
    upstream = RawUpstream(mode="ok")
    upstream.start()
    port = upstream.port
    upstream.stop()  # nothing listens on the port now: connections are refused
    # Production retry settings (3 attempts, 0.25 s base backoff): still prompt.
    gateway = start_gateway("refused", upstream_url=upstream.base_url, client=upstream_client)
    try:
        for kind, call in _calls(caller):
            outcome = call(gateway.target, seed_request().proto)
            assert outcome.code == CODE.UNAVAILABLE, (kind, str(outcome))
            assert outcome.reason == "UPSTREAM_UNREACHABLE", kind
            assert outcome.attempts == 3, (kind, str(outcome))
            assert outcome.elapsed < 2.0, (kind, str(outcome))
        upstream.start(port)  # the upstream comes back: the gateway recovers
        assert_serves(caller, gateway)
    finally:
        upstream.stop()


RESETS_BEFORE_THE_REPLY = ["close", "reset", "close-after-request", "reset-after-request"]


def test_a_reset_before_the_reply_is_unavailable(
    raw_gateway: Gateway, raw_upstream: RawUpstream, caller: Caller
) -> None:
    for mode in RESETS_BEFORE_THE_REPLY:
        raw_upstream.mode = mode
        for kind, call in _calls(caller):
            outcome = call(raw_gateway.target, seed_request().proto)
            assert outcome.code == CODE.UNAVAILABLE, (mode, kind, str(outcome))
            assert outcome.reason == "UPSTREAM_UNREACHABLE", (mode, kind, str(outcome))
            assert outcome.chunks == 0
            assert outcome.elapsed < 2.0, (mode, kind, str(outcome))
    raw_upstream.mode = "ok"
    assert_serves(caller, raw_gateway)


def test_a_reset_before_the_reply_is_a_connection_failure_and_retried(
    raw_retrying_gateway: Gateway, raw_upstream: RawUpstream, caller: Caller
) -> None:
    """Nothing was relayed, so the failure is retryable for streams as for unary calls."""
    for mode in ("close-after-request", "reset-after-request"):
        raw_upstream.mode = mode
        for kind, call in _calls(caller):
            raw_upstream.reset_counters()
            outcome = call(raw_retrying_gateway.target, seed_request().proto)
            assert outcome.code == CODE.UNAVAILABLE, (mode, kind, str(outcome))
            assert outcome.attempts == 3, (mode, kind, str(outcome))
            assert raw_upstream.accepted == 3, (mode, kind, raw_upstream.accepted)
    raw_upstream.mode = "ok"
    assert_serves(caller, raw_retrying_gateway)


def test_a_reset_during_the_stream_is_unavailable_after_chunks_and_never_retried(
    retrying_gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    outcome = caller.stream(retrying_gateway.target, faulty("cut-stream").proto)
    assert outcome.code == CODE.UNAVAILABLE, str(outcome)
    assert outcome.reason == "STREAM_INTERRUPTED"
    assert outcome.chunks >= 1, "chunks must have been relayed before the cut"
    assert outcome.attempts == 1, "a stream that relayed chunks must never be retried"
    assert len(upstream.requests()) == 1
    assert_serves(caller, retrying_gateway)


# Deadlines -----------------------------------------------------------------------------------


def test_a_slow_first_byte_beyond_the_deadline_is_deadline_exceeded_on_time(
    retrying_gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    # The emulator's first byte comes after 3 s; the deadline is 1 s.
    for kind, call in _calls(caller):
        upstream.clear()
        outcome = call(retrying_gateway.target, faulty("slow-first-byte").proto, timeout=1)
        assert outcome.code == CODE.DEADLINE_EXCEEDED, (kind, str(outcome))
        assert 0.9 <= outcome.elapsed < 1.5, (kind, str(outcome))
        assert len(upstream.requests()) == 1, "a timeout is not retried"
    assert_serves(caller, retrying_gateway)


# Bad bodies ----------------------------------------------------------------------------------


def test_garbage_json_is_internal(gateway: Gateway, upstream: Emulator, caller: Caller) -> None:
    for kind, call in _calls(caller):
        outcome = call(gateway.target, faulty("garbage-json").proto)
        assert outcome.code == CODE.INTERNAL, (kind, str(outcome))
        assert outcome.reason == "UPSTREAM_BAD_RESPONSE", kind
    assert_serves(caller, gateway)


def test_garbage_sse_is_not_ok(gateway: Gateway, upstream: Emulator, caller: Caller) -> None:
    for kind, call in _calls(caller):
        outcome = call(gateway.target, faulty("garbage-sse").proto)
        assert not outcome.ok, kind
        assert outcome.code == CODE.INTERNAL, (kind, str(outcome))
        assert outcome.reason == "UPSTREAM_BAD_RESPONSE", kind
    assert_serves(caller, gateway)


def test_an_oversized_reply_is_resource_exhausted_and_memory_stays_bounded(
    gateway: Gateway, upstream: Emulator, caller: Caller
) -> None:
    pid = gateway.process.pid
    for _kind, call in _calls(caller):  # warm-up: allocator pools, code paths
        call(gateway.target, faulty("oversized").proto)
    rss_before, peak_before = rss_kib(pid), status_kib(pid, "VmHWM")
    for _ in range(5):
        for kind, call in _calls(caller):
            outcome = call(gateway.target, faulty("oversized").proto)  # 8 MiB of content
            assert outcome.code == CODE.RESOURCE_EXHAUSTED, (kind, str(outcome))
            assert outcome.reason == "UPSTREAM_RESPONSE_TOO_LARGE", kind
            assert outcome.error is not None
            assert outcome.error.metadata.get("limitBytes") == str(LIMIT)
            # A stream may have relayed the role chunk that precedes the huge delta.
            assert outcome.chunks <= 1, (kind, str(outcome))
    rss_growth = rss_kib(pid) - rss_before
    peak_growth = status_kib(pid, "VmHWM") - peak_before
    assert rss_growth < MEMORY_BOUND_KIB, f"VmRSS grew {rss_growth} KiB over 10 oversized calls"
    assert peak_growth < MEMORY_BOUND_KIB, f"VmHWM grew {peak_growth} KiB"
    assert_serves(caller, gateway)


def test_an_sse_line_that_never_ends_is_cut_at_the_limit(
    raw_gateway: Gateway, raw_upstream: RawUpstream, caller: Caller
) -> None:
    """The upstream sends one ``data:`` line forever (up to 256 MiB): the gateway must stop
    reading soon after the 1 MiB limit, not buffer what the upstream sends."""
    pid = raw_gateway.process.pid
    raw_upstream.mode = "endless-sse-line"
    peak_before = status_kib(pid, "VmHWM")
    for kind, call in _calls(caller):
        raw_upstream.reset_counters()
        outcome = call(raw_gateway.target, seed_request().proto, timeout=20)
        assert outcome.code == CODE.RESOURCE_EXHAUSTED, (kind, str(outcome))
        assert outcome.reason == "UPSTREAM_RESPONSE_TOO_LARGE", kind
        assert outcome.elapsed < 5.0, (kind, str(outcome))
        # The upstream notices the hang-up on its next write: wait for it to record the count.
        wait_until(lambda: len(raw_upstream.sent) == 1, timeout_s=5)
        sent = list(raw_upstream.sent)
        assert len(sent) == 1, (kind, sent)
        assert sent[0] <= LIMIT + SOCKET_SLACK, (
            f"{kind}: the upstream could send {sent[0]} bytes before the gateway hung up"
        )
    peak_growth = status_kib(pid, "VmHWM") - peak_before
    assert peak_growth < MEMORY_BOUND_KIB, f"VmHWM grew {peak_growth} KiB"
    raw_upstream.mode = "ok"
    assert_serves(caller, raw_gateway)


def test_a_gzip_encoded_reply_is_decoded(
    raw_gateway: Gateway, raw_upstream: RawUpstream, caller: Caller
) -> None:
    """Both HTTP clients ask for gzip (``Accept-Encoding``), so a compressed reply must be read
    decoded, and its size bounded after decoding."""
    raw_upstream.mode = "gzip-json"
    outcome = caller.unary(raw_gateway.target, seed_request().proto)
    assert outcome.ok, str(outcome)
    assert outcome.response.choices[0].message.content == "Echo: Hello!"
    raw_upstream.mode = "ok"
    assert_serves(caller, raw_gateway)
