"""When to try a request again, and how long to wait first.

The decisions are pure functions (classification, Retry-After parsing, full-jitter
backoff); `retrying()` wires them into tenacity with an injectable sleep and clock, and
`with_retries()` is the one way a run calls the API: result and attempts, or the error.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_any
from tenacity.stop import stop_after_attempt, stop_before_delay

from worker.errors import ApiError, RetryableApiError

# 408/429 and the transient 5xx: the request did not take, or may not have, and a
# full-replacement PUT is idempotent, so sending it again is safe.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry settings (config key `retry`)."""

    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    retry_after_cap_s: float = 60.0
    deadline_s: float = 300.0


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date
    (RFC 9110 §10.2.3). None when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # str.isdigit() alone admits "²" and "٣"
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, policy: RetryPolicy, unit: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(n-1))].
    `unit` is a draw from [0, 1), injected so the arithmetic is testable."""
    # The exponent is bounded: 2.0 ** 1024 raises OverflowError, and the cap is long reached.
    exponent = min(max(0, attempt - 1), 1000)
    ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2.0 ** exponent)
    return unit * ceiling


def wait_for(error: BaseException | None, attempt: int, policy: RetryPolicy,
             unit: float, now: datetime) -> float:
    """How long to wait after failed attempt number `attempt`: the server's Retry-After
    when it gave one (capped), else jittered backoff."""
    if isinstance(error, ApiError):
        told = parse_retry_after(error.retry_after, now)
        if told is not None:
            return min(told, policy.retry_after_cap_s)
    return backoff_delay(attempt, policy, unit)


# How a run waits: `anyio.sleep` in production, a recorder in tests.
Sleep = Callable[[float], Awaitable[None]]
# Told of each failed attempt that will be tried again, before the wait.
OnRetry = Callable[[RetryableApiError], None]
T = TypeVar("T")


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    rng: random.Random | None = None,
    deadline_s: float | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_retry: OnRetry | None = None,
) -> AsyncRetrying:
    """A tenacity controller that retries RetryableApiError only, and re-raises the last
    error when attempts or the deadline run out. `deadline_s` overrides the policy's for a
    step that started part-way through a conference's deadline."""
    draw = (rng or random.Random()).random

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return wait_for(error, state.attempt_number, policy, draw(), now())

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(error, RetryableApiError):
            on_retry(error)

    return AsyncRetrying(
        sleep=sleep,
        stop=stop_any(
            stop_after_attempt(policy.max_attempts),
            stop_before_delay(policy.deadline_s if deadline_s is None else deadline_s),
        ),
        wait=wait,
        retry=retry_if_exception_type(RetryableApiError),
        before_sleep=before_sleep,
        reraise=True,
    )


@dataclass(frozen=True, slots=True)
class Tried(Generic[T]):
    """A call's result and the attempts it took."""

    value: T
    attempts: int


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    rng: random.Random | None = None,
    deadline_s: float | None = None,
    on_retry: OnRetry | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Tried[T]:
    """`call` until it succeeds, fails for good, or attempts or the deadline run out. The
    producer's pages and the consumer's GETs and PUTs all go through here. An ApiError
    that escapes carries the attempts it took as `attempts`."""
    # Nearly every request succeeds at once, and building tenacity's per-call state cost
    # ~10% of a run's CPU (profiled), so the first attempt goes direct. On a retryable
    # failure tenacity takes over, its first attempt replaying that failure without I/O,
    # so the waits, the stop and the attempt count stay tenacity's alone.
    started = clock()
    try:
        return Tried(await call(), 1)
    except RetryableApiError as exc:
        first: list[RetryableApiError] = [exc]
    except ApiError as exc:
        exc.attempts = 1
        raise

    async def attempt() -> T:
        if first:
            raise first.pop()
        return await call()

    budget = policy.deadline_s if deadline_s is None else deadline_s
    controller = retrying(policy, sleep=sleep, rng=rng, on_retry=on_retry,
                          deadline_s=budget - (clock() - started))
    try:
        value: T = await controller(attempt)
    except ApiError as exc:
        exc.attempts = controller.statistics["attempt_number"]
        raise
    return Tried(value, controller.statistics["attempt_number"])
