"""How many conferences to keep in flight (`concurrency: auto`): a controller that finds
the Space's knee from what it measures, one round at a time.

The anchors, and what was taken from each:
- Netflix concurrency-limits' Vegas: the queue a window of latencies implies,
  `limit · (1 - rtt_noload / rtt)`, measured against a no-load RTT that is re-probed
  from time to time. Its Gradient2 compares against a long-term *average* RTT instead,
  which drifts up under a standing queue until the queue looks normal: not taken.
- Envoy's adaptive concurrency filter: the no-load RTT is an aggregate (a median) of a
  window measured with concurrency pinned low, re-measured periodically; each window's
  gradient `(1 + tolerance)·min_rtt / rtt`, clamped to [0.5, 1], scales the limit, plus
  a little headroom.
- TCP BBR: a bottleneck rate times the minimum round trip is all the work that can be in
  flight usefully. Here the client's own write pace (the rate limiter's, which follows
  the Space's 429s) is such a bottleneck: more conferences than `pace x hold time` only
  wait for pacing slots, so that product (with a margin) caps the limit.

The RTTs are the Space's: each request's round trip, with no pacing wait and no retry
sleep in it, so neither a slow pace nor a Retry-After reads as a queue at the Space.
Each decision (`next_state`) is a pure function of the last round's figures.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

# Where `auto` starts: the old fixed default, safe against any Space.
INITIAL = 16


class Phase(Enum):
    STARTUP = "startup"  # doubling each round until the RTT shows a queue
    STEADY = "steady"  # gradient steps around the knee
    PROBE = "probe"  # one round pinned low to re-measure the no-load RTT


@dataclass(frozen=True, slots=True)
class Tuning:
    """The controller's constants; each is explained where it is used."""

    initial: int = INITIAL
    maximum: int = 512
    # RTT above the no-load RTT by this share is a queue (Envoy's buffer; its default is
    # 25 %). 0.1 keeps a queueing Space's median latency near 1.2 x its unloaded one.
    tolerance: float = 0.1
    # And this much in absolute terms: a few milliseconds of growth are the client's own
    # scheduling, not a queue at the Space worth backing off for. Without it, a Space a
    # millisecond away (the sandbox at L = 0) read each event-loop hiccup as a queue and
    # settled at 6 in flight, paying 3 x the floor's CPU per update for lack of batching.
    tolerance_s: float = 0.005
    # Below this share of RTT growth, a round in startup doubles the limit.
    startup_tolerance: float = 0.05
    # Conferences allowed to queue beyond the gradient's target (Gradient2's queueSize 4).
    headroom: float = 3.0
    # Growth per round, in steady state, while the RTT shows no queue and fewer are in
    # flight than the write pace can use (see `pace_need`): +3 a round took 30 s to go
    # from 130 to the 430 that 1,380/s needs at a 150 ms round trip.
    below_pace_growth: float = 1.25
    # Work in flight beyond pace x hold time: a margin so pacing slots never go unused
    # when hold times vary, and the read-to-write wait it adds stays under half a hold time.
    pace_gain: float = 1.5
    # A round ends after this many finished conferences (and at least one per slot).
    min_round: int = 8
    # Re-measure the no-load RTT this often, at a quarter of the limit, for one round.
    probe_every_s: float = 30.0
    probe_share: float = 0.25


@dataclass(frozen=True, slots=True)
class Round:
    """What one round measured."""

    rtt_s: float  # median request round trip at the Space
    hold_s: float  # median time a conference held its slot, less pacing and retry waits
    busiest: int  # most conferences in flight at once during the round
    now: float


@dataclass(frozen=True, slots=True)
class ControlState:
    limit: float
    phase: Phase = Phase.STARTUP
    min_rtt_s: float | None = None
    probed_at: float = 0.0
    # The limit to return to after a probe round.
    resume: float = 0.0


def pace_cap(pace: float | None, hold_s: float, tuning: Tuning, batch: float = 0.0) -> float:
    """The most conferences worth having in flight at a write pace of `pace` per second
    (BBR's bandwidth-delay product, with margin): more would only queue for slots. The
    limiter releases `batch` slots at once, on one tick, so that many more are needed
    waiting for it, or a tick's slots go unused."""
    if pace is None or not math.isfinite(pace):
        return float(tuning.maximum)
    return tuning.pace_gain * pace * hold_s + batch + tuning.headroom


def pace_need(pace: float | None, hold_s: float, batch: float = 0.0) -> float:
    """The conferences the write pace keeps busy with none to spare (Little's law, plus
    the slots one tick releases together): below it, pacing slots go unused (pure). Zero
    when nothing paces the writes."""
    if pace is None or not math.isfinite(pace):
        return 0.0
    return pace * hold_s + batch


def _clamp(limit: float, tuning: Tuning) -> float:
    return min(float(tuning.maximum), max(1.0, limit))


