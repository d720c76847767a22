"""The job: a producer lists conferences into a bounded stream, consumers re-theme them.

    producer ──(bounded memory object stream)──▶ consumers ──Outcome──▶ reporter

The stream's bound keeps memory flat whatever the Space's size, and lets the consumers
start on the first page while later pages are still being listed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from tenacity import RetryCallState

from worker.api import SpaceClient
from worker.body import echo_mismatches
from worker.decide import Skip, Strategy
from worker.errors import (
    AbortError,
    ApiError,
    AuthError,
    NotFoundError,
    RebrandError,
    RetryableApiError,
    UnreachableError,
)
from worker.limiter import RateLimiter
from worker.outcome import Kind, Outcome
from worker.report import Reporter
from worker.retry import RetryPolicy, retrying
from worker.seen import SeenIds
from worker.space import resolve_link
from worker.stopping import Stop, StopReason

Conference = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


class Journal(Protocol):
    """Where pre-images go before a write (see worker.journal)."""

    async def before_write(self, conference: Mapping[str, Any]) -> None: ...

    async def after_write(self, conference_id: str, updated_at: str | None) -> None: ...


class Selector(Protocol):
    def __call__(self, conference: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    concurrency: int = 16
    queue_size: int = 512
    page_size: int = 1000
    retry: RetryPolicy = RetryPolicy()
    dry_run: bool = False
    grace_s: float = 20.0
    max_failures: int | None = None
    list_filters: Mapping[str, str] = field(default_factory=dict)


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


Source = Callable[[ObjectSendStream[Conference]], Awaitable[None]]


async def produce(
    client: SpaceClient,
    first_url: str,
    send: ObjectSendStream[Conference],
    reporter: Reporter,
    *,
    policy: RetryPolicy,
    sleep: Sleep,
    select: Selector | None = None,
) -> None:
    """List every conference once, following `links.next`, into the bounded stream.
    Stops when `next` is absent or leads back to a page already read."""
    def on_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reporter.retried(error.status if isinstance(error, ApiError) else None)

    async with send:
        url = first_url
        visited = {url}
        seen = SeenIds()
        while True:
            try:
                async for attempt in retrying(policy, sleep=sleep, on_retry=on_retry):
                    with attempt:
                        page = await client.list_page(url)
            except ApiError as exc:
                raise UnreachableError(f"listing conferences failed: {exc}") from None
            next_link = page.next_link
            # Hand conferences over one by one and let go of each: the page's list would
            # otherwise keep every already-processed conference alive until the next
            # page arrives, doubling the producer's share of memory.
            conferences = page.conferences
            del page
            conferences.reverse()
            while conferences:
                conference = conferences.pop()
                cid = conference.get("id")
                if not isinstance(cid, str) or not seen.add(cid):
                    continue
                reporter.listed_one()
                if select is not None and not select(conference):
                    reporter.record(Outcome(Kind.EXCLUDED, cid, str(conference.get("name"))))
                    continue
                await send.send(conference)
                del conference
            if next_link is None:
                return
            url = resolve_link(client.space, url, next_link)
            if url in visited:
                return
            visited.add(url)


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


def _primary_error(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error that decides the exit: auth refusal first, then aborts, then the rest."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for kind in (AuthError, AbortError, RebrandError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return group


def listing(client: SpaceClient, reporter: Reporter, options: PipelineOptions, *,
            select: Selector | None = None, sleep: Sleep = anyio.sleep) -> Source:
    """The source for `run` and `plan`: the Space's own listing."""
    first_url = client.first_page_url(options.page_size, options.list_filters)

    async def source(send: ObjectSendStream[Conference]) -> None:
        await produce(client, first_url, send, reporter, policy=options.retry, sleep=sleep,
                      select=select)

    return source


async def run_pipeline(
    source: Source,
    worker: Worker,
    reporter: Reporter,
    options: PipelineOptions,
    *,
    stop: Stop | None = None,
) -> None:
    """Run the source and the consumers to completion or to a stop. Raises AuthError or
    AbortError (after cancelling everything) when the run cannot go on."""
    stop = stop or Stop()
    send, receive = anyio.create_memory_object_stream[Conference](options.queue_size)
    try:
        async with anyio.create_task_group() as tg:
            producer_scope = anyio.CancelScope()

            async def producer() -> None:
                with producer_scope:
                    async with send:
                        await source(send)

            async def watch_stop() -> None:
                await stop.event.wait()
                producer_scope.cancel()
                # In-flight conferences get the grace period, then everything stops.
                await anyio.sleep(options.grace_s)
                tg.cancel_scope.cancel()

            watcher = anyio.CancelScope()

            async def watcher_task() -> None:
                with watcher:
                    await watch_stop()

            tg.start_soon(watcher_task)
            async with anyio.create_task_group() as work:
                work.start_soon(producer)
                async with receive:
                    for _ in range(options.concurrency):
                        work.start_soon(consume, receive.clone(), worker, reporter, stop,
                                        options.max_failures)
            watcher.cancel()
    except BaseExceptionGroup as group:
        raise _primary_error(group) from None
    finally:
        send.close()
        receive.close()


__all__ = [
    "Conference",
    "Journal",
    "PipelineOptions",
    "Source",
    "Worker",
    "consume",
    "listing",
    "produce",
    "run_pipeline",
]
