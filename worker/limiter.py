"""Client-side write pacing shared by every consumer, adapting to 429s.

Each PUT takes the next free slot on a timeline spaced 1/rate apart, so consumers woken
together (after a shared Retry-After, say) still leave one at a time. On a 429 the rate
drops multiplicatively from the rate actually being sent; it then climbs back towards the
configured limit along a cubic curve, fast while far below the last rate that was
throttled and slowly near it, in the spirit of the AWS SDKs' adaptive retry mode.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio


@dataclass(frozen=True, slots=True)
class Adaptation:
    """The AIMD/CUBIC constants (AWS's adaptive mode uses beta 0.7, scale 0.4)."""

    beta: float = 0.7
    scale: float = 0.4
    min_rate: float = 1.0
    # Only one decrease per this many seconds: a burst of 429s is one congestion event.
    decrease_cooldown_s: float = 0.5


def cubic_rate(elapsed: float, last_max: float, adapt: Adaptation) -> float:
    """The rate `elapsed` seconds after a throttle at `last_max` (pure)."""
    k: float = ((last_max * (1 - adapt.beta)) / adapt.scale) ** (1 / 3)
    return max(adapt.min_rate, adapt.scale * (elapsed - k) ** 3 + last_max)


class RateLimiter:
    """Paces acquisitions to `rate` per second, never above `limit`."""

    def __init__(
        self,
        limit: float,
        *,
        adapt: Adaptation = Adaptation(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.limit = limit
        self.rate = limit
        self._adapt = adapt
        self._clock = clock
        self._sleep = sleep
        self._next_slot = clock()
        self._last_max: float | None = None
        self._throttled_at = -1e18
        self._started = clock()
        self.acquired = 0

    async def acquire(self) -> None:
        now = self._clock()
        self._recover(now)
        # Allow no burst above the rate: an idle limiter restarts at `now`.
        slot = max(self._next_slot, now)
        self._next_slot = slot + 1.0 / self.rate
        self.acquired += 1
        if slot > now:
            await self._sleep(slot - now)

    def throttled(self) -> None:
        """The Space answered 429: slow down, once per congestion event."""
        now = self._clock()
        if now - self._throttled_at < self._adapt.decrease_cooldown_s:
            return
        self._throttled_at = now
        self._last_max = self.rate
        self.rate = max(self._adapt.min_rate, self.rate * self._adapt.beta)

    def _recover(self, now: float) -> None:
        if self._last_max is None or self.rate >= self.limit:
            return
        grown = cubic_rate(now - self._throttled_at, self._last_max, self._adapt)
        self.rate = min(self.limit, max(self.rate, grown))

    def effective_rate(self) -> float:
        """Acquisitions per second since the limiter was made."""
        return self.acquired / max(self._clock() - self._started, 1e-9)
