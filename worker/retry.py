"""When to try a request again, and how long to wait first.

The decisions are pure functions (classification, Retry-After parsing, full-jitter
backoff); `retrying()` wires them into tenacity with an injectable sleep and clock.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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


Sleep = Callable[[float], Awaitable[None]]


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    rng: random.Random | None = None,
    deadline_s: float | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """A tenacity controller that retries RetryableApiError only, and re-raises the last
    error when attempts or the deadline run out. `deadline_s` overrides the policy's for a
    step that started part-way through a conference's deadline."""
    draw = (rng or random.Random()).random

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return wait_for(error, state.attempt_number, policy, draw(), now())

    return AsyncRetrying(
        sleep=sleep,
        stop=stop_any(
            stop_after_attempt(policy.max_attempts),
            stop_before_delay(policy.deadline_s if deadline_s is None else deadline_s),
        ),
        wait=wait,
        retry=retry_if_exception_type(RetryableApiError),
        before_sleep=on_retry,
        reraise=True,
    )
