"""The rate limiter's arithmetic and pacing, with an injected clock and sleep: no timing."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.concurrency import Tuning, pace_cap
from worker.run.limiter import (
    Adaptation,
    RateLimiter,
    admitted_rate,
    congested,
    cubic_rate,
    decrease_factor,
    filled_at_once,
    wake_time,
)

ADAPT = Adaptation()


class FakeTime:
    """A clock that only moves when told, and a sleep that records and advances it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make(limit: float = 100.0, adapt: Adaptation = ADAPT) -> tuple[RateLimiter, FakeTime]:
    t = FakeTime()
    return RateLimiter(limit, adapt=adapt, clock=t.clock, sleep=t.sleep), t


def k_of(last_max: float, adapt: Adaptation = ADAPT) -> float:
    return ((last_max * (1 - adapt.beta)) / adapt.scale) ** (1 / 3)


def test_cubic_rate_starts_at_beta_times_the_throttled_rate() -> None:
    assert cubic_rate(0.0, 200.0, ADAPT) == pytest.approx(200.0 * ADAPT.beta)


def test_cubic_rate_is_back_at_the_throttled_rate_after_k_seconds() -> None:
    assert cubic_rate(k_of(200.0), 200.0, ADAPT) == pytest.approx(200.0)


@given(st.floats(1.0, 5000.0), st.floats(0.0, 30.0), st.floats(0.0, 30.0))
def test_cubic_rate_never_falls_as_time_passes(last_max: float, a: float, b: float) -> None:
    early, late = sorted((a, b))
    assert cubic_rate(early, last_max, ADAPT) <= cubic_rate(late, last_max, ADAPT) + 1e-9


@given(st.floats(0.0, 1.0), st.floats(1.0, 5000.0))
def test_cubic_rate_never_drops_below_the_floor(elapsed: float, last_max: float) -> None:
    assert cubic_rate(elapsed, last_max, ADAPT) >= ADAPT.min_rate


@pytest.mark.parametrize(
    ("sent", "refused", "expected"),
    [(200, 0, 200.0), (230, 30, 200.0), (10, 40, 0.0), (0, 0, 0.0)],
)
def test_admitted_rate_is_sends_less_refusals_over_the_whole_window(
    sent: int, refused: int, expected: float
) -> None:
    assert admitted_rate(sent, refused, ADAPT) == expected


@pytest.mark.anyio
async def test_consumers_arriving_together_get_slots_one_interval_apart() -> None:
    limiter, t = make(limit=100.0)
    slots = [limiter.reserve() for _ in range(5)]
    # The first is now; each later one is one more 1/rate interval away.
    assert [s - t.now for s in slots] == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    for slot in slots:
        await limiter.wait_until(slot)
    # Each waits to its slot's tick: never before the slot, less than a tick after it.
    tick = min(ADAPT.tick_max_s, ADAPT.tick_slots / 100.0)
    for slept, slot in zip(t.sleeps, slots[1:], strict=True):
        assert slot - t.now <= slept < slot - t.now + tick


@given(st.floats(0.0, 1e6), st.floats(1.0, 1e6))
def test_a_wake_is_never_before_its_slot_nor_a_tick_after_it(slot: float, rate: float) -> None:
    tick = min(ADAPT.tick_max_s, max(ADAPT.tick_min_s, ADAPT.tick_slots / rate))
    woken = wake_time(slot, rate, ADAPT)
    assert slot <= woken < slot + tick + 1e-9


def test_slots_within_one_tick_wake_together_and_the_next_tick_later() -> None:
    # 200 PUT/s: ticks of `tick_slots` slots. Waking together is what lets a paced run
    # share its wake-ups and syncs.
    rate, n = 200.0, int(ADAPT.tick_slots)
    assert n / rate <= ADAPT.tick_max_s  # the tick is n slots long at this rate
    slots = [1000.0 + (i + 0.5) / rate for i in range(2 * n)]
    wakes = [wake_time(s, rate, ADAPT) for s in slots]
    assert len(set(wakes)) == 2
    assert wakes[0] == wakes[n - 1] < wakes[n] == wakes[-1]
    assert wakes[n] - wakes[0] == pytest.approx(n / rate)


def test_a_tick_releases_batch_slots_and_the_controller_makes_room_for_them() -> None:
    limiter, _t = make(limit=200.0)
    assert limiter.batch == pytest.approx(ADAPT.tick_slots)
    # Without that room a tick's slots would go unused: the cap grows by the batch.
    assert pace_cap(200.0, 0.1, Tuning(), limiter.batch) == pytest.approx(
        pace_cap(200.0, 0.1, Tuning()) + ADAPT.tick_slots)


