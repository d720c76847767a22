"""The concurrency controller's decisions, as pure functions and against model Spaces
(closed loops in plain arithmetic: no loop, no socket, no timing)."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.concurrency import (
    AdaptiveConcurrency,
    ControlState,
    Phase,
    Round,
    Tuning,
    next_state,
    pace_cap,
    pace_need,
    throttled_state,
)

TUNING = Tuning()
L = 0.05


def steady(limit: float, min_rtt: float = L) -> ControlState:
    return ControlState(limit, Phase.STEADY, min_rtt, probed_at=0.0)


def test_the_first_round_is_the_no_load_rtt_and_startup_s_first_doubling() -> None:
    state = next_state(ControlState(16.0), Round(0.05, 0.1, 16, 1.0), None, TUNING)
    assert (state.limit, state.min_rtt_s, state.phase) == (32.0, 0.05, Phase.STARTUP)
    # A producer that could not fill the first round's slots gives no reason to grow.
    idle = next_state(ControlState(16.0), Round(0.05, 0.1, 7, 1.0), None, TUNING)
    assert (idle.limit, idle.min_rtt_s, idle.phase) == (16.0, 0.05, Phase.STARTUP)
    # Nor past what the write pace can use: 20 PUT/s at 0.1 s hold is worth 1.5 x 2 + 3.
    paced = next_state(ControlState(16.0), Round(0.05, 0.1, 16, 1.0), 20.0, TUNING)
    assert (paced.limit, paced.phase) == (6.0, Phase.STEADY)


def test_startup_doubles_while_the_rtt_stays_flat() -> None:
    state = ControlState(16.0, Phase.STARTUP, L)
    state = next_state(state, Round(L * 1.01, 0.1, 16, 1.0), None, TUNING)
    assert (state.limit, state.phase) == (32.0, Phase.STARTUP)


def test_a_queue_ends_startup_and_the_gradient_brings_the_limit_down() -> None:
    state = ControlState(80.0, Phase.STARTUP, L)
    state = next_state(state, Round(2 * L, 0.2, 80, 1.0), None, TUNING)
    # gradient ((1 + 0.1)·L + 5 ms) / 2L = 0.6; 80 · 0.6 + 3 headroom
    assert state.phase is Phase.STEADY
    assert state.limit == pytest.approx(80 * 0.6 + TUNING.headroom)


def test_the_gradient_never_cuts_by_more_than_half() -> None:
    state = next_state(steady(100.0), Round(10 * L, 1.0, 100, 1.0), None, TUNING)
    assert state.limit == pytest.approx(50 + TUNING.headroom)


def test_round_trips_alone_never_take_it_below_where_it_started() -> None:
    state = next_state(steady(20.0), Round(10 * L, 1.0, 20, 1.0), None, TUNING)
    assert state.limit == TUNING.initial
    # The write pace may: 20 PUT/s at 0.1 s hold time is worth 1.5 x 2 + 3 in flight.
    state = next_state(steady(20.0), Round(10 * L, 0.1, 20, 1.0), 20.0, TUNING)
    assert state.limit == pytest.approx(6.0)


def test_within_tolerance_the_limit_grows_by_the_headroom() -> None:
    state = next_state(steady(40.0), Round(1.05 * L, 0.1, 40, 1.0), None, TUNING)
    assert state.limit == pytest.approx(40 + TUNING.headroom)


def test_below_what_the_pace_can_use_a_flat_space_is_filled_a_quarter_a_round() -> None:
    """150 ms round trips at 1,380 PUT/s: 0.3 s x 1,380 = 414 conferences keep the pace
    busy. While the RTT shows no queue, each round adds a quarter, not the headroom's 3."""
    state = next_state(steady(130.0, min_rtt=0.15), Round(0.155, 0.3, 130, 1.0), 1380.0,
                       TUNING)
    assert state.limit == pytest.approx(130 * TUNING.below_pace_growth)
    # At what the pace can use, or with a queue showing, the headroom is all it adds.
    state = next_state(steady(420.0, min_rtt=0.15), Round(0.155, 0.3, 420, 1.0), 1380.0,
                       TUNING)
    assert state.limit == pytest.approx(420 + TUNING.headroom)
    queued = next_state(steady(130.0, min_rtt=0.15), Round(0.2, 0.4, 130, 1.0), 1380.0,
                        TUNING)
    assert queued.limit < 130


def test_pace_need_is_the_pace_times_the_hold_time() -> None:
    assert pace_need(1380.0, 0.3) == pytest.approx(414.0)
    assert pace_need(1380.0, 0.3, batch=16.0) == pytest.approx(430.0)
    assert pace_need(None, 0.3) == 0.0


def test_a_few_milliseconds_of_growth_near_zero_latency_are_not_a_queue() -> None:
    """A Space a millisecond away: 0.5 ms -> 3 ms is the client's own scheduling."""
    state = next_state(ControlState(16.0, Phase.STARTUP, 0.0005), Round(0.003, 0.006, 16, 1.0),
                       None, TUNING)
    assert (state.limit, state.phase) == (32.0, Phase.STARTUP)
    state = next_state(steady(64.0, min_rtt=0.0005), Round(0.004, 0.008, 64, 1.0), None,
                       TUNING)
    assert state.limit == pytest.approx(64 + TUNING.headroom)


def test_an_idle_producer_gives_no_reason_to_grow() -> None:
    state = ControlState(64.0, Phase.STARTUP, L)
    assert next_state(state, Round(L, 0.1, 20, 1.0), None, TUNING).limit == 64.0
    assert next_state(steady(64.0), Round(L, 0.1, 20, 1.0), None, TUNING).limit == 64.0


