"""`run` asks a person before a big change, as `terraform apply` does; scripts never.

When stdin is a terminal and `--yes` was not given, the plan runs first (quietly: only
warnings reach the log). Above `confirm_above` changes, the plan's table and count are
shown and the person must answer yes, on stderr, or on stdout when stderr is redirected.
With neither a terminal, no one would see the question: the run stops, nothing sent.
Without a terminal on stdin (CI, cron, Kubernetes) no question is ever asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TextIO

import structlog

from worker.config import Settings
from worker.credentials import Credentials
from worker.run.job import JobResult, run_job
from worker.run.report import Reporter
from worker.run.stopping import Stop


def plan_first(*, yes: bool, dry_run: bool, stdin: TextIO) -> bool:
    """Whether to plan and maybe ask before a run: only `run`, only for a person."""
    return not yes and not dry_run and stdin.isatty()


def needs_consent(would_change: int, confirm_above: int) -> bool:
    return would_change > confirm_above


def is_yes(answer: str) -> bool:
    """Only what the question asks for: `yes`, as terraform apply takes it. A stray `y`
    or `Y` is not consent to change thousands of rooms."""
    return answer.strip() == "yes"


def question(would_change: int, listed: int, space: str, confirm_above: int, *,
             details: Sequence[str] = ()) -> str:
    """The question, with `details` (what would change) between the count and it."""
    lines = [f"rebrand: {would_change:,} of {listed:,} listed conferences in {space} would "
             f"change (more than confirm_above: {confirm_above})" + (":" if details else "."),
             *details]
    return "\n".join(lines) + "\nRe-theme them now? Only 'yes' goes on (or pass --yes next time): "


def asking_stream(*streams: TextIO) -> TextIO | None:
    """Where to ask: the first of `streams` that is a terminal, or None when the person
    would see no question (`2>err.log` asked into the file and waited for ever)."""
    return next((stream for stream in streams if stream.isatty()), None)


def ask(prompt: str, *, out: TextIO, read: Callable[[], str]) -> bool:
    """Ask once; end of input (Ctrl-D) is a no."""
    out.write(prompt)
    out.flush()
    answer = read()
    if not answer.endswith("\n"):
        # Ctrl-D echoes no newline: end the question's line before anything else is said.
        out.write("\n")
        out.flush()
    return is_yes(answer)


@contextmanager
def _warnings_only() -> Iterator[None]:
    saved: dict[str, Any] = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)


async def plan_quietly(settings: Settings, credentials: Credentials, *,
                       stop: Stop) -> tuple[JobResult, Reporter]:
    """The plan behind the question, its per-conference lines left out (the table shows
    them); the Reporter keeps the planned outcomes for that table."""
    with _warnings_only():
        reporter = Reporter(keep_plans=True)
        result = await run_job(replace(settings, dry_run=True), credentials,
                               reporter=reporter, stop=stop)
    return result, reporter