@pytest.mark.anyio
async def test_an_idle_limiter_allows_no_burst_of_saved_slots() -> None:
    limiter, t = make(limit=100.0)
    await limiter.acquire()
    t.now += 10.0  # idle: ten seconds of unused slots must not be spent at once
    first, second = limiter.reserve(), limiter.reserve()
    assert (first - t.now, second - t.now) == pytest.approx((0.0, 0.01))


@pytest.mark.anyio
async def test_a_throttle_cuts_the_rate_to_beta_times_the_admitted_rate() -> None:
    limiter, t = make(limit=1380.0)
    for _ in range(220):  # 220 sent in 0.16 s to a Space that takes 200 a second
        await limiter.acquire()
    t.now += 0.16
    for _ in range(11):  # the 11th refusal is 5 % of what was sent: congestion
        limiter.throttled()
    # Measured over the whole window, not the 0.16 s it took: 209/s, not 1,300/s.
    assert limiter.rate == pytest.approx((220 - 11) * ADAPT.beta)
    assert limiter.decreases == 1


@pytest.mark.parametrize(
    ("sent", "refused", "expected"),
    [(256, 5, False), (256, 13, True), (5, 1, False), (5, 2, False), (40, 3, True),
     (0, 3, True)],
)
def test_only_a_real_share_of_refusals_counts_as_congestion(
    sent: int, refused: int, expected: bool
) -> None:
    assert congested(sent, refused, ADAPT) is expected


@pytest.mark.anyio
async def test_a_limiter_told_what_the_space_took_cuts_from_that() -> None:
    limiter, t = make(limit=1380.0)
    for _ in range(220):  # 220 sent in 0.16 s; the Space took 200, the rest in flight
        await limiter.acquire()
    for _ in range(200):
        limiter.took()
    t.now += 0.16
    for _ in range(4):  # four refusals in a row: its window is full
        limiter.throttled()
    # What it took (200/s), not sends less refusals (216/s): the PUTs in flight when the
    # first refusals come back are refused too. The plateau sits a margin below it.
    assert limiter.rate == pytest.approx(200 * ADAPT.took_margin * ADAPT.beta)
    assert limiter.decreases == 1


async def send_and_take(limiter: RateLimiter, n: int) -> None:
    """`n` PUTs sent, each taken by the Space."""
    for _ in range(n):
        await limiter.acquire()
        limiter.took()


@pytest.mark.anyio
async def test_refusals_between_answers_the_space_took_are_not_a_run() -> None:
    limiter, t = make(limit=1380.0)
    await send_and_take(limiter, 400)
    t.now += 0.5
    for _ in range(6):  # 1.5 % stray 429s, each after a PUT that was taken
        limiter.throttled()
        limiter.took()
    assert limiter.decreases == 0
    for _ in range(ADAPT.congestion_run):
        limiter.throttled()
    assert limiter.decreases == 1


@pytest.mark.anyio
async def test_the_first_congestion_waits_out_the_retry_after_and_later_ones_do_not() -> None:
    limiter, t = make(limit=1380.0)
    await send_and_take(limiter, 300)
    for _ in range(ADAPT.congestion_run):
        limiter.throttled(1.0)
    # The Space's window is full for the second it said: no slot before it frees.
    assert limiter.reserve() >= t.now + 1.0
    t.now += 5.0
    for _ in range(300):
        limiter.took()
    for _ in range(ADAPT.congestion_run):
        limiter.throttled(1.0)
    assert limiter.decreases == 2
    assert limiter.reserve() < t.now + 0.1  # a later one only slows the pace


@pytest.mark.anyio
async def test_a_window_filled_over_a_longer_climb_is_not_waited_out() -> None:
    """The Space first took a PUT 1.5 s before it refused: what it took first frees as the
    refusals come, so the pace only drops, with no second-long pause."""
    limiter, t = make(limit=1380.0)
    await send_and_take(limiter, 50)
    t.now += 1.5
    await send_and_take(limiter, 250)
    for _ in range(ADAPT.congestion_run):
        limiter.throttled(1.0)
    assert limiter.decreases == 1
    # Only the slots already handed out (0.2 s of them) come first, not the Retry-After.
    assert limiter.reserve() < t.now + 0.5


