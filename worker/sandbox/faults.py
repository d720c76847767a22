"""Deliberate misbehaviour: the PUT rate limit and seeded fault injection.

Both decide from plain values (a clock reading, a random draw) so the same seed and the
same request sequence give the same answers.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from email.utils import formatdate

from worker.sandbox.config import FaultConfig


class Fault(enum.Enum):
    """What an injected fault does to one request."""

    NONE = "none"
    ERROR_500 = "500"
    ERROR_503 = "503"
    ERROR_429 = "429"
    DROP_AFTER_APPLY = "drop"


class SlidingWindowLimiter:
    """Allows `limit` events in any `window_s` span: exact, by remembering each admission."""

    __slots__ = ("_admitted", "_limit", "_window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self._limit = limit
        self._window_s = window_s
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> float:
        """Admit an event at `now` and return 0, or return the seconds until a slot frees.

        A refused event takes no slot, so a client that waits as told gets in.
        """
        horizon = now - self._window_s
        admitted = self._admitted
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) < self._limit:
            admitted.append(now)
            return 0.0
        return admitted[0] - horizon


def retry_after_header(seconds: float, *, http_date: bool, wall_clock: float) -> str:
    """A Retry-After value: whole delta-seconds (at least 1), or an HTTP-date that far ahead."""
    whole = max(1, math.ceil(seconds))
    if http_date:
        return formatdate(wall_clock + whole, usegmt=True)
    return str(whole)


class FaultInjector:
    """Draws faults from an RNG of its own, seeded, so data and faults don't disturb each other."""

    __slots__ = ("_config", "_get_500", "_put_bounds", "_rng")

    def __init__(self, config: FaultConfig, seed: int) -> None:
        self._config = config
        self._rng = random.Random(seed)
        self._get_500 = config.get_500
        bounds: list[tuple[float, Fault]] = []
        total = 0.0
        for probability, fault in (
            (config.error_500, Fault.ERROR_500),
            (config.error_503, Fault.ERROR_503),
            (config.error_429, Fault.ERROR_429),
            (config.drop_after_apply, Fault.DROP_AFTER_APPLY),
        ):
            total += probability
            bounds.append((total, fault))
        self._put_bounds = tuple(bound for bound in bounds if bound[0] > 0)

    def for_put(self) -> Fault:
        """The fault for one PUT: one draw, tried against each kind in order."""
        if not self._put_bounds:
            return Fault.NONE
        draw = self._rng.random()
        for bound, fault in self._put_bounds:
            if draw < bound:
                return fault
        return Fault.NONE

    def for_get(self) -> bool:
        """Whether one GET (single or list) answers 500."""
        return self._get_500 > 0 and self._rng.random() < self._get_500
