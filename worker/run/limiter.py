"""Client-side write pacing shared by every consumer, adapting to 429s.

Each PUT takes the next free slot on a timeline spaced 1/rate apart, so consumers woken
together (after a shared Retry-After, say) still go in order; a writer wakes on the first
shared tick at or after its slot, so the writers of one tick share a wake-up. On
congestion (see `congested`) the rate drops multiplicatively from the rate the Space was
actually admitting (the PUTs it took over the last second, a margin below; sends less
refusals where it is not told); it then climbs back towards the configured limit along a
cubic curve, fast while far below the admitted rate and slowly near it, in the spirit of
the AWS SDKs' adaptive retry mode. The first congestion of a run waits out the Space's
Retry-After before the next slot when it came within a window of the first PUT taken
(see `filled_at_once`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field

import anyio


@dataclass(frozen=True, slots=True)
class Adaptation:
    """The AIMD/CUBIC constants. AWS's adaptive mode uses beta 0.7 and scale 0.4. Here
    the decrease starts from the measured admitted rate, not the configured one, so it
    already lands just below the Space's; beta 0.9 then keeps a cycle's mean rate at about
    97.5 % of it, where 0.7 gave 92.5 % (measured with `bench`: 200 PUT/s enforced,
    N = 4,000, C = 16: 187 updates/s at 0.9, 171 at 0.8)."""

    beta: float = 0.9
    # The cut once the plateau is known, when congestion was declared only by a run of
    # refusals (`congestion_run`) and the last second's refused share stayed under
    # `congestion_fraction`: the rate was a hair above the Space's, not far above it.
    # At 50 ms and 1,380 PUT/s enforced over a 1 s window, such events came about every
    # 6 s with 6 to 23 refusals each; cutting each by `beta` with its ~7 s climb back
    # held the cycle's mean at about 90 % of R, while 0.97 (a ~4.6 s climb) holds ~95 %.
    marginal_beta: float = 0.97
    # AWS's cubic coefficient. A coefficient scaled to the limit (tried: 0.04 x limit)
    # climbs back from a lone early 429 in 3 s instead of ~15 s, but probes so hard past
    # the last throttle that 200 PUT/s enforced fell to 54 % of R with 7 % 429s (bench).
    scale: float = 0.4
    min_rate: float = 1.0
    # Only one decrease per this many seconds: a burst of 429s is one congestion event.
    decrease_cooldown_s: float = 0.5
    # A 429 means congestion only when this share of the last second's PUTs (and at least
    # `congestion_min` of them) were refused. A Space at its limit refuses most of what is
    # sent above it; a stray 429 is not a limit. Cutting on every 429 ratcheted 2 % random
    # 429s down from 256 to 42 updates/s (measured), each cut measured from a rate the
    # cut itself had lowered.
    congestion_fraction: float = 0.05
    congestion_min: int = 3
    # Or when this many PUT answers in a row were refusals: a full window refuses
    # everything, while 1 % random 429s come four in a row once in 100 million answers.
    # Waiting for 5 % of a second's sends to be refused let ~100 more PUTs through to be
    # refused at the start of a run (1,380/s against a Space taking 300/s).
    congestion_run: int = 4
    # The admitted rate is measured over this trailing span, always divided by all of it:
    # a first burst that fills a Space's window in 0.1 s must not read as 2,000/s.
    measure_window_s: float = 1.0
    # Where the Space's taken rate is measured, the cubic's plateau is set this far below
    # it: at the very limit a sliding window refuses every send that comes early, so a
    # plateau at it kept ~1 % of PUTs refused between congestion events.
    took_margin: float = 0.97
    # Waits end on a shared tick about this many slots long (see `wake_time`), within
    # these bounds: at 200 PUT/s, 16 slots are 80 ms.
    tick_slots: float = 16.0
    tick_min_s: float = 0.001
    tick_max_s: float = 0.1


def wake_time(slot: float, rate: float, adapt: Adaptation) -> float:
    """When a writer waiting for `slot` wakes (pure): the first tick at or after it,
    ticks being `tick_slots` slots long. Writers whose slots share a tick wake in one
    pass of the event loop, send together, and get their answers together, so a paced
    run pays its wake-ups, syscalls and journal sync once per tick, not once per PUT
    (at 200 PUT/s they had cost 1.5 x the CPU per update of an unpaced run). Never
    before the slot: the pace is kept, each send late by less than a tick."""
    tick = tick_length(rate, adapt)
    return math.ceil(slot / tick) * tick


def tick_length(rate: float, adapt: Adaptation) -> float:
    """Seconds between the ticks writers wake on at `rate` per second (pure)."""
    return min(adapt.tick_max_s, max(adapt.tick_min_s, adapt.tick_slots / rate))


def cubic_rate(elapsed: float, last_max: float, adapt: Adaptation,
               beta: float | None = None) -> float:
    """The rate `elapsed` seconds after a throttle at `last_max` (pure): beta·last_max at
    the throttle (`adapt.beta` unless the cut was another), back to last_max after K
    seconds, then probing above it."""
    cut = adapt.beta if beta is None else beta
    k: float = ((last_max * (1 - cut)) / adapt.scale) ** (1 / 3)
    return max(adapt.min_rate, adapt.scale * (elapsed - k) ** 3 + last_max)


def admitted_rate(sent: int, refused: int, adapt: Adaptation) -> float:
    """PUTs per second the Space let through in the measurement window (pure)."""
    return max(0, sent - refused) / adapt.measure_window_s


def congested(sent: int, refused: int, adapt: Adaptation, run: int = 0) -> bool:
    """Do the last second's refusals, or the last `run` answers all being refusals, say
    the Space is at its limit (pure)?"""
    if run >= adapt.congestion_run:
        return True
    return refused >= adapt.congestion_min and refused >= adapt.congestion_fraction * sent


def decrease_factor(sent: int, refused: int, adapt: Adaptation, *,
                    plateau_known: bool) -> float:
    """How far a congestion event cuts the rate (pure). Before any plateau is known, or
    when the last second's refused share reached `congestion_fraction`, the rate was
    well above the Space's: `beta`. A congestion found only by a run of refusals, with
    the plateau already measured, is the marginal kind that probing near the limit
    meets: `marginal_beta`, whose shorter climb back keeps the mean rate near the
    plateau."""
    if plateau_known and refused < adapt.congestion_fraction * sent:
        return adapt.marginal_beta
    return adapt.beta


def filled_at_once(first_took_at: float | None, now: float, adapt: Adaptation) -> bool:
    """Did the Space refuse within one measurement window of the first PUT it took (pure)?
    Then all it took is still counted against it, none frees before the first is a window
    old, and sending before its Retry-After only collects refusals. A window filled over a
    longer climb (at a 150 ms round trip, auto takes 1.5 s to reach 256 in flight) frees
    as it filled: waiting a whole Retry-After there idles the Space for a second."""
    return first_took_at is None or now - first_took_at < adapt.measure_window_s


def _forget_before(times: deque[float], horizon: float) -> None:
    """Drop the times at or before `horizon` from the front of a time-ordered deque."""
    while times and times[0] <= horizon:
        times.popleft()


@dataclass(eq=False, slots=True)
class RateLimiter:
    """Paces acquisitions to `rate` per second, never above `limit`."""

    limit: float
    _: KW_ONLY
    adapt: Adaptation = Adaptation()
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    rate: float = field(init=False)
    acquired: int = field(default=0, init=False)
    decreases: int = field(default=0, init=False)
    _next_slot: float = field(init=False)
    _last_max: float | None = field(default=None, init=False)
    # The cut of the last decrease (see `decrease_factor`), for the climb back.
    _beta: float = field(init=False)
    _throttled_at: float = field(default=-1e18, init=False)
    # Slots a cut took back whose writers have not woken yet (see `_void_future_slots`).
    _voided: set[float] = field(default_factory=set, init=False)
    _started: float = field(init=False)
    # Slot times of recent sends and times of recent 429s, for the admitted rate.
    _sent: deque[float] = field(default_factory=deque, init=False)
    _refused: deque[float] = field(default_factory=deque, init=False)
    # Times of recent PUTs the Space took (see `took`), and refusals since the last one.
    _took: deque[float] = field(default_factory=deque, init=False)
    _told_took: bool = field(default=False, init=False)
    _first_took_at: float | None = field(default=None, init=False)
    _refused_run: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.rate = self.limit
        self._beta = self.adapt.beta
        self._next_slot = self.clock()
        self._started = self.clock()

    async def acquire(self) -> None:
        await self.wait_until(self.reserve())

    async def wait_until(self, slot: float) -> None:
        """Sleep until a reserved slot's tick (at once if the slot has passed). A slot
        that a congestion cut took back (see `_void_future_slots`) is replaced by a new
        one at the new pace, and waited for in turn."""
        voided = self._voided
        while True:
            if slot in voided:
                voided.discard(slot)
                slot = self.reserve()
            now = self.clock()
            if slot <= now:
                return
            await self.sleep(wake_time(slot, self.rate, self.adapt) - now)
            if slot not in voided:
                return

    def due(self, slot: float) -> bool:
        """Has a reserved slot come (and was it not taken back)? Then `wait_until` would
        return at once: a caller can skip arranging to be woken."""
        return slot not in self._voided and slot <= self.clock()

    @property
    def batch(self) -> float:
        """Slots that come due together, on one tick: the writers needed in flight to
        fill a tick, beyond those the round trips keep busy (see worker.concurrency)."""
        return self.rate * tick_length(self.rate, self.adapt)

    def reserve(self) -> float:
        """Take the next free slot and return its time, without waiting for it: a caller
        can prepare its write (and its journal sync) while the slot approaches."""
        now = self.clock()
        self._recover(now)
        # Allow no burst above the rate: an idle limiter restarts at `now`.
        slot = max(self._next_slot, now)
        self._next_slot = slot + 1.0 / self.rate
        self.acquired += 1
        sent = self._sent
        sent.append(slot)
        _forget_before(sent, now - self.adapt.measure_window_s)
        return slot

    def took(self) -> None:
        """The Space took a PUT. What it took over the last second is the rate it admits:
        exact where it counts a sliding window, where sends less refusals also counts the
        PUTs still in flight, whose refusals have not come back yet."""
        now = self.clock()
        self._told_took = True
        if self._first_took_at is None:
            self._first_took_at = now
        self._refused_run = 0
        took = self._took
        took.append(now)
        _forget_before(took, now - self.adapt.measure_window_s)

    def throttled(self, retry_after_s: float | None = None) -> None:
        """The Space answered 429 (saying when to come back, or not): slow down, once
        per congestion event."""
        now = self.clock()
        self._refused.append(now)
        self._refused_run += 1
        if now - self._throttled_at < self.adapt.decrease_cooldown_s:
            return
        self._forget(now)
        sent = sum(1 for slot in self._sent if slot <= now)
        refused = len(self._refused)
        # A run of refusals says something only where the answers between are told.
        run = self._refused_run if self._told_took else 0
        if not congested(sent, refused, self.adapt, run):
            return
        self._void_future_slots(now)
        if (self._last_max is None and retry_after_s
                and filled_at_once(self._first_took_at, now, self.adapt)):
            # The first congestion is the overshoot of a start at the configured limit:
            # the Space's window is full, and it refuses every PUT until it frees, which
            # is what its Retry-After says. Waiting that out once, here, spares the
            # refusals of the PUTs that would go meanwhile.
            self._next_slot = max(self._next_slot, now + retry_after_s)
        known = self._last_max is not None
        self._throttled_at = now
        admitted = self._admitted(now)
        self._last_max = min(self.rate, admitted * (self.adapt.took_margin
                                                    if self._told_took else 1.0))
        self._beta = decrease_factor(sent, refused, self.adapt, plateau_known=known)
        self.rate = max(self.adapt.min_rate, self._last_max * self._beta)
        self.decreases += 1

    def _void_future_slots(self, now: float) -> None:
        """At a congestion cut, take back the slots handed out for later than `now`: they
        were spaced at the old pace, and sent as they stand they go into the window that
        is refusing now. At 50 ms and R = 300 (bench, 5 runs each), a first cut with up
        to 256 writers queued at 1,380/s was followed by 230 to 250 refusals in 3 runs of
        5, 5 to 124 in the others; with the slots taken back, 16 to 155 in all 5, and
        the run's refusals fell from 2.8 to 2.0 % on average. Their writers take new
        slots when they wake (`wait_until`), behind those taken since."""
        sent = self._sent
        while sent and sent[-1] > now:
            self._voided.add(sent.pop())
            self.acquired -= 1
        self._next_slot = now

    def _forget(self, now: float) -> None:
        horizon = now - self.adapt.measure_window_s
        for times in (self._sent, self._refused, self._took):
            _forget_before(times, horizon)

    def _admitted(self, now: float) -> float:
        self._forget(now)
        if self._told_took:
            return len(self._took) / self.adapt.measure_window_s
        # Slots handed out but not yet reached have not been sent.
        sent = sum(1 for slot in self._sent if slot <= now)
        return admitted_rate(sent, len(self._refused), self.adapt)

    def _recover(self, now: float) -> None:
        if self._last_max is None or self.rate >= self.limit:
            return
        grown = cubic_rate(now - self._throttled_at, self._last_max, self.adapt,
                           self._beta)
        self.rate = min(self.limit, max(self.rate, grown))

    def effective_rate(self) -> float:
        """Acquisitions per second since the limiter was made."""
        return self.acquired / max(self.clock() - self._started, 1e-9)