def test_filled_at_once_is_within_one_measurement_window_of_the_first_put_taken() -> None:
    assert filled_at_once(None, 100.0, ADAPT)
    assert filled_at_once(99.5, 100.0, ADAPT)
    assert not filled_at_once(100.0 - ADAPT.measure_window_s, 100.0, ADAPT)


@pytest.mark.anyio
async def test_stray_429s_leave_the_rate_alone() -> None:
    limiter, t = make(limit=1380.0)
    for _ in range(250):
        await limiter.acquire()
    t.now += 1.0 - 1e-6
    for _ in range(5):  # 2 % of what was sent: faults, not a limit
        limiter.throttled()
        t.now += 0.001
    assert limiter.rate == 1380.0
    assert limiter.decreases == 0


@pytest.mark.anyio
async def test_the_decrease_never_starts_above_the_current_rate() -> None:
    limiter, t = make(limit=50.0)
    for _ in range(50):
        await limiter.acquire()
    t.now += 2.0
    for _ in range(3):  # refusals when nothing was sent lately: all refused, congested
        limiter.throttled()
        t.now += 0.001
    assert limiter.rate <= 50.0 * ADAPT.beta


@pytest.mark.anyio
async def test_a_burst_of_429s_is_one_congestion_event() -> None:
    limiter, t = make(limit=100.0)
    for _ in range(100):
        await limiter.acquire()
    t.now += 0.9
    for _ in range(10):
        limiter.throttled()
        t.now += 0.001
    assert limiter.decreases == 1
    t.now += ADAPT.decrease_cooldown_s
    for _ in range(5):
        limiter.throttled()
    assert limiter.decreases == 2


@pytest.mark.anyio
async def test_the_rate_recovers_along_the_cubic_and_stops_at_the_limit() -> None:
    limiter, t = make(limit=300.0)
    for _ in range(220):
        await limiter.acquire()
    t.now += 1.0 - 1e-6  # all the sends are inside the trailing second
    for _ in range(11):  # congestion at 5 %: 209 admitted
        limiter.throttled()
    assert limiter.rate == pytest.approx(209.0 * ADAPT.beta)
    t.now += k_of(209.0)
    await limiter.acquire()
    assert limiter.rate == pytest.approx(209.0)
    t.now += 60.0
    await limiter.acquire()
    assert limiter.rate == 300.0