def test_the_write_pace_caps_the_limit_at_its_bandwidth_delay_product() -> None:
    # 300 PUT/s, each conference holding its place 0.1 s: 30 do the work, 1.5 x 30 + 3 cap.
    assert pace_cap(300.0, 0.1, TUNING) == pytest.approx(48.0)
    state = next_state(ControlState(256.0, Phase.STARTUP, L), Round(L, 0.1, 256, 1.0), 300.0,
                       TUNING)
    assert (state.limit, state.phase) == (pytest.approx(48.0), Phase.STEADY)


def test_a_congested_429_stops_growth_and_applies_the_new_pace_at_once() -> None:
    state = throttled_state(ControlState(200.0, Phase.STARTUP, L), 100.0, 0.1, TUNING)
    assert (state.limit, state.phase) == (pytest.approx(18.0), Phase.STEADY)
    assert throttled_state(steady(10.0), 100.0, 0.1, TUNING).limit == 10.0


def test_a_probe_pins_the_limit_low_then_resumes_with_a_fresh_no_load_rtt() -> None:
    state = steady(80.0, min_rtt=0.04)
    probe = next_state(state, Round(0.06, 0.12, 80, TUNING.probe_every_s + 1), None, TUNING)
    assert (probe.phase, probe.limit, probe.resume) == (Phase.PROBE, 20.0, 80.0)
    after = next_state(probe, Round(0.05, 0.1, 20, TUNING.probe_every_s + 2), None, TUNING)
    assert (after.phase, after.limit, after.min_rtt_s) == (Phase.STEADY, 80.0, 0.05)


def test_no_probe_while_the_round_trips_show_the_no_load_rtt_still_holds() -> None:
    # At 150 ms with 512 in flight a probe round costs ~1,000 conferences' worth; round
    # trips within tolerance of the no-load RTT say a probe would only confirm it.
    state = steady(512.0, min_rtt=0.15)
    later = TUNING.probe_every_s + 1
    kept = next_state(state, Round(0.16, 0.33, 512, later), None, TUNING)
    assert (kept.phase, kept.limit, kept.probed_at) == (Phase.STEADY, 512.0, later)
    # The next probe falls due a whole period later, not at the next round.
    again = next_state(kept, Round(0.16, 0.33, 512, later + 1), None, TUNING)
    assert again.phase is Phase.STEADY
    # Round trips above it may be a queue, or a Space whose baseline moved: re-measure.
    probe = next_state(kept, Round(0.2, 0.4, 512, later + TUNING.probe_every_s), None,
                       TUNING)
    assert (probe.phase, probe.limit, probe.resume) == (Phase.PROBE, 128.0, 512.0)


@given(st.lists(st.tuples(st.floats(0.001, 5.0), st.integers(0, 2000),
                          st.one_of(st.none(), st.floats(0.5, 5000.0))), max_size=60),
       st.integers(1, 1024))
def test_the_limit_stays_within_one_and_the_maximum(
    rounds: list[tuple[float, int, float | None]], maximum: int
) -> None:
    tuning = Tuning(maximum=maximum, initial=min(16, maximum))
    state = ControlState(float(tuning.initial))
    for at, (rtt, busiest, pace) in enumerate(rounds):
        state = next_state(state, Round(rtt, 2 * rtt, busiest, float(at)), pace, tuning)
        assert 1 <= state.limit <= maximum


def settle(space_rtt: object, pace: float | None, rounds: int = 200) -> list[int]:
    """Run the controller against a model Space: `space_rtt(limit)` is each request's
    round trip with that many conferences in flight (two requests per conference)."""
    clock = [0.0]
    controller = AdaptiveConcurrency(TUNING, pace=lambda: pace, clock=lambda: clock[0])
    for _ in range(rounds):
        limit = controller.limit
        rtt = space_rtt(limit)  # type: ignore[operator]
        for _ in range(limit):
            controller.started()
        for _ in range(limit):
            controller.request_done(rtt)
            controller.request_done(rtt)
            clock[0] += 2 * rtt / limit
            controller.finished(2 * rtt)
    return controller.history


def queueing(capacity: int) -> object:
    return lambda limit: L * max(1.0, limit / capacity)


def test_against_a_queueing_space_it_finds_the_knee_without_inflating_latency() -> None:
    history = settle(queueing(40), None)
    later = history[len(history) // 2:]
    # At least 90 % of the best throughput (40 in flight), median latency under 1.5 x L.
    assert min(later) >= 0.9 * 40
    assert statistics.median(L * max(1.0, c / 40) for c in later) <= 1.5 * L


def test_against_a_flat_space_paced_by_the_limiter_it_holds_what_the_pace_can_use() -> None:
    history = settle(lambda _limit: L, 300.0)
    settled = statistics.median(history[len(history) // 2:])
    assert 300 * 2 * L <= settled <= pace_cap(300.0, 2 * L, TUNING) + 1
    # At 150 ms and 1,380/s the product is above the default maximum: it stops there.
    history = settle(lambda _limit: 0.15, 1380.0)
    assert history[-1] == TUNING.maximum


def test_settled_reports_the_later_rounds_and_the_whole_range() -> None:
    controller = AdaptiveConcurrency(TUNING)
    controller.history = [16, 32, 64, 50, 48, 47, 48]
    assert controller.settled() == (48, 16, 64)


def test_conferences_sleeping_out_a_retry_lend_their_places() -> None:
    controller = AdaptiveConcurrency(TUNING)
    assert controller.limit == TUNING.initial
    controller.resting = 3
    assert controller.limit == TUNING.initial + 3
    assert controller.history == [TUNING.initial]  # the target itself did not move
