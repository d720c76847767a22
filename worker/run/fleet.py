"""A fleet's run: each target's own pipeline, several at once, none waiting on another.

Each target runs as a single-Space job with its own Space, credentials, rate limiter,
journal and reporter, and its own stop: one target's failure budget or refused token
stops that target alone. A signal stops every target. Every line logged while a target
runs carries `target` (worker.run.logs.bound, in that target's task).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import anyio

from worker.fleet import TargetRun
from worker.outcome import Summary
from worker.retry import Sleep
from worker.run.job import JobResult, run_job
from worker.run.logs import bound
from worker.run.report import Reporter
from worker.run.stopping import Stop

Job = Callable[[TargetRun, Reporter, Stop], Awaitable[JobResult]]


@dataclass(frozen=True, slots=True)
class TargetResult:
    name: str
    result: JobResult
    reporter: Reporter


async def run_fleet(
    runs: Sequence[TargetRun],
    *,
    max_parallel: int,
    stop: Stop,
    job: Job | None = None,
    reporter_for: Callable[[str], Reporter] | None = None,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[TargetResult]:
    """Run every target (at most `max_parallel` at once) and return their results in the
    order of `runs`. `stop` is the fleet's: a request on it reaches every target."""
    slots = anyio.CapacityLimiter(max_parallel)
    results: dict[str, TargetResult] = {}
    started = clock()
    stops = {run.name: Stop() for run in runs}

    async def default_job(run: TargetRun, reporter: Reporter, own: Stop) -> JobResult:
        return await run_job(run.settings, run.credentials, reporter=reporter, stop=own,
                             sleep=sleep)

    async def one(run: TargetRun) -> None:
        own = stops[run.name]
        reporter = reporter_for(run.name) if reporter_for else Reporter()
        async with slots:
            if own.requested:
                # Stopped while it waited its turn: nothing of it starts (no journal, no
                # request); its summary says why.
                with bound(target=run.name):
                    results[run.name] = TargetResult(run.name, _not_started(reporter, own),
                                                     reporter)
                return
            settings = run.settings
            if settings.deadline_s is not None:
                # The deadline is the fleet's: a target that waited for a slot has less.
                left = settings.deadline_s - (clock() - started)
                settings = replace(settings, deadline_s=max(left, 0.001))
            with bound(target=run.name):
                result = await (job or default_job)(replace(run, settings=settings),
                                                    reporter, own)
        results[run.name] = TargetResult(run.name, result, reporter)

    async def relay() -> None:
        await stop.event.wait()
        assert stop.reason is not None  # noqa: S101 - set before the event fires
        for own in stops.values():
            own.request(stop.reason, stop.error)

    async with anyio.create_task_group() as everything:
        everything.start_soon(relay)
        async with anyio.create_task_group() as targets:
            for run in runs:
                targets.start_soon(one, run)
        everything.cancel_scope.cancel()
    return [results[run.name] for run in runs]


def _not_started(reporter: Reporter, stop: Stop) -> JobResult:
    assert stop.reason is not None  # noqa: S101 - only called once a stop was requested
    summary = reporter.summary(stopped=stop.reason.value)
    reporter.log_summary(summary)
    return JobResult(summary, stop.reason.exit_code, None)


def totals(results: Sequence[TargetResult]) -> dict[str, int]:
    """The targets' counts added up, for the fleet's summary (every whole-number field of
    a Summary, so a count added there is totalled here too)."""
    out: dict[str, int] = {}
    for target in results:
        summary: Summary = target.result.summary
        for name in summary.__dataclass_fields__:
            value = getattr(summary, name)
            if (isinstance(value, int) and not isinstance(value, bool)
                    and not name.startswith("concurrency")):  # a level, not a count
                out[name] = out.get(name, 0) + value
    return out