@pytest.mark.anyio
async def test_a_slower_rate_spaces_the_next_slots_further_apart() -> None:
    limiter, t = make(limit=1000.0)
    for _ in range(100):
        await limiter.acquire()
    t.now += 1.0 - 1e-6
    for _ in range(5):  # 5 % of 100: congestion
        limiter.throttled()
    slots = [limiter.reserve() for _ in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert gaps == pytest.approx([1 / limiter.rate] * 3)
    assert limiter.rate == pytest.approx(95 * ADAPT.beta)  # 100 sent, 5 refused


@pytest.mark.parametrize(
    ("sent", "refused", "plateau_known", "expected"),
    [(1300, 8, True, ADAPT.marginal_beta),   # a run of refusals near a known plateau
     (1300, 65, True, ADAPT.beta),           # 5 % refused: well above the Space
     (1300, 8, False, ADAPT.beta),           # the first congestion: the start overshoot
     (0, 4, True, ADAPT.beta)],
)
def test_a_marginal_congestion_near_a_known_plateau_is_cut_less(
    sent: int, refused: int, plateau_known: bool, expected: float
) -> None:
    assert decrease_factor(sent, refused, ADAPT, plateau_known=plateau_known) == expected


def test_a_milder_cut_climbs_back_to_the_plateau_sooner() -> None:
    mild = ADAPT.marginal_beta
    k_mild = ((1300.0 * (1 - mild)) / ADAPT.scale) ** (1 / 3)
    assert cubic_rate(0.0, 1300.0, ADAPT, mild) == pytest.approx(1300.0 * mild)
    assert cubic_rate(k_mild, 1300.0, ADAPT, mild) == pytest.approx(1300.0)
    assert k_mild < k_of(1300.0)


async def congest_by_a_run(limiter: RateLimiter, t: FakeTime, taken: int) -> None:
    """A second of `taken` PUTs the Space took, then a run of refusals: congestion with
    a refused share far below `congestion_fraction`."""
    await send_and_take(limiter, taken)
    t.now += 1.0 - 1e-6
    for _ in range(ADAPT.congestion_run):
        limiter.throttled()
    t.now += 1e-6


@pytest.mark.anyio
async def test_the_second_run_of_refusals_cuts_by_the_marginal_beta_and_recovers_by_it() -> None:
    limiter, t = make(limit=1380.0)
    await congest_by_a_run(limiter, t, 1000)
    plateau = 1000 * ADAPT.took_margin
    assert limiter.rate == pytest.approx(plateau * ADAPT.beta)  # the first: a full cut
    t.now += 60.0  # long enough to be back at the limit
    await congest_by_a_run(limiter, t, 1300)
    plateau = 1300 * ADAPT.took_margin
    assert limiter.decreases == 2
    assert limiter.rate == pytest.approx(plateau * ADAPT.marginal_beta)
    # Back at the plateau after the milder cut's K, well before the full cut's.
    t.now += ((plateau * (1 - ADAPT.marginal_beta)) / ADAPT.scale) ** (1 / 3)
    await limiter.acquire()
    assert limiter.rate == pytest.approx(plateau)


def test_effective_rate_counts_acquisitions_over_the_elapsed_time() -> None:
    limiter, t = make(limit=100.0)
    limiter.acquired = 50
    t.now += 2.0
    assert math.isclose(limiter.effective_rate(), 25.0)


@pytest.mark.anyio
async def test_a_cut_voids_the_slots_handed_out_for_later_and_their_writers_take_new_ones() -> None:
    """Writers queued for slots at the old pace would send into the window that is
    refusing: at the cut their slots are taken back, and each takes a new one at the new
    pace when it wakes, in the order they were queued."""
    limiter, t = make(limit=1380.0)
    await send_and_take(limiter, 300)
    t.now += 0.3  # all 300 went out
    queued = [limiter.reserve() for _ in range(100)]  # 1/1,380 s apart, from now
    before = limiter.acquired

    async def sleep(seconds: float) -> None:
        t.now += seconds

    limiter.sleep = sleep
    await limiter.wait_until(queued[0])  # due now: sent
    t.now += 0.01
    for _ in range(ADAPT.congestion_run):  # the Space refuses a run of PUTs: a cut
        limiter.throttled()
    cut_at = t.now
    assert limiter.decreases == 1
    # The slots after the cut are void: not sent, and not counted as sent.
    voided = sum(1 for slot in queued if slot > cut_at)
    assert voided == 86
    assert limiter.acquired == before - voided
    sent_at = []
    for slot in queued[50:54]:  # writers that slept through the cut wake in turn
        await limiter.wait_until(slot)
        sent_at.append(t.now)
    assert limiter.acquired == before - voided + 4
    # They went one interval of the new pace apart, from the cut: not 1/1,380 s apart.
    interval = 1 / limiter.rate
    assert interval > 4 / 1380
    assert all(at >= cut_at + k * interval - 1e-9 for k, at in enumerate(sent_at))


@pytest.mark.anyio
async def test_a_slot_that_came_before_the_cut_is_kept() -> None:
    """A writer whose slot was due before the cut, still waking on its tick, sends on it:
    it takes no second slot."""
    limiter, t = make(limit=1380.0)
    await send_and_take(limiter, 300)
    t.now += 0.3
    slot = limiter.reserve() + 1 / 1380
    limiter.reserve()
    t.now = slot - 1e-4  # its tick is still to come

    async def sleep(seconds: float) -> None:
        t.now = slot + 1e-4  # the cut comes after the slot, before the tick
        for _ in range(ADAPT.congestion_run):
            limiter.throttled()
        t.now = slot + seconds

    limiter.sleep = sleep
    acquired = limiter.acquired
    await limiter.wait_until(slot)
    assert limiter.decreases == 1
    assert limiter.acquired == acquired
    assert t.now > slot  # it slept once, to its tick, and went


@pytest.mark.anyio
async def test_due_says_whether_a_wait_would_return_at_once() -> None:
    """A writer whose slot is due skips arranging a wait (consumer._ready_to_write): only
    a slot that has come and was not taken back by a cut is due."""
    limiter, t = make(limit=100.0)
    first, second = limiter.reserve(), limiter.reserve()
    assert limiter.due(first)
    assert not limiter.due(second)  # 10 ms from now
    t.now += 0.01
    assert limiter.due(second)
    await send_and_take(limiter, 300)
    later = limiter.reserve()
    assert later > t.now
    for _ in range(ADAPT.congestion_run):  # a cut before it comes takes it back
        limiter.throttled()
    assert limiter.decreases == 1
    t.now = later  # its time comes, but it is no longer this writer's
    assert not limiter.due(later)
