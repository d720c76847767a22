"""The three jobs, `run`, `plan` and `restore`, each as one awaitable over one body.

They differ only in their strategy (worker.decide) and their source: the Space's listing,
or a journal's pre-images. The CLI builds the settings and credentials and awaits one of
these; they do not own the event loop, so tests await them directly against a sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from anyio.abc import ObjectSendStream

from worker.answers import AnswerRules
from worker.concurrency import INITIAL, AdaptiveConcurrency, Tuning
from worker.config import AUTO, Settings
from worker.credentials import Credentials
from worker.decide import Restore, Retheme, Strategy
from worker.errors import ConfigError, ExitCode, JournalError, RebrandError
from worker.outcome import Summary
from worker.retry import Sleep
from worker.run.api import Conference, SpaceClient
from worker.run.consumer import ConferenceUpdater
from worker.run.journal import Header, JournalContents, JournalWriter, new_run_id, now_iso
from worker.run.limiter import RateLimiter
from worker.run.pipeline import Fixed, Limit, run_pipeline
from worker.run.producer import Source, hand_over, listing
from worker.run.report import Reporter
from worker.run.stopping import Stop, StopReason
from worker.theme import Theme, parse_theme
from worker.version import __version__


@dataclass(frozen=True, slots=True)
class JobResult:
    summary: Summary
    exit_code: ExitCode
    journal: Path | None
    error: RebrandError | None = None
    # The journal holds its header alone: no PUT was sent, so it has nothing to restore.
    journal_empty: bool = False


@dataclass(frozen=True, slots=True)
class _Job:
    """What tells run, plan and restore apart."""

    command: str
    strategy: Strategy
    source: Callable[[SpaceClient, Reporter], Source]
    # Recorded in the journal's header, for a later restore's crash-window check.
    theme: Mapping[str, Any] | None
    # With rules: each rule's theme by name (the pre-images say which rule wrote them).
    rules: Mapping[str, Any] | None = None


async def run_job(
    settings: Settings,
    credentials: Credentials,
    *,
    reporter: Reporter | None = None,
    stop: Stop | None = None,
    sleep: Sleep = anyio.sleep,
    datasync: Callable[[int], None] | None = None,
) -> JobResult:
    """`rebrand run` (and `plan`, with `settings.dry_run`): re-theme every listed
    conference. `datasync` stands in for the journal's fdatasync (a test observes it)."""
    themes = settings.themes
    if themes is None:
        raise ConfigError("theme: missing; add a `theme:` with `light` and/or `dark` colors")

    def source(client: SpaceClient, rep: Reporter) -> Source:
        return listing(client, rep, page_size=settings.page_size,
                       filters=settings.select.list_filters(), policy=settings.retry,
                       select=settings.selector, sleep=sleep,
                       max_pages=settings.max_pages)

    job = _Job("plan" if settings.dry_run else "run", Retheme(themes), source,
               themes.rules[0].theme.as_config() if not themes.named else None,
               themes.themes() if themes.named else None)
    return await _execute(settings, credentials, job, reporter or Reporter(), stop or Stop(),
                          sleep, datasync)


async def restore_job(
    settings: Settings,
    credentials: Credentials,
    journal: JournalContents,
    *,
    reporter: Reporter | None = None,
    stop: Stop | None = None,
    sleep: Sleep = anyio.sleep,
) -> JobResult:
    """`rebrand restore`: put every conference in `journal` back to its pre-image."""
    reporter = reporter or Reporter()
    if journal.torn_line is not None:
        reporter.torn_journal(journal.path, journal.torn_line, journal.dropped)
    raw_theme: Any = journal.header.get("theme")
    with _header_part(journal, "theme"):
        theme = parse_theme(raw_theme) if raw_theme else None
    with _header_part(journal, "rules"):
        theme_of = _rule_themes(journal)
    strategy = Restore(journal.written_at, force=settings.force, theme=theme,
                       theme_of=theme_of, sent=journal.unanswered)

    def source(_client: SpaceClient, rep: Reporter) -> Source:
        async def fill(send: ObjectSendStream[Conference]) -> None:
            for serial, conference in enumerate(journal.pre_images(), 1):
                rep.listed_one()
                await hand_over(send, conference, serial)

        return fill

    job = _Job("restore", strategy, source, None)
    return await _execute(settings, credentials, job, reporter, stop or Stop(), sleep)


