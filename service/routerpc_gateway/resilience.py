"""Retries and load shedding: the two ways the gateway protects callers and OpenRouter.

Retries: only a failure that happened before anything was relayed to the caller is retried
(408, 429, 500, 502, 503, 504, 524, 529 and connection failures), with exponential backoff and
full jitter, never sooner than the upstream's ``Retry-After``, never past the caller's deadline,
and only while the retry budget allows: retries may add at most ``retry_budget_ratio`` of the
recent request rate (plus a small floor), so an outage cannot multiply the load it is under.

Load shedding: at most ``max_concurrent_upstream`` upstream calls run at once and at most
``max_queued`` wait for a slot; past that a call fails at once with RESOURCE_EXHAUSTED and a
retry hint. Waiting is bounded by the caller's deadline. Nothing grows without bound.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from routerpc_gateway.errors import GatewayError
from routerpc_gateway.metrics import count_retry, count_shed

__all__ = [
    "RETRYABLE_HTTP_STATUSES",
    "Attempts",
    "ConcurrencyLimiter",
    "RetryBudget",
    "RetryPolicy",
    "call_with_retries",
]

T = TypeVar("T")

RETRYABLE_HTTP_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 524, 529})
_RETRYABLE_REASONS = frozenset({"UPSTREAM_UNREACHABLE"})


def is_retryable(error: GatewayError) -> bool:
    """Whether a failure (that relayed nothing) may be retried."""
    if error.reason in _RETRYABLE_REASONS:
        return True
    status = error.metadata.get("httpStatus", "")
    return (
        error.domain == "openrouter.ai"
        and status.isdigit()
        and int(status) in (RETRYABLE_HTTP_STATUSES)
    )


class RetryBudget:
    """Sliding window: retries <= ``ratio`` * requests + ``floor_per_second`` * window."""

    def __init__(self, ratio: float, floor_per_second: float = 1.0, window: float = 10.0) -> None:
        self._ratio = ratio
        self._floor = floor_per_second * window
        self._window = window
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def _trim(self, events: deque[float], now: float) -> None:
        oldest = now - self._window
        while events and events[0] < oldest:
            events.popleft()

    def record_request(self) -> None:
        now = time.monotonic()
        self._trim(self._requests, now)  # retries are trimmed when one is asked for
        self._requests.append(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        now = time.monotonic()
        self._trim(self._requests, now)
        self._trim(self._retries, now)
        if len(self._retries) + 1 > self._floor + self._ratio * len(self._requests):
            return False
        self._retries.append(now)
        return True


@dataclass
class RetryPolicy:
    """How many times and how patiently to retry."""

    max_attempts: int
    base_delay: float
    max_delay: float
    budget: RetryBudget
    retries_total: int = 0
    """Retries performed since start (for metrics)."""
    budget_exhausted_total: int = 0
    """Retries refused by the budget since start."""
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based), never
        shorter than the upstream's ``Retry-After``."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        jittered = self.rng.uniform(0, cap)
        return max(jittered, retry_after or 0.0)


@dataclass
class Attempts:
    """How many upstream attempts a call made; reported to the caller in trailing metadata."""

    count: int = 0


async def call_with_retries(
    policy: RetryPolicy,
    attempt: Callable[[float], Awaitable[T]],
    *,
    deadline: float,
    attempts: Attempts,
) -> T:
    """Run ``attempt(seconds_left)`` until it succeeds, fails for good, or time runs out.

    ``deadline`` is a ``time.monotonic()`` instant. A retry happens only when the error is
    retryable, attempts remain, the budget allows it, and the backoff ends before the deadline.
    """
    policy.budget.record_request()
    while True:
        attempts.count += 1
        try:
            return await attempt(deadline - time.monotonic())
        except GatewayError as error:
            if not is_retryable(error) or attempts.count >= policy.max_attempts:
                raise
            pause = policy.delay(attempts.count, error.retry_after)
            if time.monotonic() + pause >= deadline - 0.05:
                raise
            if not policy.budget.try_spend():
                policy.budget_exhausted_total += 1
                raise
            policy.retries_total += 1
            count_retry()
            await asyncio.sleep(pause)


class ConcurrencyLimiter:
    """A bound on concurrent upstream calls with a bounded, first-come wait queue.

    Its own slot count rather than an ``asyncio.Semaphore``: the semaphore's ``acquire`` is a
    coroutine and its ``locked`` walks the waiters with a generator, work every upstream call
    paid for although almost none of them waits. Here a free slot is taken with no await at
    all; a released slot goes straight to the first waiter still waiting.
    """

    def __init__(self, max_concurrent: int, max_queued: int, retry_hint: float = 1.0) -> None:
        self._free = max_concurrent
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._max_concurrent = max_concurrent
        self._max_queued = max_queued
        self._retry_hint = retry_hint
        self.shed_total = 0
        """Calls refused since start (for metrics)."""

    @property
    def in_flight(self) -> int:
        return self._max_concurrent - self._free

    def _overloaded(self) -> GatewayError:
        self.shed_total += 1
        count_shed()
        return GatewayError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "the gateway is at its concurrency limit; retry shortly",
            reason="GATEWAY_OVERLOADED",
            retry_after=self._retry_hint,
            metadata={
                "maxConcurrent": str(self._max_concurrent),
                "maxQueued": str(self._max_queued),
            },
        )

    def slot(self, seconds: float) -> _Slot:
        """Hold one upstream slot (``async with``); wait at most ``seconds``, and only if the
        queue has room."""
        return _Slot(self, seconds)

    def _take(self) -> bool:
        """Take a free slot if there is one nobody is queued for."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def _wait(self, seconds: float) -> None:
        """Queue for a slot, shedding the call when the queue is full or the wait too long."""
        if len(self._waiters) >= self._max_queued:
            raise self._overloaded()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await waiter
        except BaseException as error:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as the wait ended: pass it on
            else:
                waiter.cancel()
                if waiter in self._waiters:  # a release may have dropped it already
                    self._waiters.remove(waiter)
            if isinstance(error, TimeoutError):
                raise self._overloaded() from None
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands: the free count stays
                return
        self._free += 1


class _Slot:
    """One held slot of a :class:`ConcurrencyLimiter`: a plain async context manager, because
    an ``asynccontextmanager`` generator costs a generator object and two more steps on every
    upstream call."""

    __slots__ = ("_limiter", "_seconds")

    def __init__(self, limiter: ConcurrencyLimiter, seconds: float) -> None:
        self._limiter = limiter
        self._seconds = seconds

    async def __aenter__(self) -> None:
        if not self._limiter._take():
            await self._limiter._wait(self._seconds)

    async def __aexit__(self, *exc_info: object) -> None:
        self._limiter._release()
