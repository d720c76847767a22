"""The three jobs, `run`, `plan` and `restore`, each as one awaitable.

The CLI builds settings and credentials and awaits one of these; they do not own the
event loop, so tests await them directly against a sandbox Space.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from anyio.abc import ObjectSendStream

from worker.config import Credentials, Settings
from worker.decide import Restore, Retheme, Strategy
from worker.errors import ExitCode, RebrandError
from worker.outcome import Summary
from worker.retry import RetryPolicy
from worker.run.api import Conference, SpaceClient
from worker.run.consumer import Worker
from worker.run.journal import Header, JournalWriter, new_run_id, now_iso, pre_images, read_journal
from worker.run.limiter import RateLimiter
from worker.run.pipeline import PipelineOptions, run_pipeline
from worker.run.producer import Selector, Source, listing
from worker.run.report import Reporter
from worker.run.stopping import Stop, StopReason
from worker.space import Space
from worker.theme import parse_theme
from worker.version import __version__

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobOptions:
    """What the command line adds to the settings."""

    dry_run: bool = False
    backup_dir: Path = Path("rebrand-backups")
    grace_s: float = 20.0
    max_failures: int | None = 25
    deadline_s: float | None = None
    list_filters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobResult:
    summary: Summary
    exit_code: ExitCode
    journal: Path | None
    error: RebrandError | None = None


def exit_code_for(summary: Summary, stop: Stop, *, dry_run: bool) -> ExitCode:
    """The exit code a finished (or stopped) job earns."""
    if stop.reason is not None:
        return stop.reason.exit_code
    if summary.failed:
        return ExitCode.FAILURES
    if dry_run and summary.planned:
        return ExitCode.CHANGES_PENDING
    return ExitCode.OK


def _session(concurrency: int) -> aiohttp.ClientSession:
    # One pooled connection per consumer (plus one for the producer), reused throughout.
    connector = aiohttp.TCPConnector(limit=concurrency + 1, limit_per_host=concurrency + 1,
                                     ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


async def _execute(
    *,
    space: Space,
    credentials: Credentials,
    strategy: Strategy,
    make_source: Callable[[SpaceClient, Reporter], Source],
    options: PipelineOptions,
    rate_limit: float | None,
    request_timeout_s: float,
    journal: JournalWriter | None,
    reporter: Reporter,
    stop: Stop,
    deadline_s: float | None,
    sleep: Sleep,
) -> tuple[Summary, RebrandError | None, RateLimiter | None]:
    limiter = RateLimiter(rate_limit) if rate_limit else None
    error: RebrandError | None = None
    try:
        async with _session(options.concurrency) as session:
            client = SpaceClient(session, space, credentials.authorization(),
                                 timeout_s=request_timeout_s, secrets=credentials.secrets)
            worker = Worker(client, strategy, reporter, policy=options.retry,
                            limiter=limiter, journal=journal, dry_run=options.dry_run,
                            sleep=sleep)
            async with anyio.create_task_group() as tg:
                if deadline_s is not None:
                    tg.start_soon(_deadline, stop, deadline_s)
                await run_pipeline(make_source(client, reporter), worker, reporter, options,
                                   stop=stop)
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        inner = group.exceptions[0] if len(group.exceptions) == 1 else group
        if not isinstance(inner, RebrandError):
            raise
        error = inner
    except RebrandError as exc:
        error = exc
    finally:
        if journal is not None:
            journal.close()
    summary = reporter.summary(
        effective_rate=limiter.effective_rate() if limiter and not options.dry_run else None,
        stopped=(stop.reason.value if stop.reason else None)
        or (type(error).__name__ if error else None),
    )
    return summary, error, limiter


async def _deadline(stop: Stop, seconds: float) -> None:
    await anyio.sleep(seconds)
    stop.request(StopReason.DEADLINE)


def _finish(summary: Summary, error: RebrandError | None, stop: Stop, reporter: Reporter,
            *, dry_run: bool, journal: Path | None) -> JobResult:
    code = error.exit_code if error is not None else exit_code_for(summary, stop,
                                                                  dry_run=dry_run)
    if error is not None:
        # Say why before the summary, so the summary stays the last line of every run.
        reporter.aborted(error, int(code))
    reporter.log_summary(summary)
    return JobResult(summary, ExitCode(code), journal, error)


async def run_job(
    settings: Settings,
    credentials: Credentials,
    job: JobOptions,
    *,
    reporter: Reporter | None = None,
    stop: Stop | None = None,
    select: Selector | None = None,
    sleep: Sleep = anyio.sleep,
    command: str = "run",
) -> JobResult:
    """`rebrand run` (and `plan`, with `job.dry_run`): re-theme every listed conference."""
    reporter = reporter or Reporter()
    stop = stop or Stop()
    options = _pipeline_options(settings.concurrency, settings.queue_size, settings.page_size,
                                settings.retry, job)
    journal = _open_journal(job, settings.space, command, settings.theme.as_config())

    def make_source(client: SpaceClient, rep: Reporter) -> Source:
        return listing(client, rep, page_size=options.page_size,
                       filters=options.list_filters, policy=options.retry, select=select,
                       sleep=sleep)

    summary, error, _ = await _execute(
        space=settings.space, credentials=credentials, strategy=Retheme(settings.theme),
        make_source=make_source, options=options,
        rate_limit=None if job.dry_run else settings.rate_limit,
        request_timeout_s=settings.request_timeout_s, journal=journal, reporter=reporter,
        stop=stop, deadline_s=job.deadline_s, sleep=sleep,
    )
    return _finish(summary, error, stop, reporter, dry_run=job.dry_run,
                   journal=journal.path if journal else None)


def _open_journal(job: JobOptions, space: Space, command: str,
                  theme: Mapping[str, Any] | None) -> JournalWriter | None:
    """A new journal for a job that writes; none for a dry run, which writes nothing."""
    if job.dry_run:
        return None
    now = datetime.now(UTC)
    run_id = new_run_id(now)
    return JournalWriter(job.backup_dir / f"{run_id}.jsonl",
                         Header(run_id, space.origin, command, theme, __version__,
                                now_iso(now)))


def _pipeline_options(concurrency: int, queue_size: int, page_size: int,
                      retry: RetryPolicy, job: JobOptions) -> PipelineOptions:
    return PipelineOptions(
        concurrency=concurrency, queue_size=queue_size, page_size=page_size, retry=retry,
        dry_run=job.dry_run, grace_s=job.grace_s, max_failures=job.max_failures,
        list_filters=job.list_filters,
    )


@dataclass(frozen=True, slots=True)
class RestoreSettings:
    """What a restore needs besides the journal: the Space the operator named (checked
    against the journal's header), and the limits to keep to."""

    space: Space
    concurrency: int = 16
    rate_limit: float = 1380.0
    request_timeout_s: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    force: bool = False


async def restore_job(
    journal_path: Path,
    settings: RestoreSettings,
    credentials: Credentials,
    job: JobOptions,
    *,
    reporter: Reporter | None = None,
    stop: Stop | None = None,
    sleep: Sleep = anyio.sleep,
) -> JobResult:
    """`rebrand restore`: put every journalled conference back to its pre-image."""
    reporter = reporter or Reporter()
    stop = stop or Stop()
    contents = read_journal(journal_path)
    raw_theme: Any = contents.header.get("theme")
    theme = parse_theme(raw_theme) if raw_theme else None
    strategy = Restore(contents.written_at, force=settings.force, theme=theme)
    options = _pipeline_options(settings.concurrency, max(2 * settings.concurrency, 64), 1000,
                                settings.retry, job)
    journal = _open_journal(job, settings.space, "restore", None)

    def make_source(_client: SpaceClient, rep: Reporter) -> Source:
        async def source(send: ObjectSendStream[Conference]) -> None:
            for conference in pre_images(journal_path):
                rep.listed_one()
                await send.send(conference)

        return source

    summary, error, _ = await _execute(
        space=settings.space, credentials=credentials, strategy=strategy,
        make_source=make_source, options=options,
        rate_limit=None if job.dry_run else settings.rate_limit,
        request_timeout_s=settings.request_timeout_s, journal=journal, reporter=reporter,
        stop=stop, deadline_s=job.deadline_s, sleep=sleep,
    )
    return _finish(summary, error, stop, reporter, dry_run=job.dry_run,
                   journal=journal.path if journal else None)
