"""The consumers: each conference through fresh GET, decision, journal, PUT and check.

The decisions are the strategy's (worker.decide); this module only sequences the I/O,
the retries and the rate limiter around them, and turns what happened into an Outcome.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
import structlog
from anyio.abc import ObjectReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream

from worker.answers import AnswerRules, split_extra, unknown_property_message
from worker.body import describe_mismatches, echo_mismatches
from worker.constraints import body_problems
from worker.decide import Skip, Strategy, Write
from worker.errors import ApiError, NotFoundError, RetryableApiError, UnknownPropertyError
from worker.outcome import Kind, Outcome
from worker.retry import RetryPolicy, Sleep, parse_retry_after, with_retries
from worker.run.api import ASK_AGAIN, PUT_MAY_HAVE_LANDED, Conference, SpaceClient
from worker.run.limiter import RateLimiter
from worker.run.logs import bound
from worker.run.report import Reporter
from worker.run.stopping import Stop, StopReason

# At most this many unknown property names ride on an outcome (a broken answer may have
# thousands; the message still says how many there were).
_UNKNOWN_KEPT = 10


class Journal(Protocol):
    """Where pre-images go before a write (see worker.run.journal)."""

    def stage(self, conference: Mapping[str, Any], rule: str | None,
              sent: Mapping[str, Any] | None = None) -> int: ...

    async def durable(self, seq: int) -> None: ...

    async def after_write(self, conference_id: str, updated_at: str | None, *,
                          applied: bool = True) -> bool: ...


class Controller(Protocol):
    """What the updater tells the concurrency controller (see worker.concurrency)."""

    def started(self) -> None: ...

    def request_done(self, rtt_s: float) -> None: ...

    def finished(self, hold_s: float) -> None: ...

    def throttled(self) -> None: ...

    resting: int


class _Stopped(Exception):
    """A wait (a pacing slot, a retry's sleep) ended by a stop: no further request."""


class _Trace:
    """One conference's PUTs sent, and the time it spent waiting rather than being served
    (pacing slots and retry sleeps), so the controller sees the Space's own times."""

    __slots__ = ("puts", "unanswered", "waited")

    def __init__(self) -> None:
        self.puts = 0
        self.waited = 0.0
        # A PUT went out and its answer never came: whatever came after, it may have landed.
        self.unanswered = False


# Said of a conference whose PUT went out at least once without an answer coming back.
_MAY_HAVE_LANDED = (
    "; a PUT went out and the Space's answer never came, so it may have landed: a new "
    "run reads the conference afresh (one that took is skipped), and `rebrand restore` "
    "with this run's journal undoes it")


# What to do about a PUT the Space answered 200 without keeping what it was sent.
_NOT_TAKEN = (
    "the Space answered 200 but keeps other values than those sent: running the same "
    "command again retries it (the conference is read afresh), and `rebrand restore` with "
    "this run's journal undoes whatever the write did change; if it comes back the same, "
    "the Space does not accept these values for this room: check them on its dashboard")


def _not_cleared(kept: tuple[tuple[str, str], ...]) -> str:
    """Why a restore left a theme color showing: no PUT can say null."""
    fields = ", ".join(f"{name} still reads {value}" for name, value in kept)
    return (f"put back but for {fields}, the theme's: unset before the run, and a PUT "
            "cannot send null; this Space keeps (or defaults to) that value for a field a "
            "PUT leaves out, so only the Space's dashboard can clear it")


@dataclass(eq=False, slots=True)
class ConferenceUpdater:
    """Carries one conference through fresh GET, decision, journal, PUT and check. One
    per run, shared by all consumers; it holds no per-conference state."""

    client: SpaceClient
    strategy: Strategy
    reporter: Reporter
    _: KW_ONLY
    policy: RetryPolicy
    limiter: RateLimiter | None
    journal: Journal | None
    dry_run: bool
    sleep: Sleep
    rules: AnswerRules
    rng: random.Random = field(default_factory=random.Random)
    controller: Controller | None = None
    # From the first pre-image on, a stop lets writes in flight finish (the grace);
    # before it, a stop has nothing to wait for.
    writes_started: bool = field(default=False, init=False)
    # The waits under way that a stop ends (see `stop_waiting`), and whether it came.
    _waits: set[anyio.CancelScope] = field(default_factory=set, init=False)
    _stopping: bool = field(default=False, init=False)
    _log: Any = field(default_factory=lambda: structlog.get_logger("rebrand"), init=False)

    def _on_retry(self, error: RetryableApiError) -> None:
        self.reporter.retried(error.status)
        # Bound per conference (see consume), so this line names the conference it is about.
        self._log.debug("request.retrying", status=error.status, error=str(error))
        if error.status == 429 and self.limiter is not None:
            decreases = self.limiter.decreases
            told = parse_retry_after(error.retry_after, datetime.now(UTC))
            self.limiter.throttled(None if told is None
                                   else min(told, self.policy.retry_after_cap_s))
            # The limiter judges whether a 429 means congestion; the controller takes its
            # word, so a stray 429 moves neither.
            if self.limiter.decreases != decreases and self.controller is not None:
                self.controller.throttled()

    def _beyond_spec(self, conference: Mapping[str, Any], cid: str, name: str,
                     attempts: int) -> tuple[Outcome | None, tuple[str, ...]]:
        """(an outcome that stops the run if `conference` holds a property neither the
        spec nor the operator allows; the allowed ones it holds)."""
        beyond = self.rules.beyond_spec(conference)
        if not beyond:
            return None, ()
        unknown, allowed = split_extra(beyond, self.rules.allowed)
        if not unknown:
            return None, allowed
        message = unknown_property_message(unknown, cid, name)
        return Outcome(Kind.FAILED, cid, name, attempts, errors=(message,),
                       unknown=unknown[:_UNKNOWN_KEPT], allowed=allowed), allowed

    def stop_waiting(self) -> None:
        """The run is stopping: a conference waiting for its pacing slot or out a retry's
        Retry-After has nothing in flight, so it sends nothing more and its wait ends now
        (else a drain sent new PUTs for as long as the slot queue, or spent the whole grace
        period asleep). A PUT already sent is `unknown` at the end, as one cut off is."""
        self._stopping = True
        for scope in self._waits:
            scope.cancel()

    async def _unless_stopped(self, wait: Callable[[], Awaitable[None]]) -> None:
        """Await `wait()`; raise _Stopped if the run is stopping, or starts to meanwhile."""
        if self._stopping:
            raise _Stopped
        scope = anyio.CancelScope()
        self._waits.add(scope)
        try:
            with scope:
                await wait()
        finally:
            self._waits.discard(scope)
        if scope.cancelled_caught:
            raise _Stopped

    def rule_of(self, given: Mapping[str, Any]) -> str | None:
        return self.strategy.rule_of(given)

    async def update(self, given: Mapping[str, Any]) -> Outcome | None:
        """`given` is the conference as the source handed it over: a listing's row, or a
        journal's pre-image. None: a stop ended it while it waited (no outcome to record:
        not started, or `unknown` if a PUT of it went out)."""
        cid = str(given["id"])
        name = str(given.get("name") or "")
        halt, allowed = self._beyond_spec(given, cid, name, 0)
        if halt is not None:
            return halt
        if (self.dry_run and self.strategy.plans_from_listing
                and not self.rules.problems(given, cid)):
            # A whole row stands in for the GET (the spec's rows are whole conferences).
            # The decision itself finds a conference that wears its theme, or that no
            # rule matches: `quick` would only make it twice. A row that is not whole is
            # read, as the run reads it, so that plan and run agree.
            return self._plan_from_listing(given, cid, name, allowed)
        if self.strategy.body_source is not None:
            unusable = self.rules.problems(given, cid, self.strategy.body_source)
            if unusable:
                return Outcome(Kind.FAILED, cid, name, allowed=allowed, errors=tuple(
                    f"{p}; nothing was sent for it: {self.strategy.body_source_fix}"
                    for p in unusable))
        quick = self.strategy.quick(given)
        if quick is not None:
            return Outcome(quick.kind, cid, name, errors=quick.errors, allowed=allowed)
        started = time.monotonic()
        trace = _Trace()
        controller = self.controller
        if controller is None:
            return await self._update(given, cid, name, started, trace)
        controller.started()
        try:
            return await self._update(given, cid, name, started, trace)
        finally:
            # How long the conference held its place, less the waits that were not the
            # Space's doing: with the RTTs, what the controller steers by.
            controller.finished(time.monotonic() - started - trace.waited)

    async def _update(self, given: Mapping[str, Any], cid: str, name: str, started: float,
                      trace: _Trace) -> Outcome | None:
        controller = self.controller

        async def sleep(seconds: float) -> None:
            # One timer: waiting out a Retry-After costs nothing per second waited. Under
            # `auto` the conference lends its place meanwhile.
            trace.waited += seconds
            if controller is None:
                await self._unless_stopped(lambda: self.sleep(seconds))
                return
            controller.resting += 1
            try:
                await self._unless_stopped(lambda: self.sleep(seconds))
            finally:
                controller.resting -= 1

        try:
            # GETs are not rate limited; a fresh read narrows the lost-update window to
            # one round trip, so an edit made since the listing is carried, not undone.
            read = await with_retries(lambda: self._timed(self.client.get(cid)),
                                      self.policy, sleep=sleep, rng=self.rng,
                                      on_retry=self._on_retry)
            # The body is built from this answer: it must be this conference, whole.
            problems = self.rules.problems(read.value, cid)
            if problems:
                return Outcome(Kind.FAILED, cid, name, read.attempts, status=200,
                               errors=tuple(f"{p}; no PUT was sent for it: {ASK_AGAIN}"
                                            for p in problems))
            halt, allowed = self._beyond_spec(read.value, cid, name, read.attempts)
            if halt is not None:
                return halt
            decision = self.strategy.decide(given, read.value)
            if isinstance(decision, Skip):
                return Outcome(decision.kind, cid, name, read.attempts, errors=decision.errors,
                               allowed=allowed)
            # A body the API must refuse is not sent: the message says what to change.
            refused = body_problems(decision.body, read.value)
            if refused:
                return Outcome(Kind.FAILED, cid, name, read.attempts, errors=refused,
                               allowed=allowed)
            if self.dry_run:
                return Outcome(Kind.PLANNED, cid, name, read.attempts, changes=decision.changes,
                               allowed=allowed, before=decision.before)
            self.writes_started = True
            await self._ready_to_write(
                read.value, self.strategy.rule_of(given), trace,
                decision.body if self.strategy.journals_body else None)
            remaining = self.policy.deadline_s - (time.monotonic() - started)
            written = await with_retries(lambda: self._put(cid, name, decision.body, trace),
                                         self.policy, sleep=sleep, rng=self.rng,
                                         on_retry=self._on_retry, deadline_s=remaining)
        except _Stopped:
            return None
        except NotFoundError as exc:
            return Outcome(Kind.VANISHED, cid, name, exc.attempts, status=404)
        except ApiError as exc:
            errors = exc.errors or (str(exc),)
            if trace.unanswered:
                errors = (*errors[:-1], errors[-1] + _MAY_HAVE_LANDED)
            return Outcome(Kind.FAILED, cid, name, exc.attempts, status=exc.status,
                           errors=errors)
        return await self._after_put(cid, name, written.attempts, decision, written.value,
                                     allowed)

    def _plan_from_listing(self, given: Mapping[str, Any], cid: str, name: str,
                           allowed: tuple[str, ...]) -> Outcome:
        # A plan sends no write, so the listing is as fresh as it needs to be: no GET.
        planned = self.strategy.decide(given, given)
        if isinstance(planned, Skip):
            return Outcome(planned.kind, cid, name, errors=planned.errors, allowed=allowed)
        refused = body_problems(planned.body, given)
        if refused:
            return Outcome(Kind.FAILED, cid, name, errors=refused, allowed=allowed)
        return Outcome(Kind.PLANNED, cid, name, changes=planned.changes, allowed=allowed,
                       before=planned.before)

    async def _after_put(self, cid: str, name: str, attempts: int, decision: Write,
                         answer: Mapping[str, Any], allowed: tuple[str, ...]) -> Outcome:
        """Journal what the PUT returned, and check that the write took."""
        # An answer that is not this conference, whole, says nothing about our write:
        # its updated_at is not journaled, so a restore compares contents instead.
        outcome = self._checked(cid, name, attempts, decision, answer, allowed)
        if self.journal is None:
            return outcome
        kept = await self.journal.after_write(cid, outcome.updated_at,
                                              applied=outcome.kind is Kind.UPDATED)
        if kept or outcome.kind is not Kind.UPDATED:
            return outcome
        # `updated` is the journal's applied records: without one, this write is known to
        # the journal only by its pre-image, as a write whose answer never came.
        return Outcome(Kind.UNKNOWN, cid, name, attempts, status=200, allowed=allowed,
                       errors=("the Space applied its PUT, but the journal could not record "
                               "the answer (see run.aborted); a restore tells this write by "
                               "the conference's contents",))

    def _checked(self, cid: str, name: str, attempts: int, decision: Write,
                 answer: Mapping[str, Any], allowed: tuple[str, ...]) -> Outcome:
        problems = self.rules.problems(answer, cid)
        updated_at = answer.get("updated_at")
        updated_at = updated_at if isinstance(updated_at, str) and not problems else None
        if problems:
            return Outcome(Kind.FAILED, cid, name, attempts, status=200, allowed=allowed,
                           errors=tuple(f"the PUT was sent, but its answer cannot be "
                                        f"checked: {p}; {PUT_MAY_HAVE_LANDED}"
                                        for p in problems))
        mismatched = echo_mismatches(decision.body, answer)
        missed = tuple(f for f in mismatched if f in decision.must_take)
        if missed:
            detail = describe_mismatches(decision.body, answer, missed)
            return Outcome(Kind.FAILED, cid, name, attempts, status=200,
                           errors=(f"did not take: {detail}; {_NOT_TAKEN}",),
                           mismatched=mismatched,
                           updated_at=updated_at, allowed=allowed)
        kept = decision.still_showing(answer)
        if kept:
            return Outcome(Kind.FAILED, cid, name, attempts, status=200,
                           errors=(_not_cleared(kept),), updated_at=updated_at,
                           allowed=allowed)
        return Outcome(Kind.UPDATED, cid, name, attempts, mismatched=mismatched,
                       changes=decision.changes, updated_at=updated_at, allowed=allowed,
                       before=decision.before)

    async def _ready_to_write(self, fresh: Mapping[str, Any], rule: str | None,
                              trace: _Trace, sent: Mapping[str, Any] | None) -> None:
        """Make the pre-image durable and reach the first PUT's pacing slot. The slot
        comes first: by then a sync asked for by a writer on an earlier tick has usually
        covered this pre-image already (a sync covers every record staged before it), so
        writers queued for slots share one sync and waiting costs one shared timer."""
        journal, limiter = self.journal, self.limiter
        seq = journal.stage(fresh, rule, sent) if journal is not None else None
        if limiter is not None:
            waited_from = time.monotonic()
            slot = limiter.reserve()
            if self._stopping:
                raise _Stopped
            # A slot already due needs no wait, and no cancel scope to end one: unpaced,
            # that scope was ~3 % of a run's CPU (py-spy), for nothing.
            if not limiter.due(slot):
                await self._unless_stopped(lambda: limiter.wait_until(slot))
            trace.waited += time.monotonic() - waited_from
        if journal is not None and seq is not None:
            await journal.durable(seq)

    async def _put(self, cid: str, name: str, body: Mapping[str, Any],
                   trace: _Trace) -> Conference:
        trace.puts += 1
        # The first PUT's slot was reached in _ready_to_write; a retry takes a new one.
        if self.limiter is not None and trace.puts > 1:
            waited_from = time.monotonic()
            await self._unless_stopped(self.limiter.acquire)
            trace.waited += time.monotonic() - waited_from
        self.reporter.sending(cid, name)
        try:
            answer = await self._timed(self.client.put(cid, body))
        except ApiError as exc:
            trace.unanswered = trace.unanswered or exc.unanswered
            if not trace.unanswered:
                # Answered, and refused: none of its PUTs landed. Should the run end
                # while it waits to retry, it is not `unknown`.
                self.reporter.answered(cid)
            raise
        if self.limiter is not None:
            self.limiter.took()
        return answer

    async def _timed(self, request: Awaitable[Conference]) -> Conference:
        controller = self.controller
        if controller is None:
            return await request
        started = time.monotonic()
        try:
            return await request
        finally:
            controller.request_done(time.monotonic() - started)


async def _next(receive: ObjectReceiveStream[Conference]) -> Conference | None:
    """The next conference, or None at the end of the stream. One already waiting is
    taken without anyio's per-item checkpoint (see producer.hand_over); the consumer
    yields at its GET anyway."""
    if isinstance(receive, MemoryObjectReceiveStream):
        try:
            item: Conference = receive.receive_nowait()
        except anyio.WouldBlock:
            pass
        except anyio.EndOfStream:
            return None
        else:
            return item
    try:
        return await receive.receive()
    except anyio.EndOfStream:
        return None


class Pool(Protocol):
    """The consumers' pool (worker.run.pipeline): told after each conference, so it can
    start more consumers or retire this one."""

    def match_limit(self) -> None: ...

    def retire(self) -> bool: ...


async def consume(
    receive: ObjectReceiveStream[Conference],
    updater: ConferenceUpdater,
    reporter: Reporter,
    stop: Stop,
    pool: Pool | None = None,
) -> None:
    async with receive:
        while (conference := await _next(receive)) is not None:
            if stop.requested:
                continue  # drain without starting: the stop said "no new conference"
            # Every line logged while this conference is in hand carries its id (and the
            # rule that decides it, when the config has rules).
            rule = updater.rule_of(conference)
            context = {"conference_id": conference["id"]}
            if rule is not None:
                context["rule"] = rule
            with bound(**context):
                outcome = await updater.update(conference)
                if outcome is None:
                    continue  # stopped while it waited: nothing to record
                if rule is not None:
                    outcome = replace(outcome, rule=rule)
                reporter.record(outcome)
            if outcome.unknown:
                # Any further conference may carry the same property: start no other.
                stop.request(StopReason.UNKNOWN_PROPERTY, UnknownPropertyError(
                    outcome.errors[0], outcome.conference_id, outcome.unknown))
            if pool is not None:
                if pool.retire():
                    return
                pool.match_limit()