def next_state(state: ControlState, measured: Round, pace: float | None,
               tuning: Tuning, batch: float = 0.0) -> ControlState:
    """The limit for the next round, from the last round's RTT and hold time (pure)."""
    cap = pace_cap(pace, measured.hold_s, tuning, batch)
    if state.phase is Phase.PROBE:
        # A probe round is the no-load RTT: Envoy's minRTT window.
        return ControlState(_clamp(min(state.resume, cap), tuning), Phase.STEADY,
                            measured.rtt_s, measured.now, 0.0)
    if state.min_rtt_s is None:
        # The very first round, at the initial limit, is the no-load RTT too; and the
        # first step of startup, as every later flat round is (a queue at the initial
        # limit shows in the next round, against this one).
        app_limited = measured.busiest * 2 < state.limit
        limit = state.limit if app_limited else state.limit * 2
        phase = Phase.STARTUP
        if limit > cap:
            limit, phase = cap, Phase.STEADY
        return ControlState(_clamp(limit, tuning), phase, measured.rtt_s, measured.now, 0.0)
    min_rtt = min(state.min_rtt_s, measured.rtt_s)
    expected = (1 + tuning.tolerance) * min_rtt + tuning.tolerance_s
    if measured.now - state.probed_at >= tuning.probe_every_s and state.limit > 4:
        if measured.rtt_s > expected:
            return ControlState(_clamp(state.limit * tuning.probe_share, tuning),
                                Phase.PROBE, min_rtt, state.probed_at, resume=state.limit)
        # Round trips at the no-load RTT say it still holds (one that fell is taken by
        # the min above): a probe could only confirm it, at a quarter of the limit for a
        # round (at 150 ms and 512 in flight, ~1,000 conferences' worth every 30 s).
        state = replace(state, probed_at=measured.now)
    # Vegas's rule against growth nobody uses: a producer that cannot fill the slots
    # says nothing about the Space.
    app_limited = measured.busiest * 2 < state.limit
    flat = measured.rtt_s <= (1 + tuning.startup_tolerance) * min_rtt + tuning.tolerance_s / 2
    phase = state.phase
    if phase is Phase.STARTUP and flat:
        limit = state.limit if app_limited else state.limit * 2
    else:
        phase = Phase.STEADY
        gradient = min(1.0, max(0.5, expected / measured.rtt_s))
        # Round trips alone never take it below where it started (the old fixed default):
        # on a busy client its own scheduling inflates them, and fewer conferences in
        # flight then only cost more CPU per update. A slower pace (429s) still may.
        limit = max(state.limit * gradient + tuning.headroom, float(tuning.initial))
        if gradient >= 1.0 and state.limit < pace_need(pace, measured.hold_s, batch):
            # No queue at the Space, and write slots going unused: the headroom's +3 is
            # a probe for a knee, far too slow to fill a pace hundreds of conferences
            # deep (the cap below still bounds it).
            limit = max(limit, state.limit * tuning.below_pace_growth)
        if app_limited:
            limit = min(limit, state.limit)
    if limit > cap:
        limit, phase = cap, Phase.STEADY
    return replace(state, limit=_clamp(limit, tuning), phase=phase, min_rtt_s=min_rtt)


def throttled_state(state: ControlState, pace: float | None, hold_s: float | None,
                    tuning: Tuning, batch: float = 0.0) -> ControlState:
    """The rate limiter judged the Space congested (its 429s): stop growing, and hold no
    more than the new, lower pace can use (pure)."""
    if hold_s is None:
        return replace(state, phase=Phase.STEADY)
    limit = min(state.limit, pace_cap(pace, hold_s, tuning, batch))
    return replace(state, limit=_clamp(limit, tuning), phase=Phase.STEADY)


class AdaptiveConcurrency:
    """Collects each request's RTT and each conference's hold time, and at each round's
    end moves the limit by `next_state`. No I/O; `pace` reads the limiter's rate."""

    def __init__(self, tuning: Tuning = Tuning(), *,
                 pace: Callable[[], float | None] = lambda: None,
                 batch: Callable[[], float] = lambda: 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._tuning = tuning
        self._pace = pace
        self._batch = batch
        self._clock = clock
        self._state = ControlState(float(min(tuning.initial, tuning.maximum)),
                                   probed_at=clock())
        self.target = int(self._state.limit)
        # Conferences sleeping out a Retry-After or a backoff: they hold no request at the
        # Space, so their places are lent to others meanwhile (2 % of conferences waiting
        # 1 s each would otherwise idle a fifth of the places at a 100 ms round trip).
        self.resting = 0
        self.in_flight = 0
        self._busiest = 0
        self._rtts: list[float] = []
        self._holds: list[float] = []
        self._last_hold: float | None = None
        # The limit each round ran at, for the summary's settled value and range.
        self.history: list[int] = [self.target]

    @property
    def limit(self) -> int:
        """Conferences that may be in flight now: the target, plus those resting."""
        return self.target + self.resting

    @property
    def state(self) -> ControlState:
        return self._state

    def started(self) -> None:
        self.in_flight += 1
        self._busiest = max(self._busiest, self.in_flight)

    def request_done(self, rtt_s: float) -> None:
        self._rtts.append(rtt_s)

    def finished(self, hold_s: float | None) -> None:
        """One conference is done; `hold_s` is None when it sent no request."""
        self.in_flight -= 1
        if self._state.phase is Phase.PROBE and self.in_flight >= self.target:
            # Still draining to the probe's limit: these round trips queued behind the
            # old one and would read as a slower Space.
            self._rtts.clear()
            self._holds.clear()
            return
        if hold_s is not None:
            self._holds.append(hold_s)
        if len(self._holds) >= max(self._tuning.min_round, self.target) and self._rtts:
            self._end_round()

    def throttled(self) -> None:
        self._state = throttled_state(self._state, self._pace(), self._last_hold,
                                      self._tuning, self._batch())
        self._set_limit()

    def _end_round(self) -> None:
        hold = statistics.median(self._holds)
        self._last_hold = hold
        measured = Round(statistics.median(self._rtts), hold, self._busiest, self._clock())
        self._rtts.clear()
        self._holds.clear()
        self._busiest = self.in_flight
        self._state = next_state(self._state, measured, self._pace(), self._tuning,
                                 self._batch())
        self._set_limit()
        self.history.append(self.target)

    def _set_limit(self) -> None:
        self.target = max(1, round(self._state.limit))

    def settled(self) -> tuple[int, int, int]:
        """(settled, lowest, highest): the median limit over the later half of the
        rounds, and the range over the whole run."""
        history = self.history
        return (round(statistics.median(history[len(history) // 2:])), min(history),
                max(history))
