"""The consumers: each conference through fresh GET, decision, journal, PUT and check.

The decisions are the strategy's (worker.decide); this module only sequences the I/O,
the retries and the rate limiter around them, and turns what happened into an Outcome.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from anyio.abc import ObjectReceiveStream
from tenacity import RetryCallState

from worker.body import echo_mismatches
from worker.decide import Skip, Strategy
from worker.errors import ApiError, NotFoundError, RetryableApiError
from worker.outcome import Kind, Outcome
from worker.retry import RetryPolicy, retrying
from worker.run.api import Conference, SpaceClient
from worker.run.limiter import RateLimiter
from worker.run.report import Reporter
from worker.run.stopping import Stop, StopReason

Sleep = Callable[[float], Awaitable[None]]


class Journal(Protocol):
    """Where pre-images go before a write (see worker.run.journal)."""

    async def before_write(self, conference: Mapping[str, Any]) -> None: ...

    async def after_write(self, conference_id: str, updated_at: str | None) -> None: ...


class Worker:
    """Carries one conference through fresh GET, decision, journal, PUT and check. One
    per run, shared by all consumers; it holds no per-conference state."""

    def __init__(
        self,
        client: SpaceClient,
        strategy: Strategy,
        reporter: Reporter,
        *,
        policy: RetryPolicy,
        limiter: RateLimiter | None,
        journal: Journal | None,
        dry_run: bool,
        sleep: Sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._strategy = strategy
        self._reporter = reporter
        self._policy = policy
        self._limiter = limiter
        self._journal = journal
        self._dry_run = dry_run
        self._sleep = sleep
        self._rng = rng or random.Random()

    def _on_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        status = error.status if isinstance(error, ApiError) else None
        self._reporter.retried(status)
        if status == 429 and self._limiter is not None:
            self._limiter.throttled()

    async def _call(
        self, fn: Callable[[], Awaitable[Conference]], deadline_s: float, tries: list[int]
    ) -> Conference:
        # Nearly every request succeeds at once, and building tenacity's per-call state
        # cost ~10% of a run's CPU (profiled), so the first try goes direct. On a
        # retryable failure tenacity takes over, its first attempt replaying that failure
        # without I/O, so waits, stops and callbacks stay tenacity's alone.
        started = time.monotonic()
        tries[0] += 1
        try:
            return await fn()
        except RetryableApiError as exc:
            replay: list[RetryableApiError] = [exc]

        async def attempt() -> Conference:
            if replay:
                raise replay.pop()
            tries[0] += 1
            return await fn()

        controller = retrying(
            self._policy, sleep=self._sleep, rng=self._rng,
            deadline_s=deadline_s - (time.monotonic() - started), on_retry=self._on_retry,
        )
        return await controller(attempt)

    async def process(self, listed: Mapping[str, Any]) -> Outcome:
        cid = str(listed["id"])
        name = str(listed.get("name") or "")
        quick = self._strategy.quick(listed)
        if quick is not None:
            return Outcome(quick.kind, cid, name, errors=quick.errors)
        if self._dry_run and self._strategy.plans_from_listing:
            # A plan sends no write, so the listing is as fresh as it needs to be: no GET.
            planned = self._strategy.decide(listed, listed)
            if isinstance(planned, Skip):
                return Outcome(planned.kind, cid, name, errors=planned.errors)
            return Outcome(Kind.PLANNED, cid, name, changes=planned.changes)
        started = time.monotonic()
        tries = [0]
        try:
            # GETs are not rate limited; a fresh read narrows the lost-update window to
            # one round trip, so an edit made since the listing is carried, not undone.
            fresh = await self._call(lambda: self._client.get(cid), self._policy.deadline_s,
                                     tries)
            decision = self._strategy.decide(listed, fresh)
            if isinstance(decision, Skip):
                return Outcome(decision.kind, cid, name, tries[0], errors=decision.errors)
            if self._dry_run:
                return Outcome(Kind.PLANNED, cid, name, tries[0], changes=decision.changes)
            if self._journal is not None:
                await self._journal.before_write(fresh)
            tries = [0]
            remaining = self._policy.deadline_s - (time.monotonic() - started)
            answer = await self._call(lambda: self._put(cid, decision.body), remaining, tries)
        except NotFoundError:
            return Outcome(Kind.VANISHED, cid, name, tries[0], status=404)
        except ApiError as exc:
            return Outcome(Kind.FAILED, cid, name, tries[0], status=exc.status,
                           errors=exc.errors or (str(exc),))
        updated_at = answer.get("updated_at")
        updated_at = updated_at if isinstance(updated_at, str) else None
        if self._journal is not None:
            await self._journal.after_write(cid, updated_at)
        mismatched = echo_mismatches(decision.body, answer)
        missed = [f for f in mismatched if f in decision.must_take]
        if missed:
            return Outcome(Kind.FAILED, cid, name, tries[0], status=200,
                           errors=(f"did not take: {', '.join(missed)}",),
                           mismatched=mismatched, updated_at=updated_at)
        return Outcome(Kind.UPDATED, cid, name, tries[0], mismatched=mismatched,
                       changes=decision.changes, updated_at=updated_at)

    async def _put(self, cid: str, body: Mapping[str, Any]) -> Conference:
        if self._limiter is not None:
            await self._limiter.acquire()
        return await self._client.put(cid, body)


async def consume(
    receive: ObjectReceiveStream[Conference],
    worker: Worker,
    reporter: Reporter,
    stop: Stop,
    max_failures: int | None,
) -> None:
    async with receive:
        async for conference in receive:
            if stop.requested:
                continue  # drain without starting: the stop said "no new conference"
            outcome = await worker.process(conference)
            reporter.record(outcome)
            if max_failures is not None and reporter.failed >= max_failures:
                stop.request(StopReason.MAX_FAILURES)