@contextmanager
def _header_part(journal: JournalContents, key: str) -> Iterator[None]:
    """A theme in a journal's header is the journal's problem, not the config's: say so."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(
            f"journal {journal.path}: the header's `{key}` is not a theme rebrand writes "
            f"({exc}); the header was edited or damaged. Restore it from a copy of the "
            "journal: a restore tells its own writes from others' by that theme") from exc


def _rule_themes(journal: JournalContents) -> Callable[[str], Theme | None] | None:
    """For a journal of a run with rules: each conference's theme, by the rule that wrote
    it (the header keeps each rule's theme, each pre-image its rule)."""
    raw: Any = journal.header.get("rules")
    if not isinstance(raw, Mapping):
        return None
    themes = {name: parse_theme(theme) for name, theme in raw.items()}
    rule_of = journal.rule_of

    def theme_of(conference_id: str) -> Theme | None:
        rule = rule_of.get(conference_id)
        return None if rule is None else themes.get(rule)

    return theme_of


async def _execute(settings: Settings, credentials: Credentials, job: _Job,
                   reporter: Reporter, stop: Stop, sleep: Sleep,
                   datasync: Callable[[int], None] | None = None) -> JobResult:
    """The one body of every job: journal, session, limiter, pipeline, summary."""
    journal = None if settings.dry_run else _open_journal(settings, job, datasync)
    limiter = None if settings.dry_run else RateLimiter(settings.rate_limit)
    controller = _controller(settings, limiter)
    limit: Limit = controller or Fixed(int(settings.concurrency))
    if settings.max_failures is not None:
        reporter.on_failures(settings.max_failures,
                             lambda: stop.request(StopReason.MAX_FAILURES))
    rules = AnswerRules.from_spec(settings.allow_fields)
    error: RebrandError | None = None
    listed_all = False
    try:
        async with session_for(settings.max_concurrency if controller else limit.limit) as session:
            client = SpaceClient(session, settings.space, credentials.authorization(),
                                 timeout_s=settings.request_timeout_s,
                                 secrets=credentials.secrets,
                                 project_id=credentials.project_id)
            updater = ConferenceUpdater(client, job.strategy, reporter, policy=settings.retry,
                                        limiter=limiter, journal=journal,
                                        dry_run=settings.dry_run, sleep=sleep, rules=rules,
                                        controller=controller)
            listed_all = await run_pipeline(job.source(client, reporter), updater, reporter, stop,
                               concurrency=limit,
                               queue_size=settings.queue_size, grace_s=settings.grace_s,
                               deadline_s=settings.deadline_s)
    except RebrandError as exc:
        error = exc
    finally:
        if journal is not None:
            try:
                journal.close()
            except JournalError as exc:
                error = error or exc
    # A stop that has more to say than its reason (an unknown property) is reported like
    # an error, and ends with its exit code.
    error = error or stop.error
    cut = reporter.unanswered()
    # A stop that came when every listed conference had its outcome or was finishing (the
    # deadline during the last write, the failure budget spent by the last conference)
    # left nothing undone: the run is whole, and its outcomes decide its exit code.
    undone = left_undone(listed_all=listed_all, cut=cut, not_started=reporter.not_started)
    stopped = stop.reason if undone else None
    summary = reporter.summary(
        effective_rate=limiter.effective_rate() if limiter else None,
        concurrency=controller.settled() if controller else (limit.limit,) * 3,
        # The error, when there is one, says more than the stop it caused.
        stopped=(type(error).__name__ if error else None)
        or (stopped.value if stopped else None),
    )
    code = error.exit_code if error is not None else exit_code_for(
        summary, stopped, dry_run=settings.dry_run)
    if error is not None:
        # Say why before the summary, so the summary stays the last line of every run.
        reporter.aborted(error, int(code))
    reporter.log_summary(summary)
    return JobResult(summary, ExitCode(code), journal.path if journal else None, error,
                     journal_empty=journal is not None and journal.pre_images == 0)


def left_undone(*, listed_all: bool, cut: int, not_started: int) -> bool:
    """Did the run end with something undone: the listing cut short, a listed conference
    not started, or a write cut off before its answer came (`cut`)?"""
    return not listed_all or cut > 0 or not_started > 0


def exit_code_for(summary: Summary, stopped: StopReason | None, *, dry_run: bool) -> ExitCode:
    """The exit code a finished job earns, or one that `stopped` left work undone."""
    if stopped is not None:
        return stopped.exit_code
    # A conflict is a conference a restore left as someone else edited it: not undone,
    # and CI and operators read 0 as "undone".
    if summary.failed or summary.conflict:
        return ExitCode.FAILURES
    if dry_run and summary.planned:
        return ExitCode.CHANGES_PENDING
    return ExitCode.OK


def _controller(settings: Settings, limiter: RateLimiter | None) -> AdaptiveConcurrency | None:
    """`concurrency: auto`'s controller, steering by the limiter's pace; None if pinned."""
    if settings.concurrency != AUTO:
        return None
    tuning = Tuning(initial=min(INITIAL, settings.max_concurrency),
                    maximum=settings.max_concurrency)
    if limiter is None:
        return AdaptiveConcurrency(tuning)
    return AdaptiveConcurrency(tuning, pace=lambda: limiter.rate, batch=lambda: limiter.batch)


def session_for(concurrency: int) -> aiohttp.ClientSession:
    """The HTTP session of a job: pooled, no proxies or netrc from the environment."""
    # One pooled connection per consumer (plus one for the producer), reused throughout;
    # `concurrency` is the most consumers there can be. Connections open as they are needed.
    connector = aiohttp.TCPConnector(limit=concurrency + 1, limit_per_host=concurrency + 1,
                                     ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


def _open_journal(settings: Settings, job: _Job,
                  datasync: Callable[[int], None] | None) -> JournalWriter:
    """A new journal for a job that writes (a dry run writes nothing, so has none)."""
    now = datetime.now(UTC)
    run_id = new_run_id(now)
    path = settings.backup_dir / f"{run_id}.jsonl"
    header = Header(run_id, settings.space.origin, job.command, job.theme, __version__,
                    now_iso(now), rules=job.rules, target=settings.target)
    if datasync is None:
        return JournalWriter(path, header)
    return JournalWriter(path, header, datasync=datasync)
